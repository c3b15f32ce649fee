from __future__ import annotations

import random

import pytest

from kubedrill.checks import expect
from kubedrill.core import latency
from kubedrill.core.errors import ThresholdSyntaxError
from kubedrill.core.types import Verdict, worst
from kubedrill.timeline import (
    LoadOutcome,
    LoadWindow,
    MetricSample,
    ObjectTransition,
    PhaseMark,
    Timeline,
    WatchStatus,
)


def window(
    start: float,
    values_ms: list[float],
    errors: int = 0,
    worker: str = "w1",
    intended: int | None = None,
    dropped: int = 0,
    endpoint: str = "/v1/infer",
) -> LoadWindow:
    h = latency.new_histogram()
    for v in values_ms:
        h.record_value(int(v * 1000))
    return LoadWindow(
        endpoint,
        start,
        start + 1.0,
        len(values_ms),
        {"http_500": errors} if errors else {},
        h.encode().decode("ascii"),
        len(values_ms) if intended is None else intended,
        dropped,
        worker,
    )


def phased(*spans: tuple[str, float, float]) -> Timeline:
    tl = Timeline()
    for name, a, b in spans:
        tl.record(PhaseMark(name, "start"), t=a)
        tl.record(PhaseMark(name, "end"), t=b)
    return tl


def test_latency_merges_workers_exactly() -> None:
    rng = random.Random(1)
    values = [rng.lognormvariate(3, 1) for _ in range(4000)]
    tl = phased(("inject", 0, 100))
    for i in range(4):  # four workers, same seconds, different values
        for s in range(10):
            chunk = values[i * 1000 + s * 100 : i * 1000 + (s + 1) * 100]
            tl.record(window(float(s), chunk, worker=f"w{i}"), t=s + 1.0)
    one = latency.new_histogram()
    for v in values:
        one.record_value(int(v * 1000))
    result = expect("p99_ms <= 1000", phase="inject").evaluate(tl)
    assert result.value == latency.percentile_ms(one, 99)
    assert "4 worker(s)" in result.reason


def test_latency_pass_and_fail_by_phase() -> None:
    tl = phased(("baseline", 0, 10), ("inject", 10, 20))
    for s in range(10):
        tl.record(window(s, [10.0] * 50), t=s + 1)
        tl.record(window(10 + s, [10.0] * 40 + [900.0] * 10), t=11 + s)
    base = expect("p95_ms <= 100", phase="baseline").evaluate(tl)
    inj = expect("p95_ms <= 100", phase="inject").evaluate(tl)
    assert base.verdict is Verdict.PASS and base.value == pytest.approx(10, rel=0.01)
    assert inj.verdict is Verdict.FAIL and inj.value == pytest.approx(900, rel=0.01)
    assert "violates p95_ms <= 100" in inj.reason


@pytest.mark.parametrize(
    "expr", ["p95_ms <= 100", "error_rate < 0.01", "availability >= 0.99", "rps >= 1"]
)
def test_missing_load_data_is_inconclusive_never_pass(expr: str) -> None:
    tl = phased(("inject", 0, 10))
    r = expect(expr, phase="inject").evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.value is None
    assert r.reason.startswith("no data:")


def test_unknown_phase_is_inconclusive() -> None:
    r = expect("p95_ms <= 100", phase="recover").evaluate(phased(("inject", 0, 1)))
    assert r.verdict is Verdict.INCONCLUSIVE and "never started" in r.reason


def test_dropped_sends_make_latency_inconclusive() -> None:
    tl = phased(("inject", 0, 10))
    for s in range(10):
        tl.record(window(s, [5.0] * 50, intended=100 if s == 1 else 50, dropped=50 * (s == 1)))
    r = expect("p95_ms <= 100", phase="inject").evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE and "dropped 50 of 550" in r.reason


def test_dropped_sends_count_against_error_rate_and_availability() -> None:
    tl = phased(("inject", 0, 10))
    for s in range(10):
        tl.record(window(s, [5.0] * 70, intended=100, dropped=30))
    r = expect("error_rate < 1%", phase="inject").evaluate(tl)
    assert r.verdict is Verdict.FAIL and r.value == pytest.approx(0.3)
    assert "300 sends the generator dropped" in r.reason
    a = expect("availability >= 99%", phase="inject").evaluate(tl)
    assert a.verdict is Verdict.FAIL and a.value == 0
    lenient = expect("error_rate < 1%", phase="inject", count_dropped=False).evaluate(tl)
    assert lenient.verdict is Verdict.PASS


