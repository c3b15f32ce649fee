"""The baseline diff: two runs of one build are not a regression; a 30 % p95 regression
is, with its confidence interval; new failures count; exit codes come from the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubedrill.cli import main
from kubedrill.report.diff import diff_runs
from kubedrill.report.synthetic import synthetic_run

KW: dict[str, Any] = {"duration_s": 240.0, "requests": 40_000, "events": 100}


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    return {
        "base": synthetic_run(seed=21, **KW),
        "same": synthetic_run(seed=22, **KW),
        "slow": synthetic_run(seed=23, latency_factor=1.3, **KW),
    }


def test_two_runs_of_one_build_are_not_a_regression(runs: dict[str, dict[str, Any]]) -> None:
    d = diff_runs(runs["base"], runs["same"], tolerance_pct=10)
    assert d.latency and not d.regressed, d.to_text()
    for r in d.latency:
        lo, hi = r["delta_ci_pct"]
        assert lo <= r["delta_pct"] <= hi


def test_a_30_percent_p95_regression_is_flagged_with_its_interval(
    runs: dict[str, dict[str, Any]],
) -> None:
    d = diff_runs(runs["base"], runs["slow"], tolerance_pct=10)
    p95 = [r for r in d.latency if r["percentile"] == "p95" and r["scope"] == "all"]
    assert len(p95) == 1 and p95[0]["regressed"]
    assert 25 < p95[0]["delta_pct"] < 35 and p95[0]["delta_ci_pct"][0] > 10
    assert any("p95" in line for line in d.regressions)
    # a tolerance wider than the change lets it through
    assert not diff_runs(runs["base"], runs["slow"], tolerance_pct=60).regressed


def test_a_check_that_newly_fails_is_a_regression(runs: dict[str, dict[str, Any]]) -> None:
    worse = json.loads(json.dumps(runs["same"]))
    check = worse["scenarios"][0]["checks"][0]
    check["verdict"], check["reason"] = "FAIL", "made to fail"
    d = diff_runs(runs["base"], worse, tolerance_pct=10)
    assert [f["check"] for f in d.new_failures] == [check["name"]]
    assert d.regressed and "made to fail" in d.to_text()


def test_scaling_timings_are_compared(runs: dict[str, dict[str, Any]]) -> None:
    later = json.loads(json.dumps(runs["same"]))
    check = next(c for c in later["scenarios"][0]["checks"] if c["unit"] == "s")
    check["value"] += 30.0
    d = diff_runs(runs["base"], later, tolerance_pct=10)
    assert [t["regressed"] for t in d.timings] == [True]


def test_the_cli_exits_1_on_a_regression_and_0_otherwise(
    runs: dict[str, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {}
    for name, doc in runs.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(doc))
    with pytest.raises(SystemExit) as e:
        main(["report", "diff", str(paths["base"]), str(paths["same"])])
    assert e.value.code == 0
    out = tmp_path / "diff.json"
    with pytest.raises(SystemExit) as e:
        main(["report", "diff", str(paths["base"]), str(paths["slow"]), "--json", str(out)])
    assert e.value.code == 1
    assert "REGRESSED" in capsys.readouterr().out
    assert json.loads(out.read_text())["regressed"] is True
    with pytest.raises(SystemExit) as e:
        main(["report", "diff", str(tmp_path / "missing.json"), str(paths["same"])])
    assert e.value.code == 2
