"""Read a run document back: schema v3 (this version) or v2 (timelines as observation
lists), validated against its own schema, with each scenario's timeline decoded on demand."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from kubedrill.core.errors import ConfigError
from kubedrill.run.record import decode_timeline
from kubedrill.timeline import Timeline

__all__ = ["SCHEMAS", "load_run_document", "scenario_timeline", "schema_for"]

#: schema_version → the schema file that describes it
SCHEMAS = {3: "run.schema.json", 2: "run-v2.schema.json"}


@cache
def schema_for(version: int) -> dict[str, Any]:
    text = resources.files("kubedrill.report").joinpath(SCHEMAS[version]).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_run_document(path: Path) -> dict[str, Any]:
    """The run document at ``path`` (v2 or v3), validated; a file that is not one is a
    :class:`ConfigError` naming it."""
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except OSError as e:
        raise ConfigError(str(path), "", "a readable kubedrill run.json", e.strerror) from None
    except ValueError as e:
        raise ConfigError(str(path), "", "a JSON run document", str(e)[:120]) from None
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if version not in SCHEMAS:
        raise ConfigError(
            str(path), "schema_version", f"one of {sorted(SCHEMAS)} (a kubedrill run.json)", version
        )
    try:
        jsonschema.validate(doc, schema_for(version), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(document)"
        raise ConfigError(str(path), where, "a valid run document", e.message[:200]) from None
    out: dict[str, Any] = doc
    return out


def scenario_timeline(scenario: dict[str, Any]) -> Timeline | None:
    """The scenario's timeline as a :class:`Timeline` (None when it recorded none)."""
    raw = scenario.get("timeline")
    if raw is None:
        return None
    return Timeline.from_json(decode_timeline(raw))
