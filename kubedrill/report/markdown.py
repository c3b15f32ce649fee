"""A short Markdown summary: the verdict, then one row per check."""

from __future__ import annotations

from typing import Any

__all__ = ["render_markdown"]

_ICON = {"PASS": "✅", "FAIL": "❌", "ERROR": "💥", "INCONCLUSIVE": "❔", None: "⏭"}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# kubedrill run {doc['run_id']}: {_ICON[doc['verdict']]} {doc['verdict']}",
        "",
        f"- target: `{doc['target']['name']}` in namespace `{doc['target']['namespace']}`",
        f"- started {doc['started']}, took {doc['duration_s']:.1f}s; suite `{doc['suite']}`"
        + (" (dry run)" if doc["dry_run"] else ""),
        "- checks: " + ", ".join(f"{n} {k}" for k, n in doc["check_counts"].items()),
        "",
    ]
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
