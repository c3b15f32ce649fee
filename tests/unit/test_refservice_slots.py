"""The emulated GPU's slot schedule in virtual time (a fake clock, no event loop)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubedrill.refservice.faults import Faults, Stall, paused_interval, window_remaining
from kubedrill.refservice.slots import QueueFull, SlotSchedule

MS = 0.001


def test_capacity_is_exactly_slots_over_service_time() -> None:
    s = SlotSchedule(8, max_queue=1000)
    ends = [s.reserve(0.0, 10 * MS).end for _ in range(100)]
    assert ends[:8] == [pytest.approx(10 * MS)] * 8
    assert ends[8:16] == [pytest.approx(20 * MS)] * 8
    assert ends[-1] == pytest.approx(130 * MS)  # 100 requests / (8 / 10 ms), rounded up
    assert s.queue_depth(0.0) == 92
    assert s.queue_depth(65 * MS) == 100 - 7 * 8  # starts at 10, 20, …, 60 ms have passed
    assert s.busy(65 * MS) == 8
    assert s.busy(200 * MS) == 0


def test_fifo_queue_time_and_the_limit() -> None:
    s = SlotSchedule(2, max_queue=2)
    first = [s.reserve(0.0, 100 * MS) for _ in range(2)]
    assert [r.queued_s for r in first] == [0.0, 0.0]
    waiting = [s.reserve(1 * MS, 100 * MS) for _ in range(2)]
    assert [r.queued_s for r in waiting] == [pytest.approx(99 * MS)] * 2
    with pytest.raises(QueueFull):
        s.reserve(2 * MS, 100 * MS)
    # once the first two finished, the queued two are running and the line is empty
    r = s.reserve(150 * MS, 100 * MS)
    assert r.start == pytest.approx(200 * MS)
    assert r.queued_s == pytest.approx(50 * MS)


def test_zero_queue_rejects_whenever_it_would_wait() -> None:
    s = SlotSchedule(1, max_queue=0)
    s.reserve(0.0, 10 * MS)
    with pytest.raises(QueueFull):
        s.reserve(5 * MS, 10 * MS)
    assert s.reserve(10 * MS, 10 * MS).queued_s == 0.0


def test_a_late_wake_up_does_not_lose_capacity() -> None:
    """Work is booked when it arrives, not when the loop gets round to it."""
    s = SlotSchedule(1, max_queue=10)
    rs = [s.reserve(t * MS, 10 * MS) for t in (0, 1, 2)]
    assert [r.end for r in rs] == [pytest.approx(v * MS) for v in (10, 20, 30)]


def test_stalls_hold_the_slot_and_build_the_queue() -> None:
    faults = Faults(stall=Stall(10.0, 1.0))
    s = SlotSchedule(1, max_queue=10)
    r1 = s.reserve(10.2, 0.01, faults.paused_interval)  # arrives in the stall
    assert (r1.start, r1.end) == (pytest.approx(11.0), pytest.approx(11.01))
    assert (r1.queued_s, r1.stalled_s) == (0.0, pytest.approx(0.8))
    r2 = s.reserve(10.3, 0.01, faults.paused_interval)
    assert r2.start == pytest.approx(11.01)
    assert r2.queued_s == pytest.approx(0.71)
    assert s.queue_depth(10.5) == 2


@pytest.mark.parametrize(
    ("t", "duration", "expected"),
    [
        (5.0, 0.01, (5.0, 5.01)),  # no window nearby
        (10.5, 0.01, (11.0, 11.01)),  # ready in a stall: starts when it ends
        (9.995, 0.01, (9.995, 11.005)),  # runs into a stall: paused for all of it
        (9.0, 11.5, (9.0, 22.5)),  # spans two windows
        (0.0, 9.0, (0.0, 9.0)),  # no window at the epoch
    ],
)
def test_paused_interval(t: float, duration: float, expected: tuple[float, float]) -> None:
    assert paused_interval(t, duration, 10.0, 1.0) == pytest.approx(expected)


@given(
    t=st.floats(0.0, 1000.0),
    duration=st.floats(0.0, 30.0),
    every=st.floats(0.5, 20.0),
    frac=st.floats(0.01, 0.9),
)
def test_paused_interval_serves_exactly_the_duration_outside_stalls(
    t: float, duration: float, every: float, frac: float
) -> None:
    length = every * frac
    start, end = paused_interval(t, duration, every, length)
    assert start >= t
    assert window_remaining(start, every, length) == pytest.approx(0.0, abs=1e-6)
    # time inside windows between start and end, summed window by window
    inside = 0.0
    k = max(1, int(start // every))
    while k * every < end:
        lo, hi = max(start, k * every), min(end, k * every + length)
        inside += max(0.0, hi - lo)
        k += 1
    assert end - start - inside == pytest.approx(duration, abs=1e-6)