def test_error_rate_with_budget() -> None:
    tl = phased(("inject", 0, 10))
    for s in range(10):
        tl.record(window(s, [5.0] * 10, errors=2 if s == 1 else 0))
    r = expect("error_rate < 1%", phase="inject").evaluate(tl)
    assert r.verdict is Verdict.FAIL and r.value == pytest.approx(0.02)
    assert "http_500x2" in r.reason
    assert expect("error_rate < 5%", phase="inject").evaluate(tl).verdict is Verdict.PASS


@pytest.mark.parametrize(
    "expr", ["p95_ms <= 100", "error_rate < 0.01", "availability >= 0.99", "rps >= 1"]
)
def test_load_covering_a_tenth_of_the_phase_is_inconclusive(expr: str) -> None:
    tl = phased(("inject", 0, 30))
    for s in range(3):
        tl.record(window(s, [5.0] * 40))
    r = expect(expr, phase="inject").evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE, r.reason
    assert "load covered 3.0 s of 30.0 s (10%)" in r.reason
    assert r.coverage is not None and r.to_dict()["coverage"]["ratio"] == pytest.approx(0.1)


def test_a_load_run_that_died_is_named_in_every_load_check() -> None:
    tl = phased(("inject", 0, 10))
    for s in range(10):
        tl.record(window(s, [5.0] * 40), source="load:abc")
    tl.record(
        LoadOutcome("load:abc", "failed", 0, 9.5, 1200, 400, 400, 0, -9, "killed by signal 9"),
        source="load:abc",
    )
    for expr in ("p95_ms <= 100", "error_rate < 0.01", "availability >= 0.99"):
        r = expect(expr, phase="inject").evaluate(tl)
        assert r.verdict is Verdict.INCONCLUSIVE
        assert "load run load:abc failed (exit -9)" in r.reason
        assert "400 of 1200 intended requests completed" in r.reason


def test_a_violation_of_a_maximum_on_partial_load_still_fails() -> None:
    tl = phased(("inject", 0, 30))
    tl.record(window(0, [5.0] * 10 + [2000.0]))
    assert expect("max_ms <= 1000", phase="inject").evaluate(tl).verdict is Verdict.FAIL
    assert expect("p95_ms <= 1", phase="inject").evaluate(tl).verdict is Verdict.INCONCLUSIVE


def test_availability_counts_slots() -> None:
    tl = phased(("inject", 0, 10))
    for s in range(10):
        tl.record(window(s, [5.0] * 20, errors=20 if s == 3 else 0), t=s + 1)
    r = expect("availability >= 0.95", phase="inject").evaluate(tl)
    assert r.value == pytest.approx(0.9) and r.verdict is Verdict.FAIL


def test_availability_ignores_a_window_in_which_nothing_was_due() -> None:
    """A load run ends with a sliver of a window that nothing was scheduled into; it is
    not a slot in which the service was down."""
    tl = phased(("inject", 0, 11))
    for s in range(10):
        tl.record(window(s, [5.0] * 20), t=s + 1)
    tl.record(window(10, [], intended=0), t=11)
    r = expect("availability >= 0.995", phase="inject").evaluate(tl)
    assert r.verdict is Verdict.PASS and "10 of 10 slots up" in r.reason, r.reason


def test_availability_names_the_down_slots_and_why() -> None:
    tl = phased(("inject", 0, 10))
    for s in range(10):
        tl.record(window(s, [5.0] * 20, errors=3 if s == 4 else 0), t=s + 1)
    r = expect("availability >= 0.995", phase="inject").evaluate(tl)
    assert r.verdict is Verdict.FAIL
    assert "+4 s: 3 of 20 failed (http_500x3)" in r.reason, r.reason


def test_throughput() -> None:
    tl = phased(("inject", 0, 10))
    for s in range(10):
        tl.record(window(s, [5.0] * 20), t=s + 1)
    r = expect("rps >= 19", phase="inject").evaluate(tl)
    assert r.verdict is Verdict.PASS and r.value == pytest.approx(20)


def _replicas(tl: Timeline, t: float, n: int) -> None:
    if not tl.select(WatchStatus):
        tl.record(WatchStatus("Deployment", "synced"), t=0)
    tl.record(
        ObjectTransition("Deployment", "drill", "svc", "MODIFIED", {"ready_replicas": n}), t=t
    )


