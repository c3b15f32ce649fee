"""A short Markdown summary: the verdict, then one row per check."""

from __future__ import annotations

from typing import Any

__all__ = ["render_markdown"]

_ICON = {"PASS": "✅", "FAIL": "❌", "ERROR": "💥", "INCONCLUSIVE": "❔", None: "⏭"}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _failed(doc: dict[str, Any]) -> list[str]:
    rows = [
        (sc, c)
        for sc in doc["scenarios"]
        for c in sc["checks"]
        if c["verdict"] in ("FAIL", "ERROR")
        or (c["verdict"] == "INCONCLUSIVE" and doc["inconclusive_policy"] == "fail")
    ]
    errored = [sc for sc in doc["scenarios"] if sc["status"] == "errored"]
    if not rows and not errored:
        return []
    out = ["## Failed checks", ""]
    for sc in errored:
        out.append(f"- 💥 `{_cell(sc['id'])}` errored: {_cell(sc['message'])[:500]}")
    for sc, c in rows:
        unit = "" if c["unit"] in ("ratio", "value") else c["unit"]
        value = "no value" if c["value"] is None else f"{c['value']:.4g} {unit}".strip()
        out.append(
            f"- {_ICON[c['verdict']]} **{_cell(c['name'])}** (`{_cell(sc['id'])}`): "
            f"{c['verdict']}, {value} against `{_cell(c['threshold'])}` — {_cell(c['reason'])}"
        )
    return [*out, ""]


def render_markdown(doc: dict[str, Any], html_link: str | None = None) -> str:
    """The summary; ``html_link`` (a path or URL) points at the run's HTML report."""
    lines = [
        f"# kubedrill run {doc['run_id']}: {_ICON[doc['verdict']]} {doc['verdict']}",
        "",
        f"- target: `{doc['target']['name']}` in namespace `{doc['target']['namespace']}`",
        f"- started {doc['started']}, took {doc['duration_s']:.1f}s; suite `{doc['suite']}`"
        + (" (dry run)" if doc["dry_run"] else ""),
        "- checks: " + ", ".join(f"{n} {k}" for k, n in doc["check_counts"].items()),
    ]
    if html_link:
        lines.append(f"- timelines, capacity and every figure: [HTML report]({html_link})")
    lines.append("")
    lines += _failed(doc)
    skipped = doc.get("skipped") or []
    if skipped:
        counted = (
            "each makes the run INCONCLUSIVE"
            if doc.get("skipped_policy") == "inconclusive"
            else "allowed by run.skipped"
        )
        lines += [f"**Skipped ({len(skipped)}; {counted}):**", ""]
        lines += [f"- `{_cell(s['id'])}`: {_cell(s['reason'])}" for s in skipped] + [""]
    for sc in doc["scenarios"]:
        lines.append(
            f"## {_ICON[sc['verdict']]} {_cell(sc['name'])} — {sc['verdict'] or 'SKIPPED'}"
        )
        lines.append("")
        if sc["message"]:
            lines += [f"> {_cell(sc['message'])[:500]}", ""]
        if sc["checks"]:
            lines += [
                "| check | verdict | value | threshold | evidence | reason |",
                "|---|---|---|---|---|---|",
            ]
            for c in sc["checks"]:
                unit = "" if c["unit"] in ("ratio", "value") else c["unit"]
                value = "—" if c["value"] is None else f"{c['value']:.4g} {unit}".strip()
                cov = c.get("coverage")
                covered = "—" if not cov else f"{cov['ratio']:.0%} ({cov['source']})"
                lines.append(
                    f"| {_cell(c['name'])} | {_ICON[c['verdict']]} {c['verdict']} | {value} "
                    f"| {_cell(c['threshold'])} | {covered} | {_cell(c['reason'])} |"
                )
            lines.append("")
    return "\n".join(lines)
