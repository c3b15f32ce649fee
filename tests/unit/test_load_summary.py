"""Summaries: exact HDR merging across workers, windows, phases; rates and drops."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubedrill.core import latency
from kubedrill.load.summary import WHOLE_RUN, per_phase, per_window, summarize
from kubedrill.timeline import LoadWindow, PhaseMark, Timeline


def window(
    values_us: list[int],
    start: float = 0.0,
    end: float = 1.0,
    worker: str = "w0",
    endpoint: str = "/v1/infer",
    errors: dict[str, int] | None = None,
    intended: int = 0,
    dropped: int = 0,
) -> LoadWindow:
    h = latency.new_histogram()
    for v in values_us:
        h.record_value(v)
    return LoadWindow(
        endpoint=endpoint,
        start=start,
        end=end,
        count=len(values_us),
        errors=errors or {},
        histogram=h.encode().decode("ascii"),
        intended=intended,
        dropped=dropped,
        worker=worker,
    )


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.integers(min_value=1, max_value=60_000_000), min_size=1, max_size=400),
    workers=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_merged_percentiles_equal_one_histogram_of_all_values(
    values: list[int], workers: int, seed: int
) -> None:
    """Splitting the values over workers and windows changes nothing: merging is exact."""
    rng = random.Random(seed)
    parts: dict[tuple[int, int], list[int]] = {}
    for v in values:
        parts.setdefault((rng.randrange(workers), rng.randrange(3)), []).append(v)
    ws = [window(vs, start=float(k), end=k + 1.0, worker=f"w{w}") for (w, k), vs in parts.items()]
    one = latency.new_histogram()
    for v in values:
        one.record_value(v)
    s = summarize(ws)
    assert s.count == len(values)
    assert s.percentiles_ms == latency.percentiles_ms(one)


def test_averaging_per_worker_p99_would_be_wrong_and_we_do_not() -> None:
    fast = window([1_000] * 990)  # one worker: all fast
    slow = window([1_000] * 90 + [900_000] * 10, worker="w1")  # the other saw a stall
    s = summarize([fast, slow])
    # 10 slow of 1090: p99 lies in the fast mass; the max and p99.9 see the stall
    assert s.percentile("p99") == pytest.approx(1.0, rel=1e-3)
    assert s.percentile("p999") == pytest.approx(900.0, rel=1e-3)
    assert s.workers == 2


def test_rates_errors_and_drops() -> None:
    ws = [
        window([10_000] * 90, 0, 1, intended=100, dropped=10, errors={"http_500": 3}),
        window([10_000] * 100, 1, 2, intended=100, errors={"timeout": 1, "http_500": 1}),
    ]
    s = summarize(ws)
    assert (s.count, s.intended, s.dropped, s.sent) == (190, 200, 10, 190)
    assert s.errors == {"http_500": 4, "timeout": 1}
    assert s.error_rate == pytest.approx(5 / 190)
    assert s.intended_rps == 100 and s.achieved_rps == 95
    d = s.to_dict()
    assert d["p50_ms"] == pytest.approx(10.0, rel=1e-3) and d["dropped"] == 10


def test_empty_and_request_less_windows_have_no_percentiles() -> None:
    assert summarize([]).count == 0 and summarize([]).percentile("p95") is None
    stalled = summarize([window([], intended=100)])  # a total stall: sent, nothing back
    assert stalled.count == 0 and stalled.intended == 100
    assert stalled.percentile("p95") is None and stalled.to_dict()["p95_ms"] is None


def test_per_window_merges_workers_and_endpoints_of_a_slot() -> None:
    ws = [
        window([1_000], 10.3, 11.0, worker="a"),  # first window, clipped at the start
        window([2_000], 10.5, 11.0, worker="b"),
        window([3_000], 11.0, 12.0, worker="a"),
        window([4_000], 11.0, 12.0, worker="b", endpoint="/health"),
        window([5_000], 12.0, 12.4, worker="a"),  # last window, clipped at the end
    ]
    slots = per_window(ws, 1.0)
    assert [(s.start, s.end, s.count, s.workers) for s in slots] == [
        (10.3, 11.0, 2, 2),
        (11.0, 12.0, 2, 2),
        (12.0, 12.4, 1, 1),
    ]
    assert slots[1].endpoints == ("/health", "/v1/infer")


def test_per_phase_uses_window_midpoints_like_the_slo_checks() -> None:
    tl = Timeline()
    tl.record(PhaseMark("baseline", "start"), t=100.0)
    tl.record(PhaseMark("baseline", "end"), t=102.0)
    tl.record(PhaseMark("inject", "start"), t=102.0)
    tl.record(PhaseMark("inject", "end"), t=103.0)
    for k, v in enumerate([1_000, 1_000, 500_000]):
        tl.record(window([v] * 10, 100.0 + k, 101.0 + k), source="load", t=101.0 + k)
    phases = per_phase(tl)
    assert phases["baseline"].count == 20
    assert phases["baseline"].percentile("max") == pytest.approx(1.0, rel=1e-3)
    assert phases["inject"].percentile("p50") == pytest.approx(500.0, rel=1e-3)
    assert phases[WHOLE_RUN].count == 30
    assert per_phase(tl, endpoint="/nope")[WHOLE_RUN].count == 0
