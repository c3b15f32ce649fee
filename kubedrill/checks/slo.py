"""SLO checks over load windows: latency percentiles, error rate, availability, throughput.

Windows from every worker are merged exactly (HDR histograms added, counts summed).
A window belongs to a phase when its midpoint lies in the phase; requests are in the
window of their intended send time, so a stall is charged where the stall was.

Every check states its load coverage; a load run that failed, was stopped or timed out
over the window, or sends the open model dropped, are doubts in the reason. Dropped sends
count as failures in the error rate and availability by default (``count_dropped``).
"""

from __future__ import annotations

from collections import defaultdict

from kubedrill.checks.base import Check, Evidence
from kubedrill.checks.evidence import LoadEvidence, load_evidence
from kubedrill.core import latency
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Window
from kubedrill.timeline import LoadWindow, Timeline

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


def _what(endpoint: str | None) -> str:
    return f"endpoint {endpoint!r}" if endpoint else "any endpoint"


def _dropped_doubt(load: LoadEvidence) -> list[str]:
    if load.intended and load.dropped / load.intended > MAX_DROPPED_RATIO:
        return [
            f"the load generator dropped {load.dropped} of {load.intended} intended sends "
            f"(> {MAX_DROPPED_RATIO:.0%}); latency would be understated"
        ]
    return []


class _LoadCheck(Check):
    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        endpoint: str | None = None,
        count_dropped: bool = True,
    ) -> None:
        super().__init__(threshold, phase, name)
        self.endpoint = endpoint
        self.count_dropped = count_dropped

    def window(self, timeline: Timeline) -> Window | None:
        """Without a phase, a load claim judges the load: from the first load window's start
        to the last one's end (a load run that ended early is a doubt of its own)."""
        if self.phase is not None:
            return super().window(timeline)
        ws = [
            o.data
            for o in timeline.select(LoadWindow)
            if self.endpoint is None or o.data.endpoint == self.endpoint
        ]
        if not ws:
            return super().window(timeline)
        return Window(min(w.start for w in ws), max(w.end for w in ws))

    def _load(self, timeline: Timeline, window: Window) -> tuple[LoadEvidence, Evidence | None]:
        """The load evidence, and an Evidence to return at once when there is none."""
        load = load_evidence(timeline, window, self.endpoint)
        if not load.windows:
            return load, Evidence(
                None,
                f"no load windows for {_what(self.endpoint)} in this window",
                load.coverage,
                load.doubts,
            )
        if load.count == 0 and not (self.count_dropped and load.dropped):
            return load, Evidence(
                None,
                f"load windows for {_what(self.endpoint)} hold no completed requests",
                load.coverage,
                load.doubts,
            )
        return load, None


class LatencyCheck(_LoadCheck):
    kind = "latency"

    def partial_violation_fails(self) -> bool:
        # a maximum seen over part of the window is a lower bound of the whole window's
        return self.threshold.metric == "max_ms" and self.threshold.op in ("<", "<=")

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load, missing = self._load(timeline, window)
        if missing is not None:
            return missing
        if load.count == 0:
            return Evidence(None, "no completed requests", load.coverage, load.doubts)
        hist = latency.merge(w.histogram for w in load.windows)
        value = latency.percentile_ms(hist, _PERCENTILE[self.threshold.metric])
        workers = len({w.worker for w in load.windows})
        return Evidence(
            value,
            f"{hist.get_total_count()} requests, {workers} worker(s)",
            load.coverage,
            (*load.doubts, *_dropped_doubt(load)),
        )


class ErrorRateCheck(_LoadCheck):
    kind = "error_rate"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load, missing = self._load(timeline, window)
        if missing is not None:
            return missing
        kinds: dict[str, int] = defaultdict(int)
        for w in load.windows:
            for k, n in w.errors.items():
                kinds[k] += n
        dropped = load.dropped if self.count_dropped else 0
        if dropped:
            kinds["dropped_send"] += dropped
        failed, total = load.errors + dropped, load.count + dropped
        top = ", ".join(f"{k}x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3])
        detail = f"{failed} of {total} requests failed" + (f": {top}" if top else "")
        if dropped:
            detail += f" (including {dropped} sends the generator dropped)"
        return Evidence(failed / total, detail, load.coverage, load.doubts)


class AvailabilityCheck(_LoadCheck):
    """Share of time slots in which the service answered: a slot is up when requests
    completed and no more than ``slot_error_budget`` of them (dropped sends included)
    failed. A window in which nothing was due (the sliver a load run ends with) is no slot
    at all, up or down; slots of the window with no load at all lower the coverage. The
    reason names the first down slots, their offset and what failed in them."""

    kind = "availability"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        endpoint: str | None = None,
        count_dropped: bool = True,
        slot_error_budget: float = 0.05,
    ) -> None:
        super().__init__(threshold, phase, name, endpoint, count_dropped)
        self.slot_error_budget = slot_error_budget

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load, missing = self._load(timeline, window)
        if missing is not None:
            return missing
        slots: dict[float, list[int]] = defaultdict(lambda: [0, 0, 0])  # count, failed, dropped
        kinds: dict[float, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for w in load.windows:
            if w.intended == 0 and w.count == 0 and w.dropped == 0:
                continue  # nothing was due in it (the sliver after the last send): no slot
            key = round(w.start, 1)
            s = slots[key]
            dropped = w.dropped if self.count_dropped else 0
            s[0] += w.count + dropped
            s[1] += w.error_count + dropped
            s[2] += dropped
            for k, n in w.errors.items():
                kinds[key][k] += n
        down = [
            (start, count, failed, dropped)
            for start, (count, failed, dropped) in sorted(slots.items())
            if not (count > 0 and failed / count <= self.slot_error_budget)
        ]
        if not slots:
            return Evidence(None, "no request was due in this window", load.coverage, load.doubts)
        up = len(slots) - len(down)
        detail = f"{up} of {len(slots)} slots up"
        if down:
            first = min(slots)
            shown = []
            for start, count, failed, dropped in down[:3]:
                why = dict(kinds[start])
                if dropped:
                    why["dropped_send"] = dropped
                top = ", ".join(
                    f"{k}x{n}" for k, n in sorted(why.items(), key=lambda kv: -kv[1])[:2]
                )
                shown.append(
                    f"+{start - first:.0f} s: {failed} of {count} failed"
                    + (f" ({top})" if top else "")
                )
            more = f" and {len(down) - 3} more" if len(down) > 3 else ""
            detail += f"; down (> {self.slot_error_budget:.0%} failed): " + "; ".join(shown) + more
        return Evidence(up / len(slots), detail, load.coverage, load.doubts)


class ThroughputCheck(_LoadCheck):
    """Successful requests per second that *completed* in the window (``answered``): a
    service that falls behind shows its real rate, not the arrival rate."""

    kind = "throughput"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        load, missing = self._load(timeline, window)
        if missing is not None:
            return missing
        start = min(w.start for w in load.windows)
        end = max(w.end for w in load.windows)
        if end <= start:
            return Evidence(None, "load windows have no duration", load.coverage, load.doubts)
        if all(w.answered >= 0 for w in load.windows):
            ok = sum(w.answered for w in load.windows)
            what = "successful requests completed"
        else:  # older spools: by intended send time, which overstates a service that lags
            ok = load.count - load.errors
            what = "successful requests (by send time)"
        return Evidence(
            ok / (end - start),
            f"{ok} {what} in {end - start:.1f}s",
            load.coverage,
            load.doubts,
        )
