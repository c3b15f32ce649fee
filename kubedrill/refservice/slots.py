"""The emulated GPU's capacity: ``slots`` requests served at once, FIFO, with a bounded queue.

The schedule is kept in virtual time: each request is given its start and end when it
arrives (the earliest free slot, first come first served), and the caller then sleeps
until its end. A slot is therefore busy for exactly the service time, however late the
event loop wakes up on a busy host, just as a GPU keeps computing while its host process
is descheduled. Capacity is exactly ``slots / service time``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["QueueFull", "Reservation", "SlotSchedule"]


class QueueFull(Exception):
    """Every slot is taken and the wait queue is at its limit."""


@dataclass(frozen=True, slots=True)
class Reservation:
    arrival: float
    start: float
    end: float
    queued_s: float
    """Waiting for a free slot."""
    stalled_s: float
    """Added by stalls (before the start, or pausing the service)."""


def _no_pause(t: float, duration: float) -> tuple[float, float]:
    return t, t + duration


class SlotSchedule:
    """FIFO reservations of ``slots`` identical servers; at most ``max_queue`` may wait."""

    def __init__(self, slots: int, max_queue: int) -> None:
        if slots < 1:
            raise ValueError("slots must be ≥ 1")
        self.slots = slots
        self.max_queue = max_queue
        self._free_at = [-math.inf] * slots  # a min-heap of when each slot frees up
        self._starts: list[float] = []  # a min-heap of starts not yet passed

    def queue_depth(self, now: float) -> int:
        """Requests that have arrived but not started by ``now``."""
        while self._starts and self._starts[0] <= now:
            heapq.heappop(self._starts)
        return len(self._starts)

    def busy(self, now: float) -> int:
        """Slots serving (or reserved through) ``now``."""
        return sum(1 for f in self._free_at if f > now)

    def reserve(
        self,
        now: float,
        duration: float,
        pause: Callable[[float, float], tuple[float, float]] = _no_pause,
    ) -> Reservation:
        """Book the earliest free slot for ``duration``; raise :class:`QueueFull` if it must
        wait and ``max_queue`` requests already do. ``pause(t, d)`` applies stalls."""
        ready = max(now, self._free_at[0])
        start, end = pause(ready, duration)
        if start > now:
            if self.queue_depth(now) >= self.max_queue:
                raise QueueFull
            heapq.heappush(self._starts, start)
        heapq.heapreplace(self._free_at, end)
        return Reservation(now, start, end, ready - now, (start - ready) + (end - start - duration))
