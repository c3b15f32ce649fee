"""A failing run: the Markdown names each failed check with its reason and links the HTML,
lands in $GITHUB_STEP_SUMMARY (appended), and JUnit's failure message carries the reason
and the numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from kubedrill.report.junit import render_junit
from kubedrill.report.markdown import render_markdown
from kubedrill.report.synthetic import synthetic_run
from kubedrill.report.writer import write_reports


@pytest.fixture(scope="module")
def failing() -> dict[str, Any]:
    doc = synthetic_run(duration_s=90, requests=4500, events=60, seed=7, latency_factor=2.5)
    assert doc["verdict"] == "FAIL"
    return doc


def _failed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for sc in doc["scenarios"] for c in sc["checks"] if c["verdict"] == "FAIL"]


def test_markdown_lists_failed_checks_with_reasons_and_links_the_html(
    failing: dict[str, Any],
) -> None:
    md = render_markdown(failing, html_link="report.html")
    assert "[HTML report](report.html)" in md
    _, _, rest = md.partition("## Failed checks")
    assert rest, md
    failed = _failed(failing)
    assert failed
    for c in failed:
        line = next(ln for ln in rest.splitlines() if c["name"] in ln)
        assert c["reason"].replace("|", "\\|") in line
        assert c["threshold"] in line and "FAIL" in line
    assert "client p95 at baseline" in rest


def test_junit_failure_message_carries_value_threshold_and_reason(
    failing: dict[str, Any],
) -> None:
    root = ET.fromstring(render_junit(failing))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    for check in _failed(failing):
        fail = cases[check["name"]].find("failure")
        assert fail is not None
        msg = fail.get("message") or ""
        assert msg.startswith(f"FAIL: {check['name']}: {check['value']:.6g}")
        assert f"against {check['threshold']}" in msg
        assert check["reason"][:200] in (fail.text or "")
        assert "evidence 100% of its window" in msg


def test_the_step_summary_is_appended_when_github_sets_it(
    failing: dict[str, Any], tmp_path: Path
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    written = write_reports(failing, tmp_path / "reports", ["json", "html", "markdown"], env)
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "## Failed checks" in text and str(written["html"].resolve()) in text
    assert written["markdown"].read_text().count("(report.html)") == 1
    write_reports(
        {**failing, "run_id": failing["run_id"][:-1] + "f"}, tmp_path / "r2", ["json"], env
    )
    assert summary.read_text().count("## Failed checks") == 2
    # and without the variable nothing is written anywhere
    assert write_reports(
        {**failing, "run_id": failing["run_id"][:-1] + "e"}, tmp_path / "r3", ["json"], {}
    )
