"""Write a run's reports into their own directory, atomically, never over an older run."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from kubedrill.report.junit import render_junit
from kubedrill.report.markdown import render_markdown

__all__ = ["load_schema", "validate_run_document", "write_reports"]

_RENDERERS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "json": ("run.json", lambda d: json.dumps(d, indent=1, ensure_ascii=False) + "\n"),
    "junit": ("junit.xml", render_junit),
    "markdown": ("summary.md", render_markdown),
}


@cache
def load_schema() -> dict[str, Any]:
    text = resources.files("kubedrill.report").joinpath("run.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_run_document(doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``doc`` breaks the run schema."""
    jsonschema.validate(doc, load_schema(), cls=jsonschema.Draft202012Validator)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(doc: dict[str, Any], report_dir: Path, formats: Iterable[str]) -> dict[str, Path]:
    """Write ``doc`` as each format into ``report_dir/<run_id>/``; point ``latest`` at it.

    Returns the written paths by format. An existing run directory is never overwritten.
    """
    validate_run_document(doc)
    run_dir = report_dir / doc["run_id"]
    run_dir.mkdir(parents=True, exist_ok=False)
    written: dict[str, Path] = {}
    for fmt in formats:
        name, render = _RENDERERS[fmt]
        path = run_dir / name
        _atomic_write(path, render(doc))
        written[fmt] = path
    latest = report_dir / "latest"
    tmp_link = report_dir / f".latest.{doc['run_id']}"
    tmp_link.symlink_to(doc["run_id"])
    os.replace(tmp_link, latest)
    return written
