"""JUnit XML with one testcase per check, so CI shows which claim failed and why."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

__all__ = ["render_junit"]


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def _message(check: dict[str, Any]) -> str:
    """The failure line CI shows: the verdict, the measured value against the threshold,
    the evidence's coverage, then the reason (which names the figures)."""
    unit = "" if check["unit"] in ("ratio", "value", "") else f" {check['unit']}"
    value = "no value" if check["value"] is None else f"{_fmt(check['value'])}{unit}"
    cov = check.get("coverage")
    covered = "" if not cov else f", evidence {cov['ratio']:.0%} of its window"
    return (
        f"{check['verdict']}: {check['name']}: {value} against {check['threshold']}{covered}"
        f" — {check['reason']}"
    )


def render_junit(doc: dict[str, Any]) -> str:
    """Render a run document (see ``run.schema.json``) as JUnit XML."""
    inconclusive_fails = doc["inconclusive_policy"] == "fail" and not doc["dry_run"]
    suites = ET.Element("testsuites", name=f"kubedrill {doc['run_id']}")
    suite = ET.SubElement(suites, "testsuite", name="kubedrill", timestamp=doc["started"])
    tests = failures = errors = skipped = 0
    for sc in doc["scenarios"]:
        cases: list[tuple[str, dict[str, Any] | None]] = [(c["name"], c) for c in sc["checks"]]
        if sc["status"] != "ran" or not cases:
            cases.append(("scenario", None))
        for name, check in cases:
            tests += 1
            seconds = sc["duration_s"] if check is None else 0.0
            case = ET.SubElement(
                suite, "testcase", classname=sc["id"], name=name, time=f"{seconds:.3f}"
            )
            if check is None:
                if sc["status"] == "skipped":
                    skipped += 1
                    ET.SubElement(case, "skipped", message=sc["message"][:500])
                elif sc["status"] == "errored":
                    errors += 1
                    el = ET.SubElement(case, "error", message=sc["message"][:500], type="ERROR")
                    el.text = sc["message"]
                else:
                    failures += int(inconclusive_fails)
                    tag = "failure" if inconclusive_fails else "skipped"
                    ET.SubElement(
                        case, tag, message="INCONCLUSIVE: the scenario registered no checks"
                    )
                continue
            props = ET.SubElement(case, "properties")
            for key in ("verdict", "kind", "value", "unit", "threshold", "phase"):
                ET.SubElement(props, "property", name=key, value=_fmt(check[key]))
            verdict, reason = check["verdict"], _message(check)
            if verdict == "FAIL":
                failures += 1
                el = ET.SubElement(case, "failure", message=reason[:500], type="FAIL")
                el.text = reason
            elif verdict == "ERROR":
                errors += 1
                el = ET.SubElement(case, "error", message=reason[:500], type="ERROR")
                el.text = reason
            elif verdict == "INCONCLUSIVE":
                if inconclusive_fails:
                    failures += 1
                    el = ET.SubElement(case, "failure", message=reason[:500], type="INCONCLUSIVE")
                    el.text = reason
                else:
                    skipped += 1
                    ET.SubElement(case, "skipped", message=f"INCONCLUSIVE: {reason}"[:500])
            else:
                ET.SubElement(case, "system-out").text = reason
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{doc['duration_s']:.3f}")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
