"""What serves a request: the backend protocol and the emulated GPU backend.

The emulated backend models a GPU server without using one: ``slots`` requests run at
once, each for the service time, spent in ``asyncio.sleep`` so it costs no CPU. The slots
are booked in virtual time (see :mod:`kubedrill.refservice.slots`), so capacity is exactly
slots / service time per replica, and grows with replicas even on a small box. A
busy-ledger entry of f stretches each service time by 1/(1-f).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubedrill.refservice.config import ServiceConfig
from kubedrill.refservice.ledger import stretch_factor
from kubedrill.refservice.runtime import Runtime
from kubedrill.refservice.slots import QueueFull, SlotSchedule

__all__ = ["Backend", "BadInput", "EmulatedBackend", "InferResult", "QueueFull"]


class BadInput(ValueError):
    """The request body's inputs cannot be served (answered 400)."""


@dataclass(slots=True)
class InferResult:
    outputs: list[Any]
    batch_size: int = 1
    rows: int = 1
    timings_s: dict[str, float] = field(default_factory=dict)


class Backend(Protocol):
    mode: str

    async def load(self) -> None:
        """Load the model; the service turns ready after this returns."""

    async def infer(self, inputs: object) -> InferResult:
        """Serve one request; raise :class:`BadInput` or :class:`QueueFull`."""

    @property
    def queue_depth(self) -> int:
        """Requests waiting for capacity."""

    def device_info(self) -> dict[str, Any]:
        """What ``/health/gpu`` shows beyond the common fields."""

    async def close(self) -> None:
        """Release resources at shutdown."""


class EmulatedBackend:
    mode = "emulated"

    def __init__(
        self, cfg: ServiceConfig, rt: Runtime, observe_batch: Callable[[int], None]
    ) -> None:
        self._cfg = cfg
        self._rt = rt
        self._observe_batch = observe_batch
        self._slots = SlotSchedule(cfg.slots, cfg.max_queue)
        self._jitter_rng = random.Random(cfg.seed + 1)

    async def load(self) -> None:
        return None

    @property
    def queue_depth(self) -> int:
        return self._slots.queue_depth(self._rt.clock())

    def service_time_s(self) -> float:
        """One request's service time: base ± seeded jitter, stretched by the busy ledger."""
        base = self._cfg.service_time_s
        j = self._cfg.service_time_jitter_s
        if j > 0.0:
            base = max(0.0, base + self._jitter_rng.uniform(-j, j))
        return base * stretch_factor(self._rt.busy)

    async def infer(self, inputs: object) -> InferResult:
        if inputs is not None and not isinstance(inputs, list):
            raise BadInput("inputs: expected a JSON array")
        clock = self._rt.clock
        duration = self.service_time_s()
        r = self._slots.reserve(clock(), duration, self._rt.paused_interval)
        self._rt.meter_work(r.start, r.end, duration)  # booked: a refused one raised
        await asyncio.sleep(max(0.0, r.end - clock()))
        late = max(0.0, clock() - r.end)  # how late the event loop woke up
        stalled = r.stalled_s + await self._rt.wait_out_stall()  # e.g. a stall set meanwhile
        self._observe_batch(1)
        timings = {"queue": r.queued_s, "stall": stalled, "service": duration, "late": late}
        return InferResult(outputs=[] if inputs is None else inputs, timings_s=timings)

    def device_info(self) -> dict[str, Any]:
        return {
            "slots": self._slots.slots,
            "slots_busy": self._slots.busy(self._rt.clock()),
            "service_time_ms": self._cfg.service_time_s * 1000.0,
            "stretch": stretch_factor(self._rt.busy),
        }

    async def close(self) -> None:
        return None
