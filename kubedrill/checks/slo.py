"""SLO checks over load windows: latency percentiles, error rate, availability, throughput.

Windows from every worker are merged exactly (HDR histograms added, counts summed).
A window belongs to a phase when its midpoint lies in the phase.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from kubedrill import latency
from kubedrill.checks.base import Check, Evidence
from kubedrill.thresholds import Threshold
from kubedrill.timeline import LoadWindow, Timeline
from kubedrill.types import Window

__all__ = ["AvailabilityCheck", "ErrorRateCheck", "LatencyCheck", "ThroughputCheck"]

# Above this share of intended-but-unsent requests the generator, not the service, is
# the bottleneck, and latency figures would understate the truth.
MAX_DROPPED_RATIO = 0.01

_PERCENTILE = {
    "p50_ms": 50.0,
    "p90_ms": 90.0,
    "p95_ms": 95.0,
    "p99_ms": 99.0,
    "p999_ms": 99.9,
    "max_ms": 100.0,
}


@dataclass(frozen=True, slots=True)
class _Load:
    windows: list[LoadWindow]
    count: int
    errors: int
    intended: int
    dropped: int


def _load_in(timeline: Timeline, window: Window, endpoint: str | None) -> _Load:
    ws = [
        o.data
        for o in timeline.select(LoadWindow)
        if window.contains((o.data.start + o.data.end) / 2)
        and (endpoint is None or o.data.endpoint == endpoint)
    ]
    return _Load(
        windows=ws,
        count=sum(w.count for w in ws),
        errors=sum(w.error_count for w in ws),
        intended=sum(w.intended for w in ws),
        dropped=sum(w.dropped for w in ws),
    )


def _missing(load: _Load, endpoint: str | None) -> str | None:
    what = f"endpoint {endpoint!r}" if endpoint else "any endpoint"
    if not load.windows:
        return f"no load windows for {what} in this window"
    if load.count == 0:
        return f"load windows for {what} hold no completed requests"
    if load.intended and load.dropped / load.intended > MAX_DROPPED_RATIO:
        return (
            f"the load generator dropped {load.dropped} of {load.intended} intended sends "
            f"(> {MAX_DROPPED_RATIO:.0%}); latency would be understated"
        )
    return None


class _LoadCheck(Check):
    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(threshold, phase, name)
        self.endpoint = endpoint


class LatencyCheck(_LoadCheck):
    kind = "latency"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load = _load_in(timeline, window, self.endpoint)
        missing = _missing(load, self.endpoint)
        if missing:
            return Evidence(None, missing)
        hist = latency.merge(w.histogram for w in load.windows)
        value = latency.percentile_ms(hist, _PERCENTILE[self.threshold.metric])
        workers = len({w.worker for w in load.windows})
        return Evidence(value, f"{hist.get_total_count()} requests, {workers} worker(s)")


class ErrorRateCheck(_LoadCheck):
    kind = "error_rate"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load = _load_in(timeline, window, self.endpoint)
        if not load.windows or load.count == 0:
            return Evidence(None, _missing(load, self.endpoint) or "")
        kinds: dict[str, int] = defaultdict(int)
        for w in load.windows:
            for k, n in w.errors.items():
                kinds[k] += n
        top = ", ".join(f"{k}x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3])
        detail = f"{load.errors} of {load.count} requests failed" + (f": {top}" if top else "")
        return Evidence(load.errors / load.count, detail)


class AvailabilityCheck(_LoadCheck):
    """Share of time slots in which the service answered: a slot is up when requests
    completed and no more than ``slot_error_budget`` of them failed."""

    kind = "availability"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        endpoint: str | None = None,
        slot_error_budget: float = 0.05,
    ) -> None:
        super().__init__(threshold, phase, name, endpoint)
        self.slot_error_budget = slot_error_budget

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load = _load_in(timeline, window, self.endpoint)
        if not load.windows:
            return Evidence(None, _missing(load, self.endpoint) or "")
        slots: dict[float, list[int]] = defaultdict(lambda: [0, 0])  # count, errors
        for w in load.windows:
            s = slots[round(w.start, 1)]
            s[0] += w.count
            s[1] += w.error_count
        up = sum(
            1
            for count, errors in slots.values()
            if count > 0 and errors / count <= self.slot_error_budget
        )
        return Evidence(up / len(slots), f"{up} of {len(slots)} slots up")


class ThroughputCheck(_LoadCheck):
    kind = "throughput"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load = _load_in(timeline, window, self.endpoint)
        if not load.windows:
            return Evidence(None, _missing(load, self.endpoint) or "")
        start = min(w.start for w in load.windows)
        end = max(w.end for w in load.windows)
        if end <= start:
            return Evidence(None, "load windows have no duration")
        ok = load.count - load.errors
        return Evidence(ok / (end - start), f"{ok} successful requests in {end - start:.1f}s")
