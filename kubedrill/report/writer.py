"""Write a run's reports into their own directory, atomically, never over an older run."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from kubedrill.report.document import schema_for
from kubedrill.report.html import render_html
from kubedrill.report.junit import render_junit
from kubedrill.report.markdown import render_markdown

__all__ = [
    "FILENAMES",
    "append_step_summary",
    "load_schema",
    "validate_run_document",
    "write_reports",
]

#: format → the file it is written to, inside the run's directory
FILENAMES = {
    "json": "run.json",
    "junit": "junit.xml",
    "markdown": "summary.md",
    "html": "report.html",
}
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def _json(doc: dict[str, Any], links: Mapping[str, str]) -> str:
    # compact: a game day's timeline is most of the document, and nobody reads it raw
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n"


_RENDERERS: dict[str, Callable[[dict[str, Any], Mapping[str, str]], str]] = {
    "json": _json,
    "junit": lambda d, links: render_junit(d),
    "markdown": lambda d, links: render_markdown(d, html_link=links.get("html")),
    "html": lambda d, links: render_html(d, {k: v for k, v in links.items() if k != "html"}),
}


def load_schema() -> dict[str, Any]:
    """The schema of the run documents this version writes (v3)."""
    return schema_for(3)


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


def append_step_summary(text: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub reads the file
    after the step; earlier steps' summaries stay, so append, never replace)."""
    target = (os.environ if env is None else env).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return path


def write_reports(
    doc: dict[str, Any],
    report_dir: Path,
    formats: Iterable[str],
    env: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``doc`` as each format into ``report_dir/<run_id>/``; point ``latest`` at it;
    append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when that is set.

    Returns the written paths by format. An existing run directory is never overwritten.
    """
    validate_run_document(doc)
    formats = list(dict.fromkeys(formats))
    run_dir = report_dir / doc["run_id"]
    run_dir.mkdir(parents=True, exist_ok=False)
    links = {fmt: FILENAMES[fmt] for fmt in formats}
    written: dict[str, Path] = {}
    for fmt in formats:
        path = run_dir / FILENAMES[fmt]
        _atomic_write(path, _RENDERERS[fmt](doc, links))
        written[fmt] = path
    html = written.get("html")
    summary = render_markdown(doc, html_link=None if html is None else str(html.resolve()))
    append_step_summary(summary, env)
    latest = report_dir / "latest"
    tmp_link = report_dir / f".latest.{doc['run_id']}"
    tmp_link.symlink_to(doc["run_id"])
    os.replace(tmp_link, latest)
    return written
