"""Summaries of load windows: per window, per phase, per run.

Percentiles always come from the exact sum of the windows' HDR histograms (never an
average of per-window or per-worker percentiles). Rates are per second of the windows'
span: ``intended_rps`` is what the open-model schedule called for, ``achieved_rps`` the
requests that completed (failed ones included), ``dropped`` the sends the in-flight cap
refused.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubedrill.core import latency
from kubedrill.core.types import Window
from kubedrill.timeline import LoadWindow, Timeline

__all__ = ["WHOLE_RUN", "LoadSummary", "load_windows", "per_phase", "per_window", "summarize"]

WHOLE_RUN = "whole-run"
PERCENTILE_KEYS = ("p50", "p90", "p95", "p99", "p999", "max")


@dataclass(frozen=True, slots=True)
class LoadSummary:
    start: float
    end: float
    count: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    intended: int = 0
    dropped: int = 0
    windows: int = 0
    workers: int = 0
    endpoints: tuple[str, ...] = ()
    percentiles_ms: dict[str, float] = field(default_factory=dict)  # empty without requests

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float | None:
        return self.error_count / self.count if self.count else None

    @property
    def achieved_rps(self) -> float | None:
        return self.count / self.duration if self.duration > 0 else None

    @property
    def intended_rps(self) -> float | None:
        return self.intended / self.duration if self.duration > 0 and self.intended else None

    @property
    def sent(self) -> int:
        return self.intended - self.dropped

    def percentile(self, key: str) -> float | None:
        """``p50``…``p999`` or ``max`` in ms; None when no request completed."""
        return self.percentiles_ms.get(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "duration_s": self.duration,
            "count": self.count,
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
            "error_rate": self.error_rate,
            "intended": self.intended,
            "dropped": self.dropped,
            "intended_rps": self.intended_rps,
            "achieved_rps": self.achieved_rps,
            "windows": self.windows,
            "workers": self.workers,
            "endpoints": list(self.endpoints),
            **{f"{k}_ms": self.percentiles_ms.get(k) for k in PERCENTILE_KEYS},
        }


def summarize(
    windows: Iterable[LoadWindow], start: float | None = None, end: float | None = None
) -> LoadSummary:
    """One summary of ``windows`` (any workers, endpoints); the span defaults to theirs."""
    ws = list(windows)
    if not ws:
        s = 0.0 if start is None else start
        return LoadSummary(start=s, end=s if end is None else end)
    errors: dict[str, int] = defaultdict(int)
    for w in ws:
        for kind, n in w.errors.items():
            errors[kind] += n
    count = sum(w.count for w in ws)
    pct: dict[str, float] = {}
    if count:
        pct = latency.percentiles_ms(latency.merge(w.histogram for w in ws))
    return LoadSummary(
        start=min(w.start for w in ws) if start is None else start,
        end=max(w.end for w in ws) if end is None else end,
        count=count,
        errors=dict(errors),
        intended=sum(w.intended for w in ws),
        dropped=sum(w.dropped for w in ws),
        windows=len(ws),
        workers=len({w.worker for w in ws}),
        endpoints=tuple(sorted({w.endpoint for w in ws})),
        percentiles_ms=pct,
    )


def per_window(windows: Sequence[LoadWindow], width: float) -> list[LoadSummary]:
    """One summary per time slot of ``width`` seconds (all workers and endpoints merged),
    in time order. A window belongs to the slot holding its midpoint; the summary spans
    the slot (clipped to the windows at the run's two ends)."""
    slots: dict[int, list[LoadWindow]] = defaultdict(list)
    for w in windows:
        slots[math.floor((w.start + w.end) / 2 / width)].append(w)
    out = []
    for idx in sorted(slots):
        ws = slots[idx]
        lo, hi = idx * width, (idx + 1) * width
        start = max(lo, min(w.start for w in ws))
        end = min(hi, max(w.end for w in ws))
        out.append(summarize(ws, start, max(start, end)))
    return out


def load_windows(
    timeline: Timeline, window: Window | None = None, endpoint: str | None = None
) -> list[LoadWindow]:
    """The timeline's load windows whose midpoint lies in ``window`` (as the SLO checks
    choose them), optionally of one endpoint, in time order."""
    return [
        o.data
        for o in timeline.select(LoadWindow)
        if (window is None or window.contains((o.data.start + o.data.end) / 2))
        and (endpoint is None or o.data.endpoint == endpoint)
    ]


def per_phase(timeline: Timeline, endpoint: str | None = None) -> dict[str, LoadSummary]:
    """A summary for every phase marked on the timeline, and :data:`WHOLE_RUN` for all
    windows (a phase of that name would be shadowed)."""
    out = {name: summarize(load_windows(timeline, win, endpoint))
           for name, win in timeline.phases().items()}  # fmt: skip
    out[WHOLE_RUN] = summarize(load_windows(timeline, None, endpoint))
    return out
