"""A PromQL expression judged over exactly the phase window (range query, fixed step)."""

from __future__ import annotations

from typing import Literal

from kubedrill.checks.base import Check, Evidence
from kubedrill.checks.metric import AGGREGATES as _AGG
from kubedrill.prom import PrometheusClient, PrometheusUnavailable
from kubedrill.thresholds import Threshold
from kubedrill.timeline import MetricSample, Timeline
from kubedrill.types import Window

__all__ = ["PromQLCheck"]


class PromQLCheck(Check):
    """``value <= 0.5`` over ``query``: every point of every series is aggregated with ``agg``.

    The points fetched are recorded on the timeline as ``MetricSample``s (name ``promql``,
    labels of the series plus ``query``), so the report shows the evidence.
    """

    kind = "promql"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        query: str,
        client: PrometheusClient | None,
        agg: Literal["max", "min", "mean", "last"] = "max",
        step_s: float | None = None,
        unavailable_reason: str = "no Prometheus configured (--prometheus-url)",
    ) -> None:
        super().__init__(
            threshold, phase, name or f"{agg}({query}) {threshold.op} {threshold.value:g}"
        )
        if agg not in ("max", "min", "mean", "last"):
            raise ValueError(f"agg must be max, min, mean or last, got {agg!r}")
        self.query = query
        self.client = client
        self.agg = agg
        self.step_s = step_s
        self.unavailable_reason = unavailable_reason

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        if self.client is None:
            return Evidence(None, self.unavailable_reason)
        start, end = timeline.to_wall(window.start), timeline.to_wall(window.end)
        try:
            series = self.client.range_query(self.query, start, end, self.step_s)
        except PrometheusUnavailable as e:
            return Evidence(None, str(e))
        points = [(t, v, s.labels) for s in series for t, v in s.points if v == v]  # drop NaN
        if not points:
            return Evidence(None, f"query {self.query!r} returned no series over the window")
        for t, v, labels in points:
            mono = window.start + (t - start)
            timeline.record(
                MetricSample("promql", v, {**labels, "query": self.query}),
                source="prometheus",
                t=mono,
                wall=t,
            )
        values = [v for _, v, _ in sorted(points, key=lambda p: p[0])]
        return Evidence(
            float(_AGG[self.agg](values)),
            f"{self.agg} of {len(values)} points in {len(series)} series",
        )
