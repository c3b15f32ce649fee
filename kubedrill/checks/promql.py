"""A PromQL expression judged over exactly the phase window (range query, fixed step)."""

from __future__ import annotations

from typing import Literal

from kubedrill.adapters.prom import (
    PrometheusClient,
    PrometheusQueryRejected,
    PrometheusUnavailable,
    Series,
)
from kubedrill.checks.base import Check, Coverage, Evidence
from kubedrill.checks.metric import AGGREGATES as _AGG
from kubedrill.core.errors import KubedrillError
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import MetricSample, Timeline

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
        unavailable_reason: str = "no Prometheus configured (--drill-prometheus-url)",
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
        self._collected: tuple[Window, list[Series] | KubedrillError] | None = None

    def collect(self, timeline: Timeline) -> None:
        """Query Prometheus now, while it is surely up (the plugin calls this when the
        scenario body returns, before fixtures tear down); :meth:`measure` then judges what
        was fetched, and only queries again for a different window."""
        window = self.window(timeline)
        if window is not None and self.client is not None:
            self._collected = (window, self._query(timeline, window))

    def _query(self, timeline: Timeline, window: Window) -> list[Series] | KubedrillError:
        assert self.client is not None
        start, end = timeline.to_wall(window.start), timeline.to_wall(window.end)
        try:
            return self.client.range_query(self.query, start, end, self.step_s)
        except (PrometheusQueryRejected, PrometheusUnavailable) as e:
            return e

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        if self.client is None:
            return Evidence(None, self.unavailable_reason)
        got = self._collected[1] if self._collected and self._collected[0] == window else None
        series = self._query(timeline, window) if got is None else got
        if isinstance(series, PrometheusQueryRejected):
            # the claim itself is broken (a PromQL typo): an ERROR, which no policy lets by
            return Evidence(None, str(series), verdict=Verdict.ERROR)
        if isinstance(series, KubedrillError):
            return Evidence(None, str(series))
        start = timeline.to_wall(window.start)
        points = [(t, v, s.labels) for s in series for t, v in s.points if v == v]  # drop NaN
        step = self.step_s or self.client.step_s
        stamps = {round(t, 3) for t, _, _ in points}
        coverage = Coverage(min(len(stamps) * step, window.duration), window.duration, "samples")
        if not points:
            return Evidence(
                None, f"query {self.query!r} returned no series over the window", coverage
            )
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
            f"{self.agg} of {len(values)} points in {len(series)} series, step {step:g}s",
            coverage,
        )

    def partial_violation_fails(self) -> bool:
        # a maximum seen above a ceiling (or a minimum below a floor) is already a violation
        return (self.agg == "max" and self.threshold.op in ("<", "<=")) or (
            self.agg == "min" and self.threshold.op in (">", ">=")
        )