def test_scale_up_within() -> None:
    tl = phased(("inject", 100, 400))
    _replicas(tl, 50, 1)
    _replicas(tl, 150, 2)
    _replicas(tl, 190, 4)
    ok = expect("scale_up_within: 120s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert ok.verdict is Verdict.PASS and ok.value == pytest.approx(90)
    late = expect("scale_up_within: 60s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert late.verdict is Verdict.FAIL
    never = expect("scale_up_within: 60s", phase="inject", object_name="svc", target=8).evaluate(tl)
    assert never.verdict is Verdict.FAIL and never.value is None
    assert "never reached 8 in 300.0 s" in never.reason and "best seen 4" in never.reason


@pytest.mark.parametrize("expr", ["scale_up_within >= 30s", "scale_up_within < 30s"])
def test_a_deadline_only_takes_at_most(expr: str) -> None:
    with pytest.raises(ThresholdSyntaxError, match="deadline"):
        expect(expr, phase="inject", object_name="svc", target=4)


def test_a_watch_gap_makes_an_unbroken_floor_inconclusive_and_a_broken_one_fail() -> None:
    tl = phased(("inject", 100, 160))
    _replicas(tl, 10, 3)
    tl.record(WatchStatus("Deployment", "lost", "connection reset"), t=120)
    tl.record(WatchStatus("Deployment", "synced"), t=140)
    r = expect("replicas >= 2", phase="inject", object_name="svc").evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert "down from 20.0 s" in r.reason and "to 40.0 s" in r.reason and "(20.0 s)" in r.reason
    assert r.coverage is not None and r.coverage.ratio == pytest.approx(40 / 60)
    _replicas(tl, 150, 1)
    r = expect("replicas >= 2", phase="inject", object_name="svc").evaluate(tl)
    assert r.verdict is Verdict.FAIL and r.value == 1


def test_a_watch_gap_before_the_target_was_reached_keeps_a_pass_but_not_a_fail() -> None:
    tl = phased(("inject", 100, 400))
    _replicas(tl, 50, 1)
    tl.record(WatchStatus("Deployment", "lost", "connection reset"), t=110)
    tl.record(WatchStatus("Deployment", "synced"), t=180)
    _replicas(tl, 190, 4)
    ok = expect("scale_up_within: 120s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert ok.verdict is Verdict.PASS and "upper bound" in ok.reason
    late = expect("scale_up_within: 60s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert late.verdict is Verdict.INCONCLUSIVE and "while the watch was down" in late.reason


def test_scale_up_reached_before_the_phase_counts_as_zero_and_after_it_does_not() -> None:
    tl = phased(("inject", 100, 200))
    _replicas(tl, 50, 4)  # already there when the phase starts
    r = expect("scale_up_within: 60s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert r.verdict is Verdict.PASS and r.value == 0 and "already" in r.reason
    tl = phased(("inject", 100, 200))
    _replicas(tl, 50, 1)
    _replicas(tl, 250, 4)  # only after the phase ended
    r = expect("scale_up_within: 60s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert r.verdict is Verdict.FAIL and "best seen 1" in r.reason


def test_scale_deadline_not_observed_is_inconclusive() -> None:
    tl = phased(("inject", 100, 130))
    _replicas(tl, 110, 2)
    r = expect("scale_up_within: 120s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE and "could not fail here" in r.reason
    r = expect("scale_up_within: 120s", phase="inject", object_name="other", target=4).evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE and "no observations" in r.reason


def test_replica_floor_uses_value_before_window() -> None:
    tl = phased(("inject", 100, 200))
    _replicas(tl, 10, 3)
    _replicas(tl, 150, 1)
    _replicas(tl, 160, 3)
    r = expect("replicas >= 2", phase="inject", object_name="svc").evaluate(tl)
    assert r.verdict is Verdict.FAIL and r.value == 1


def test_metric_check() -> None:
    tl = phased(("inject", 0, 10))
    for i, v in enumerate([50.0, 99.0, 70.0, 60.0, 55.0, 52.0, 51.0, 50.0, 50.0, 50.0]):
        tl.record(MetricSample("DCGM_FI_DEV_GPU_UTIL", v, {"gpu": "0"}), t=i + 0.5)
    r = expect(
        "value >= 95", phase="inject", metric="DCGM_FI_DEV_GPU_UTIL", labels={"gpu": "0"}
    ).evaluate(tl)
    assert r.verdict is Verdict.PASS and r.value == 99
    r = expect(
        "value >= 95", phase="inject", metric="DCGM_FI_DEV_GPU_UTIL", labels={"gpu": "1"}
    ).evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE


def test_metric_samples_covering_part_of_the_window_are_inconclusive() -> None:
    tl = phased(("inject", 0, 10))
    for i in range(3):
        tl.record(MetricSample("util", 99.0), t=i + 0.5)
    r = expect("value >= 95", phase="inject", metric="util").evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE and "samples covered 3.0 s of 10.0 s" in r.reason


def test_a_check_that_raises_is_error() -> None:
    tl = phased(("inject", 0, 1))
    tl.record(LoadWindow("/x", 0, 1, 5, {}, "not-a-histogram", 5, 0, "w"), t=1)
    r = expect("p95_ms <= 100", phase="inject").evaluate(tl)
    assert r.verdict is Verdict.ERROR and r.reason


def test_expect_rejects_wrong_parameters() -> None:
    with pytest.raises(ThresholdSyntaxError, match="scale_up_within"):
        expect("scale_up_within: 1m", object_name="svc")  # missing target


def test_worst() -> None:
    assert worst([Verdict.PASS, Verdict.INCONCLUSIVE]) is Verdict.INCONCLUSIVE
    assert worst([Verdict.FAIL, Verdict.ERROR, Verdict.PASS]) is Verdict.ERROR
    assert worst([]) is Verdict.INCONCLUSIVE


def _recovery_timeline(bad_until: float, end: float = 60.0) -> Timeline:
    """Fault ends at t=30 (recover phase starts); latency is bad until ``bad_until``."""
    tl = phased(("inject", 20, 30), ("recover", 30, end))
    for s in range(20, int(end)):
        tl.record(window(float(s), [900.0 if s < bad_until else 20.0] * 20), t=s + 1)
    return tl


def test_recover_within_measures_time_until_slo_holds() -> None:
    tl = _recovery_timeline(bad_until=37)
    r = expect("recover_within: 15s", phase="recover", slo="p95_ms <= 200", hold_s=5).evaluate(tl)
    assert r.verdict is Verdict.PASS, r.reason
    assert r.value == pytest.approx(7)
    slow = expect("recover_within: 5s", phase="recover", slo="p95_ms <= 200", hold_s=5).evaluate(tl)
    assert slow.verdict is Verdict.FAIL


def test_recover_never_is_fail_once_the_deadline_was_observed() -> None:
    tl = _recovery_timeline(bad_until=1000)
    r = expect("recover_within: 10s", phase="recover", slo="p95_ms <= 200", hold_s=5).evaluate(tl)
    assert r.verdict is Verdict.FAIL and "never held" in r.reason


def test_recover_not_yet_observed_is_inconclusive() -> None:
    tl = _recovery_timeline(bad_until=1000, end=36)
    r = expect("recover_within: 30s", phase="recover", slo="p95_ms <= 200", hold_s=5).evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE and "could not fail here" in r.reason


def test_recovery_needs_every_slot_of_the_hold_to_meet_the_slo() -> None:
    """Merged over 5 s, one bad second among good ones passes p95; slot by slot it does not."""
    tl = phased(("recover", 0, 40))
    for s in range(40):
        tl.record(window(float(s), [900.0] * 10 if s < 4 else [20.0] * 100))
    r = expect("recover_within: 10s", phase="recover", slo="p95_ms <= 200", hold_s=5).evaluate(tl)
    assert r.verdict is Verdict.PASS and r.value == pytest.approx(4)
    tl = phased(("recover", 0, 40))
    for s in range(40):
        bad = s % 4 == 3  # one bad second every 4 s: merged over 5 s, p95 would pass
        tl.record(window(float(s), [900.0] * 10 if bad else [20.0] * 100))
    r = expect("recover_within: 10s", phase="recover", slo="p95_ms <= 200", hold_s=5).evaluate(tl)
    assert r.verdict is Verdict.FAIL and "never held in every slot" in r.reason


def test_recover_needs_a_phase() -> None:
    with pytest.raises(ThresholdSyntaxError, match="needs phase"):
        expect("recover_within: 30s", slo="p95_ms <= 200")
