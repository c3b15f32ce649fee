"""Threshold over recorded metric samples (Prometheus, NVML, the service's /metrics)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from statistics import fmean
from typing import Literal

from kubedrill.checks.base import Check, Evidence
from kubedrill.thresholds import Threshold
from kubedrill.timeline import MetricSample, Timeline
from kubedrill.types import Window

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
        xs = [
            o.data.value
            for o in timeline.select(MetricSample, window)
            if o.data.name == self.metric
            and all(o.data.labels.get(k) == v for k, v in self.labels.items())
        ]
        if not xs:
            return Evidence(None, f"no samples of {self.metric}{self.labels or ''} in the window")
        return Evidence(float(AGGREGATES[self.agg](xs)), f"{self.agg} of {len(xs)} samples")
