"""Dynamic batching: gather requests until a batch is full or its oldest request waited long enough.

:func:`decide` is the pure policy (tested with made-up clocks); :class:`DynamicBatcher`
runs it on the event loop, one batch at a time (one device stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from kubedrill.refservice.slots import QueueFull

__all__ = ["BatchDecision", "BatchInfo", "DynamicBatcher", "decide"]

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class BatchDecision:
    take: int
    """How many pending requests (oldest first) to run now; 0 means wait."""
    wait_s: float
    """When waiting: how long at most before deciding again (inf: until a request arrives)."""


def decide(
    rows: Sequence[int], oldest_age_s: float, max_batch: int, timeout_s: float
) -> BatchDecision:
    """The batching policy.

    ``rows`` holds the row count of each pending request, oldest first. A batch takes
    requests in order while their rows fit in ``max_batch`` (always at least one). It
    runs at once when it is full (the next request would not fit, or it holds
    ``max_batch`` rows) or when the oldest request has waited ``timeout_s``.
    """
    if not rows:
        return BatchDecision(0, math.inf)
    take, total = 0, 0
    for r in rows:
        if take and total + r > max_batch:
            return BatchDecision(take, 0.0)  # full: the next one does not fit
        take += 1
        total += r
    if total >= max_batch or oldest_age_s >= timeout_s:
        return BatchDecision(take, 0.0)
    return BatchDecision(0, timeout_s - oldest_age_s)


@dataclass(frozen=True, slots=True)
class BatchInfo:
    size: int
    """Requests in the batch."""
    rows: int
    queued_s: float
    """From this request's arrival to the batch's start."""
    run_s: float
    """From the batch's start to its end (device time, stalls included)."""


@dataclass(slots=True)
class _Pending(Generic[In, Out]):
    item: In
    rows: int
    t_submit: float
    fut: asyncio.Future[tuple[Out, BatchInfo]]


class DynamicBatcher(Generic[In, Out]):
    """Runs ``run(items) -> outputs`` (same order) on batches chosen by :func:`decide`.

    At most ``max_batch`` rows run at once; beyond the batch being gathered, up to
    ``max_queue`` requests may wait, after which :meth:`submit` raises :class:`QueueFull`.
    """

    def __init__(
        self,
        run: Callable[[list[In]], Awaitable[list[Out]]],
        *,
        max_batch: int,
        timeout_s: float,
        max_queue: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self.max_queue = max_queue
        self._clock = clock
        self._pending: list[_Pending[In, Out]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def queue_depth(self) -> int:
        """Requests waiting for their batch to start."""
        return len(self._pending)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for p in self._pending:
            if not p.fut.done():
                p.fut.cancel()
        self._pending.clear()

    async def submit(self, item: In, rows: int = 1) -> tuple[Out, BatchInfo]:
        if len(self._pending) >= self.max_queue + self.max_batch:
            raise QueueFull
        fut: asyncio.Future[tuple[Out, BatchInfo]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(item, rows, self._clock(), fut))
        self._arrived.set()
        return await fut

    async def _loop(self) -> None:
        while True:
            self._pending = [p for p in self._pending if not p.fut.done()]  # drop cancelled
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            d = decide(
                [p.rows for p in self._pending],
                self._clock() - self._pending[0].t_submit,
                self.max_batch,
                self.timeout_s,
            )
            if d.take == 0:
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), d.wait_s)
                continue
            batch = self._pending[: d.take]
            del self._pending[: d.take]
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Pending[In, Out]]) -> None:
        t0 = self._clock()
        try:
            outs = await self._run([p.item for p in batch])
            if len(outs) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} gave {len(outs)} outputs")
        except Exception as e:  # noqa: BLE001 - handed to every waiting request
            for p in batch:
                if not p.fut.done():
                    p.fut.set_exception(e)
            return
        t1 = self._clock()
        rows = sum(p.rows for p in batch)
        for p, out in zip(batch, outs, strict=True):
            if not p.fut.done():
                p.fut.set_result((out, BatchInfo(len(batch), rows, t0 - p.t_submit, t1 - t0)))
