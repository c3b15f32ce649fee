"""A FIFO pool of concurrency slots with a bounded wait queue (the emulated GPU's capacity)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["QueueFull", "SlotPool"]


class QueueFull(Exception):
    """Every slot is taken and the wait queue is at its limit."""


class SlotPool:
    """``slots`` requests run at once; up to ``max_queue`` more wait, first come first served.

    A released slot is handed straight to the oldest waiter, so a late arrival can never
    overtake the queue.
    """

    def __init__(self, slots: int, max_queue: int) -> None:
        if slots < 1:
            raise ValueError("slots must be ≥ 1")
        self.slots = slots
        self.max_queue = max_queue
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queue_depth(self) -> int:
        return len(self._waiters)

    @property
    def busy(self) -> int:
        return self.slots - self._free

    async def acquire(self) -> None:
        """Take a slot, waiting in line if needed; :class:`QueueFull` if the line is full."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        if self.queue_depth >= self.max_queue:
            raise QueueFull
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed to us just before the cancel
            else:
                self._remove(fut)
            raise

    def _remove(self, fut: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(fut)

    def release(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return
        self._free += 1
