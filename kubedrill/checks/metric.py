"""Threshold over recorded metric samples (Prometheus, NVML, the service's /metrics)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from statistics import fmean, median
from typing import Literal

from kubedrill.checks.base import Check, Coverage, Evidence
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Window
from kubedrill.timeline import MetricSample, Timeline

__all__ = ["MetricCheck"]

AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "max": max,
    "min": min,
    "mean": fmean,
    "last": lambda xs: xs[-1],
}


class MetricCheck(Check):
    kind = "metric"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        metric: str,
        labels: Mapping[str, str] | None = None,
        agg: Literal["max", "min", "mean", "last"] = "max",
    ) -> None:
        super().__init__(
            threshold, phase, name or f"{agg}({metric}) {threshold.op} {threshold.value:g}"
        )
        if agg not in AGGREGATES:
            raise ValueError(f"agg must be one of {', '.join(AGGREGATES)}, got {agg!r}")
        self.metric = metric
        self.labels = dict(labels or {})
        self.agg = agg

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        obs = [
            o
            for o in timeline.select(MetricSample, window)
            if o.data.name == self.metric
            and all(o.data.labels.get(k) == v for k, v in self.labels.items())
        ]
        xs = [o.data.value for o in obs]
        coverage = _sample_coverage([o.t for o in obs], window)
        if not xs:
            return Evidence(
                None, f"no samples of {self.metric}{self.labels or ''} in the window", coverage
            )
        return Evidence(
            float(AGGREGATES[self.agg](xs)), f"{self.agg} of {len(xs)} samples", coverage
        )

    def partial_violation_fails(self) -> bool:
        return (self.agg == "max" and self.threshold.op in ("<", "<=")) or (
            self.agg == "min" and self.threshold.op in (">", ">=")
        )


def _sample_coverage(ts: list[float], window: Window) -> Coverage:
    """Each sample vouches for one sampling interval (the median spacing) around it; a
    break longer than two intervals is a gap. One sample alone covers nothing."""
    stamps = sorted(set(ts))
    if len(stamps) < 2:
        return Coverage(0.0, window.duration, "samples")
    diffs = [b - a for a, b in itertools.pairwise(stamps)]
    step = median(diffs)
    covered = step + sum(min(d, step) if d > 2 * step else d for d in diffs)
    return Coverage(min(covered, window.duration), window.duration, "samples")
