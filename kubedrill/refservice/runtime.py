"""The service's mutable state, one object per app: faults, readiness, drain, busy ledger.

The busy ledger is shared both ways. The runtime reads how busy *others* keep its devices
(every entry of a device but its own, summed) and, in emulated mode with a ledger
directory, publishes its *own* busy fraction as ``<device>@<writer id>``: the share of
the device's time taken by its own requests' work over the last poll interval (see
:class:`WorkMeter`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubedrill.refservice.faults import Faults
from kubedrill.refservice.ledger import (
    LedgerReading,
    entry_name,
    is_safe_device,
    read_ledger,
    remove_entry,
    stretch_factor,
    write_entry,
)

__all__ = ["OwnEntry", "Runtime", "WorkMeter", "process_identity"]

log = logging.getLogger("kubedrill.refservice")

_STALL_POLL_S = 0.1  # a stall cleared at runtime releases its waiters within this


@dataclass(frozen=True, slots=True)
class OwnEntry:
    """What the service publishes about itself in a ledger directory."""

    writer: str
    """Writer id (a file-name token): entries are ``<device>@<writer>``."""
    label: str
    """The entries' ``writer`` field, for people."""
    fb_used_mib: float
    ttl_s: float
    """Entries expire this long after each write (several poll intervals)."""


class WorkMeter:
    """Device work booked by the emulated slots, as a share of the device's time.

    Every booking is a slot held from ``start`` to ``end`` (monotonic seconds) for
    ``work_s`` seconds of the device's work: the unstretched service time. A slot held
    for a service time stretched by 1/(1-f) because others keep the device busy a share
    f does only (1-f) of the device's work per second, the rest is theirs. Counting held
    slot time instead would make two pods sharing a device stretch each other without
    bound (each one's stretched slots reading as more load on the other); counting work
    keeps the sum of all the entries of a device the device's true load. Work is spread
    evenly over its booking (a stall inside a booking is not subtracted).

    :meth:`take` returns the work done in the slots over ``[last take, now]`` divided by
    ``capacity * (now - last take)``, in [0, 1]: with nobody else on the device, exactly
    the fraction of time the slots were busy.
    """

    def __init__(self, capacity: int, start: float) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.capacity = capacity
        self._since = start
        self._bookings: list[tuple[float, float, float]] = []

    def book(self, start: float, end: float, work_s: float) -> None:
        """Record a slot held from start to end doing work_s of the device's work."""
        if end > start and work_s > 0.0:
            self._bookings.append((start, end, work_s))

    def take(self, now: float) -> float:
        """The busy fraction since the last take (or the start); restarts the window."""
        t0, t1 = self._since, now
        if t1 <= t0:
            return 0.0
        self._since = t1
        work = 0.0
        keep: list[tuple[float, float, float]] = []
        for start, end, w in self._bookings:
            lo, hi = max(start, t0), min(end, t1)
            if hi > lo:
                work += w * (hi - lo) / (end - start)
            if end > t1:
                keep.append((start, end, w))
        self._bookings = keep
        return min(1.0, work / (self.capacity * (t1 - t0)))


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
        own: OwnEntry | None = None,
        slots: int = 1,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.epoch = clock()
        self.faults = faults
        self.devices = devices
        self.busy_ledger = busy_ledger
        self.own = own
        # Own work is metered only when it can be published (a ledger to publish into).
        self.meter = None if own is None or busy_ledger is None else WorkMeter(slots, self.epoch)
        self.own_busy = 0.0
        self.own_entries: list[str] = []
        self._own_write_failed = False
        self.ledger = self._read()
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

    def meter_work(self, start: float, end: float, duration: float) -> None:
        """A slot booked from start to end for ``duration``, a service time stretched by
        the busy fraction read now: its work is the unstretched part (:class:`WorkMeter`)."""
        if self.meter is not None:
            self.meter.book(start, end, duration / stretch_factor(self.busy))

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

    def _read(self) -> LedgerReading:
        exclude = None if self.own is None else self.own.writer
        return read_ledger(
            self.busy_ledger, self.devices, self.wall_clock(), exclude_writer=exclude
        )

    def refresh_ledger(self) -> LedgerReading:
        """Re-read how busy others keep the devices (the sum of the other entries)."""
        self.ledger = self._read()
        return self.ledger

    def publish_own(self) -> float:
        """Write ``<device>@<writer>`` for each device with the busy fraction since the
        last publish; only with a ledger directory. Write errors are logged, never raised."""
        if self.meter is None or self.own is None or self.busy_ledger is None:
            return 0.0
        self.own_busy = self.meter.take(self.clock())
        if not self.busy_ledger.is_dir():
            return self.own_busy
        own, now_wall = self.own, self.wall_clock()
        written: list[str] = []
        try:
            for d in self.devices:
                if not is_safe_device(d):
                    continue
                name = entry_name(d, own.writer)
                write_entry(
                    self.busy_ledger / name,
                    self.own_busy,
                    ttl_s=own.ttl_s,
                    writer=own.label,
                    fb_used_mib=own.fb_used_mib,
                    now_wall=now_wall,
                )
                written.append(name)
        except OSError as e:
            if not self._own_write_failed:
                log.warning("busy ledger: cannot write own entry: %s", e)
            self._own_write_failed = True
        else:
            self._own_write_failed = False
        self.own_entries = sorted(set(self.own_entries) | set(written))
        return self.own_busy

    def remove_own(self) -> None:
        """Remove the entries this service wrote (on a clean shutdown)."""
        if self.busy_ledger is not None:
            for name in self.own_entries:
                try:
                    remove_entry(self.busy_ledger / name)
                except OSError as e:
                    log.warning("busy ledger: cannot remove own entry %s: %s", name, e)
        self.own_entries = []

    def poll_once(self) -> None:
        """One poll: publish this service's own share, then re-read the others'."""
        self.publish_own()
        self.refresh_ledger()

    async def poll_ledger(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.poll_once()


def process_identity() -> dict[str, object]:
    return {"pid": os.getpid(), "host": os.environ.get("HOSTNAME") or os.uname().nodename}
