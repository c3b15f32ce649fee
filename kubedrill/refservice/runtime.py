"""The service's mutable state, one object per app: faults, readiness, drain, busy ledger."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from kubedrill.refservice.faults import Faults
from kubedrill.refservice.ledger import LedgerReading, read_ledger

__all__ = ["Runtime", "process_identity"]

_STALL_POLL_S = 0.1  # a stall cleared at runtime releases its waiters within this


class Runtime:
    """State the handlers and backends share; the epoch is the service's start."""

    def __init__(
        self,
        faults: Faults,
        *,
        seed: int,
        devices: list[str],
        busy_ledger: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.epoch = clock()
        self.faults = faults
        self.devices = devices
        self.busy_ledger = busy_ledger
        self.ledger = read_ledger(busy_ledger, devices, time.time())
        self.error_rng = random.Random(seed)
        self.loaded = False
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- time and faults -------------------------------------------------------------
    def uptime(self) -> float:
        return self.clock() - self.epoch

    def stall_remaining(self) -> float:
        return self.faults.stall_remaining(self.uptime())

    def paused_interval(self, t: float, duration: float) -> tuple[float, float]:
        """Start and end (monotonic) of ``duration`` of work ready at ``t``, given stalls."""
        start, end = self.faults.paused_interval(t - self.epoch, duration)
        return start + self.epoch, end + self.epoch

    async def wait_out_stall(self) -> float:
        """Wait while a stall is in progress; return the seconds waited."""
        t0 = self.clock()
        while (left := self.stall_remaining()) > 0.0:
            await asyncio.sleep(min(left, _STALL_POLL_S))
        return self.clock() - t0

    def draw_error(self) -> bool:
        """Whether the error-ratio knob fails this request (seeded, one draw per request)."""
        ratio = self.faults.error_ratio
        return ratio > 0.0 and self.error_rng.random() < ratio

    # -- readiness and drain ---------------------------------------------------------
    def not_ready_reason(self) -> str | None:
        if self.draining:
            return "draining"
        if not self.loaded:
            return "loading"
        if self.faults.ready_flapped_down(self.uptime()):
            return "ready_flap"
        return None

    def begin(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def end(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        """Stop taking requests and wait for in-flight ones; False if some were left."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- busy ledger -----------------------------------------------------------------
    @property
    def busy(self) -> float:
        return self.ledger.busy

    def refresh_ledger(self) -> LedgerReading:
        self.ledger = read_ledger(self.busy_ledger, self.devices, time.time())
        return self.ledger

    async def poll_ledger(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.refresh_ledger()


def process_identity() -> dict[str, object]:
    return {"pid": os.getpid(), "host": os.environ.get("HOSTNAME") or os.uname().nodename}
