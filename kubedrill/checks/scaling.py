"""Scaling checks over watched objects: time-to-scale and replica floors."""

from __future__ import annotations

from kubedrill.checks.base import Check, Evidence
from kubedrill.thresholds import Threshold
from kubedrill.timeline import ObjectTransition, Observation, Timeline
from kubedrill.types import Window

__all__ = ["ReplicasCheck", "ScaleWithinCheck"]


class _ObjectCheck(Check):
    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        api_kind: str = "Deployment",
        object_name: str,
        namespace: str | None = None,
        field: str = "ready_replicas",
    ) -> None:
        super().__init__(threshold, phase, name)
        self.api_kind = api_kind
        self.object_name = object_name
        self.namespace = namespace
        self.field = field

    def _series(self, timeline: Timeline) -> list[Observation[ObjectTransition]]:
        return [
            o
            for o in timeline.select(ObjectTransition)
            if o.data.api_kind == self.api_kind
            and o.data.name == self.object_name
            and (self.namespace is None or o.data.namespace == self.namespace)
            and isinstance(o.data.fields.get(self.field), int | float)
            and not isinstance(o.data.fields.get(self.field), bool)
        ]

    @property
    def _what(self) -> str:
        return f"{self.api_kind} {self.object_name} .{self.field}"


class ScaleWithinCheck(_ObjectCheck):
    """``scale_up_within: 120s`` — from the phase start until ``field`` reaches ``target``."""

    kind = "scaling"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        target: int,
        **kw: str,
    ) -> None:
        super().__init__(threshold, phase, name, **kw)
        self.target = target
        self.up = threshold.metric != "scale_down_within"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        series = self._series(timeline)
        if not series:
            return Evidence(None, f"no observations of {self._what}")
        before = [o for o in series if o.t < window.start]
        inside = [o for o in series if window.contains(o.t)]
        # the value in force when the phase started counts as seen at its start
        timed = [(window.start, before[-1])] if before else []
        timed += [(o.t, o) for o in inside]
        for t, o in timed:
            v = float(o.data.fields[self.field])  # type: ignore[arg-type]
            if (v >= self.target) if self.up else (v <= self.target):
                when = "already at the phase start" if t == window.start else "reached"
                return Evidence(t - window.start, f"{self._what} {when} {v:g}")
        observed = window.duration
        if observed < self.threshold.value:
            return Evidence(
                None,
                f"{self._what} had not reached {self.target} after {observed:.1f}s, "
                f"less than the {self.threshold.value:g}s allowed: the deadline was not observed",
            )
        seen = [float(o.data.fields[self.field]) for _, o in timed]  # type: ignore[arg-type]
        best = (max(seen) if self.up else min(seen)) if seen else None
        extra = f"; best seen {best:g}" if best is not None else "; no change in the window"
        return Evidence(observed, f"{self._what} never reached {self.target}{extra}")


class ReplicasCheck(_ObjectCheck):
    """``replicas >= 2`` — the lowest value of ``field`` at any time in the window."""

    kind = "replicas"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        series = self._series(timeline)
        before = [o for o in series if o.t < window.start]
        inside = [o for o in series if window.contains(o.t)]
        if not before and not inside:
            return Evidence(None, f"no observations of {self._what}")
        values = [float(o.data.fields[self.field]) for o in inside]  # type: ignore[arg-type]
        if before:
            values.append(float(before[-1].data.fields[self.field]))  # type: ignore[arg-type]
        elif inside[0].t - window.start > 1.0:
            return Evidence(
                None, f"{self._what} unknown for the first {inside[0].t - window.start:.1f}s"
            )
        return Evidence(min(values), f"lowest of {len(values)} observation(s)")
