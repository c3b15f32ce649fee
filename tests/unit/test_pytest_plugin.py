"""The plugin, exercised through pytester: real pytest runs of small scenario files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kubedrill.report import validate_run_document

SCENARIO = """
import time

import pytest
from kubedrill import latency
from kubedrill.timeline import LoadWindow


def feed(drill, values_ms, errors=0):
    h = latency.new_histogram()
    for v in values_ms:
        h.record_value(int(v * 1000))
    now = time.monotonic()
    drill.record(LoadWindow("/v1/infer", now - 0.001, now, len(values_ms),
                            {"http_500": errors} if errors else {},
                            h.encode().decode("ascii"), len(values_ms), 0, "w1"))


@pytest.mark.ci
def test_steady(drill):
    drill.expect("p95_ms <= 100")
    drill.expect("error_rate < 1%")
    with drill.phase("baseline"):
        feed(drill, [10.0] * 100)


@pytest.mark.ci
def test_slow(drill):
    drill.expect("p95_ms <= 100", name="p95 under load")
    drill.expect("error_rate < 1%", name="errors under load")
    feed(drill, [500.0] * 100, errors=5)


@pytest.mark.gameday
def test_nothing_measured(drill):
    drill.expect("p99_ms <= 100", phase="inject")
"""


def _run_dir(pytester: pytest.Pytester) -> Path:
    latest = pytester.path / "reports" / "latest"
    assert latest.is_symlink()
    return latest.resolve()


def test_checks_become_junit_testcases_and_run_json_validates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenarios=SCENARIO)
    result = pytester.runpytest("--report-dir", "reports")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*FAIL: p95 under load*violates p95_ms <= 100*",
            "*INCONCLUSIVE: p99_ms <= 100 during inject*never started*",
            "*verdict: FAIL*",
        ]
    )
    run_dir = _run_dir(pytester)
    doc = json.loads((run_dir / "run.json").read_text())
    validate_run_document(doc)
    assert doc["verdict"] == "FAIL"
    assert doc["check_counts"] == {"PASS": 2, "INCONCLUSIVE": 1, "FAIL": 2, "ERROR": 0}
    by_id = {s["id"].split("::")[1]: s for s in doc["scenarios"]}
    assert by_id["test_steady"]["verdict"] == "PASS"
    assert by_id["test_slow"]["verdict"] == "FAIL"
    assert by_id["test_nothing_measured"]["verdict"] == "INCONCLUSIVE"
    assert by_id["test_steady"]["timeline"]["observations"]  # the evidence travels with the verdict

    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 5  # one per check
    assert suite.get("tests") == "5" and suite.get("failures") == "3"
    slow = {c.get("name"): c for c in cases if c.get("classname", "").endswith("test_slow")}
    failure = slow["p95 under load"].find("failure")
    assert failure is not None and "p95_ms = 500" in (failure.get("message") or "")
    props = {p.get("name"): p.get("value") for p in slow["p95 under load"].iter("property")}
    assert props["verdict"] == "FAIL" and props["threshold"] == "p95_ms <= 100"
    assert (run_dir / "summary.md").read_text().startswith("# kubedrill run")


def test_inconclusive_policy_warn_does_not_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenarios=SCENARIO)
    pytester.makefile(".yaml", drill="run:\n  inconclusive: warn\n")
    result = pytester.runpytest(
        "--report-dir", "reports", "--drill-config", "drill.yaml", "-k", "nothing"
    )
    result.assert_outcomes(passed=1, deselected=2)


def test_suite_selects_by_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenarios=SCENARIO)
    result = pytester.runpytest("--report-dir", "reports", "--suite", "gameday")
    result.assert_outcomes(failed=1, deselected=2)


def test_bad_marker_arguments_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="import pytest\n@pytest.mark.gpu(cnt=2)\ndef test_a(drill):\n    pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gpu takes only count=*"])


def test_unknown_marker_is_rejected_strictly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="import pytest\n@pytest.mark.gamedya\ndef test_a(drill):\n    pass\n"
    )
    result = pytester.runpytest("--strict-markers")
    assert result.ret != 0


def test_bad_config_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", drill="load:\n  workers: lots\n")
    pytester.makepyfile(test_x="def test_a(drill):\n    pass\n")
    result = pytester.runpytest("--drill-config", "drill.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*drill.yaml: load.workers: expected an integer*"])


def test_scenario_without_checks_is_inconclusive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a(drill):\n    pass\n")
    result = pytester.runpytest("--report-dir", "reports")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*registered no checks*"])


def test_crashing_scenario_is_error_and_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="def test_a(drill):\n    drill.expect('p95_ms <= 1')\n    raise RuntimeError('boom')"
    )
    result = pytester.runpytest("--report-dir", "reports")
    result.assert_outcomes(failed=1)
    doc = json.loads((_run_dir(pytester) / "run.json").read_text())
    assert doc["verdict"] == "ERROR"
    assert "RuntimeError: boom" in doc["scenarios"][0]["message"]


def test_cluster_marker_skips_with_how_to_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(pytester.path / "missing"))
    monkeypatch.setenv("HOME", str(pytester.path))
    pytester.makepyfile(
        test_x="import pytest\n@pytest.mark.cluster\ndef test_a(drill):\n    pass\n"
    )
    result = pytester.runpytest("--report-dir", "reports", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*kubedrill sandbox up*"])
    doc = json.loads((_run_dir(pytester) / "run.json").read_text())
    assert doc["scenarios"][0]["status"] == "skipped" and doc["verdict"] == "INCONCLUSIVE"


def test_dry_run_and_time_scale_reach_the_drill(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=(
            "def test_a(drill):\n"
            "    assert drill.dry_run\n"
            "    assert drill.seconds(60) == 6\n"
            "    drill.expect('p95_ms <= 1')\n"
        )
    )
    result = pytester.runpytest("--report-dir", "reports", "--dry-run", "--time-scale", "0.1")
    result.assert_outcomes(passed=1)
    doc = json.loads((_run_dir(pytester) / "run.json").read_text())
    assert doc["dry_run"] is True and doc["verdict"] == "INCONCLUSIVE"


def test_runs_never_overwrite_each_other(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenarios=SCENARIO)
    pytester.runpytest("--report-dir", "reports", "-k", "steady")
    pytester.runpytest("--report-dir", "reports", "-k", "steady")
    runs = [p for p in (pytester.path / "reports").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 2


def test_cluster_watch_skips_with_how_to_fix_without_a_cluster(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(pytester.path / "missing"))
    monkeypatch.setenv("HOME", str(pytester.path))
    pytester.makepyfile(
        test_x="def test_a(drill, cluster_watch):\n    drill.expect('p95_ms <= 1')\n"
    )
    result = pytester.runpytest("--report-dir", "reports", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*kubedrill sandbox up*"])
