"""Fault knobs of the reference service: schedule math and payload validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubedrill.refservice.faults import (
    FaultError,
    Faults,
    ReadyFlap,
    Stall,
    merge_faults,
    window_remaining,
)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0.0, 0.0),  # no window at the epoch itself
        (0.5, 0.0),
        (9.999, 0.0),
        (10.0, 1.0),  # the first window opens one period after start
        (10.25, 0.75),
        (10.999, 0.001),
        (11.0, 0.0),
        (15.0, 0.0),
        (20.5, 0.5),
        (1000.0, 1.0),
    ],
)
def test_stall_schedule_10s_every_1s_long(t: float, expected: float) -> None:
    assert window_remaining(t, 10.0, 1.0) == pytest.approx(expected, abs=1e-9)


def test_disabled_windows_are_never_on() -> None:
    assert window_remaining(25.0, 10.0, 0.0) == 0.0
    assert window_remaining(25.0, 0.0, 1.0) == 0.0
    assert Faults().stall_remaining(10.5) == 0.0
    assert not Faults().ready_flapped_down(10.5)


@given(
    every=st.floats(0.05, 100.0),
    frac=st.floats(0.01, 0.99),
    t=st.floats(0.0, 10_000.0),
)
def test_window_remaining_is_consistent(every: float, frac: float, t: float) -> None:
    length = every * frac
    left = window_remaining(t, every, length)
    assert 0.0 <= left <= length
    if left > 0.0:
        # the window ends at a multiple of `every` plus `length`
        end = t + left
        k = round((end - length) / every)
        assert k >= 1
        assert math.isclose(end, k * every + length, rel_tol=1e-9, abs_tol=1e-6)


def test_faults_use_their_schedules() -> None:
    f = Faults(stall=Stall(10.0, 1.0), ready_flap=ReadyFlap(4.0, 1.0))
    assert f.stall_remaining(30.4) == pytest.approx(0.6)
    assert f.ready_flapped_down(8.5)
    assert not f.ready_flapped_down(9.5)


def test_merge_sets_only_named_knobs_and_null_clears() -> None:
    f = merge_faults(Faults(), {"error_ratio": 0.25, "stall": {"every_s": 10, "for_s": 1}})
    assert f == Faults(error_ratio=0.25, stall=Stall(10.0, 1.0))
    f = merge_faults(f, {"added_latency_ms": 50})
    assert f == Faults(added_latency_ms=50.0, error_ratio=0.25, stall=Stall(10.0, 1.0))
    f = merge_faults(
        f, {"stall": None, "error_ratio": 0, "ready_flap": {"period_s": 6, "down_s": 2}}
    )
    assert f == Faults(added_latency_ms=50.0, ready_flap=ReadyFlap(6.0, 2.0))
    assert merge_faults(f, {}) == f


def test_round_trip_through_to_dict() -> None:
    f = Faults(5.0, 0.1, Stall(10.0, 1.0), ReadyFlap(3.0, 1.0))
    assert merge_faults(Faults(), f.to_dict()) == f


@pytest.mark.parametrize(
    ("payload", "key", "expected"),
    [
        ([1, 2], "body", "JSON object"),
        ({"latency": 5}, "latency", "one of the knobs added_latency_ms"),
        ({"added_latency_ms": -1}, "added_latency_ms", "a number in [0, 600000]"),
        ({"added_latency_ms": "5"}, "added_latency_ms", "a number"),
        ({"added_latency_ms": True}, "added_latency_ms", "a number"),
        ({"error_ratio": 1.5}, "error_ratio", "a number in [0, 1]"),
        ({"error_ratio": float("nan")}, "error_ratio", "a number in [0, 1]"),
        ({"stall": 10}, "stall", "an object with keys 'every_s' and 'for_s'"),
        ({"stall": {"every_s": 10}}, "stall.for_s", "required"),
        (
            {"stall": {"every_s": 10, "for_s": 1, "x": 1}},
            "stall.x",
            "one of the keys every_s, for_s",
        ),
        ({"stall": {"every_s": 0, "for_s": 0}}, "stall.every_s", "a number in (0, 86400]"),
        ({"stall": {"every_s": 1, "for_s": 1}}, "stall.for_s", "below stall.every_s (1)"),
        (
            {"ready_flap": {"period_s": 2, "down_s": 3}},
            "ready_flap.down_s",
            "below ready_flap.period_s",
        ),
        ({"ready_flap": {"period_s": -2, "down_s": 1}}, "ready_flap.period_s", "a number in (0,"),
    ],
)
def test_bad_payloads_name_the_key(payload: object, key: str, expected: str) -> None:
    with pytest.raises(FaultError) as info:
        merge_faults(Faults(), payload)
    assert info.value.key == key
    assert expected in info.value.expected
    assert str(info.value).startswith(f"{key}: expected ")


def test_zero_length_windows_clear_the_knob() -> None:
    f = merge_faults(Faults(stall=Stall(10.0, 1.0)), {"stall": {"every_s": 10, "for_s": 0}})
    assert f.stall is None
