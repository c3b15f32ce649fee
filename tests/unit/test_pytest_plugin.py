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
from kubedrill.core import latency
from kubedrill.timeline import LoadWindow


def feed(drill, values_ms, errors=0):
    h = latency.new_histogram()
    for v in values_ms:
        h.record_value(int(v * 1000))
    now = time.monotonic()
    drill.record(LoadWindow("/v1/infer", now - 1.0, now, len(values_ms),
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
    result = pytester.runpytest("--drill-report-dir", "reports")
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
    assert by_id["test_steady"]["timeline"]["series"]  # the evidence travels with the verdict

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
        "--drill-report-dir", "reports", "--drill-config", "drill.yaml", "-k", "nothing"
    )
    result.assert_outcomes(passed=1, deselected=2)


def test_suite_selects_by_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenarios=SCENARIO)
    result = pytester.runpytest("--drill-report-dir", "reports", "--drill-suite", "gameday")
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
    result = pytester.runpytest("--drill-report-dir", "reports")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*registered no checks*"])


def test_crashing_scenario_is_error_and_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="def test_a(drill):\n    drill.expect('p95_ms <= 1')\n    raise RuntimeError('boom')"
    )
    result = pytester.runpytest("--drill-report-dir", "reports")
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
    result = pytester.runpytest("--drill-report-dir", "reports", "-rs")
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
    result = pytester.runpytest(
        "--drill-report-dir", "reports", "--drill-dry-run", "--drill-time-scale", "0.1"
    )
    result.assert_outcomes(passed=1)
    doc = json.loads((_run_dir(pytester) / "run.json").read_text())
    assert doc["dry_run"] is True and doc["verdict"] == "INCONCLUSIVE"


def test_runs_never_overwrite_each_other(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenarios=SCENARIO)
    pytester.runpytest("--drill-report-dir", "reports", "-k", "steady")
    pytester.runpytest("--drill-report-dir", "reports", "-k", "steady")
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
    result = pytester.runpytest("--drill-report-dir", "reports", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*kubedrill sandbox up*"])


TEARDOWN = """
import time

import pytest
from kubedrill.core import latency
from kubedrill.timeline import LoadWindow


def feed(drill, ms):
    h = latency.new_histogram()
    for _ in range(50):
        h.record_value(int(ms * 1000))
    now = time.monotonic()
    drill.record(LoadWindow("/v1/infer", now - 1.0, now, 50, {}, h.encode().decode(), 50, 0, "w"))


@pytest.fixture
def late_evidence(drill):
    yield
    feed(drill, 10.0)  # recorded in teardown: judged only if checks wait for teardown


@pytest.fixture
def broken_rollback(drill):
    yield
    raise RuntimeError("rollback failed: node cpu-0 is still cordoned")


def test_judged_after_teardown(drill, late_evidence):
    drill.expect("p95_ms <= 100")


def test_rollback_fails(drill, broken_rollback):
    drill.expect("p95_ms <= 100")
    feed(drill, 10.0)
"""


def test_checks_are_judged_after_teardown_and_a_failed_teardown_is_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=TEARDOWN)
    result = pytester.runpytest("--drill-report-dir", "reports")
    result.assert_outcomes(passed=2, errors=1)
    doc = json.loads((_run_dir(pytester) / "run.json").read_text())
    by = {s["name"]: s for s in doc["scenarios"]}
    assert by["test_judged_after_teardown"]["verdict"] == "PASS"
    broken = by["test_rollback_fails"]
    assert broken["verdict"] == "ERROR" and broken["status"] == "errored"
    assert "teardown failed: RuntimeError: rollback failed" in broken["message"]
    assert doc["verdict"] == "ERROR"


SKIPPED_BESIDE_PASSING = """
import time

import pytest
from kubedrill.core import latency
from kubedrill.timeline import LoadWindow


def test_passes(drill):
    drill.expect("p95_ms <= 100")
    h = latency.new_histogram()
    h.record_value(5000)
    now = time.monotonic()
    drill.record(LoadWindow("/v1/infer", now - 1.0, now, 1, {}, h.encode().decode(), 1, 0, "w"))


@pytest.mark.cluster
def test_needs_a_cluster(drill):
    drill.expect("p95_ms <= 100")
"""


@pytest.mark.parametrize(
    ("policy", "verdict"), [("inconclusive", "INCONCLUSIVE"), ("allow", "PASS")]
)
def test_a_skipped_scenario_is_not_a_passed_one(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, policy: str, verdict: str
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(pytester.path / "missing"))
    monkeypatch.setenv("HOME", str(pytester.path))
    pytester.makepyfile(test_x=SKIPPED_BESIDE_PASSING)
    pytester.makefile(".yaml", drill=f"run:\n  skipped: {policy}\n")
    result = pytester.runpytest("--drill-report-dir", "reports")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*skipped*test_needs_a_cluster*no kubeconfig found*"])
    doc = json.loads((_run_dir(pytester) / "run.json").read_text())
    assert doc["verdict"] == verdict
    assert [s["id"].split("::")[1] for s in doc["skipped"]] == ["test_needs_a_cluster"]


def test_only_prefixed_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a():\n    pass\n")
    assert pytester.runpytest("--report-dir", "x").ret == pytest.ExitCode.USAGE_ERROR
    assert pytester.runpytest("--drill-report-dir", "x").ret == pytest.ExitCode.OK


def test_a_repeated_phase_name_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=(
            "def test_a(drill):\n"
            "    drill.expect('p95_ms <= 1', phase='stall')\n"
            "    with drill.phase('stall'):\n"
            "        pass\n"
            "    with drill.phase('stall'):\n"
            "        pass\n"
        )
    )
    result = pytester.runpytest("--drill-report-dir", "reports")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*phase 'stall' was already used*"])


def test_a_corrupt_spool_makes_the_scenario_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=(
            "def test_a(drill, tmp_path):\n"
            "    drill.expect('p95_ms <= 1')\n"
            "    spool = drill.timeline.spool(tmp_path / 's.jsonl')\n"
            "    spool.write_bytes(b'garbage\\n')\n"
        )
    )
    result = pytester.runpytest("--drill-report-dir", "reports")
    result.assert_outcomes(failed=1)
    doc = json.loads((_run_dir(pytester) / "run.json").read_text())
    assert doc["verdict"] == "ERROR"
    assert "the run's evidence is damaged" in doc["scenarios"][0]["message"]
    assert result.ret != 0
