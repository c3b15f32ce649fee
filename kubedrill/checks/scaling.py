"""Scaling checks over watched objects: time-to-scale and replica floors.

Both read the continuity of the cluster watch (``WatchStatus`` marks): a span in which
the watch of the object's kind was down is a span of unknown state, named in the reason.
"""

from __future__ import annotations

from kubedrill.checks.base import Check, Evidence, require_deadline
from kubedrill.checks.evidence import watch_gaps
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import ObjectTransition, Observation, Timeline

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

    def _value(self, o: Observation[ObjectTransition]) -> float:
        return float(o.data.fields[self.field])  # type: ignore[arg-type]

    @property
    def _what(self) -> str:
        return f"{self.api_kind} {self.object_name} .{self.field}"


class ScaleWithinCheck(_ObjectCheck):
    """``scale_up_within: 120s`` — from the phase start until ``field`` reaches ``target``.

    Only ``<=`` (the ``name: duration`` form) is a deadline. Never reaching the target is a
    FAIL when the window outlasted the deadline; in a window shorter than the deadline the
    claim could not fail, so that is INCONCLUSIVE and the reason says so. A watch gap
    before the moment the target was reached makes the time an upper bound: a PASS stays
    a PASS, anything else is INCONCLUSIVE (it may have been reached in the gap).
    """

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
        require_deadline(threshold)
        super().__init__(threshold, phase, name, **kw)
        self.target = target
        self.up = threshold.metric != "scale_down_within"

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        deadline = self.threshold.value
        cov, gaps = watch_gaps(timeline, self.api_kind, window)
        series = self._series(timeline)
        if not series:
            return Evidence(None, f"no observations of {self._what}", cov, tuple(map(str, gaps)))
        before = [o for o in series if o.t < window.start]
        inside = [o for o in series if window.contains(o.t)]
        # the value in force when the phase started counts as seen at its start
        timed = [(window.start, before[-1])] if before else []
        timed += [(o.t, o) for o in inside]
        for t, o in timed:
            v = self._value(o)
            if (v >= self.target) if self.up else (v <= self.target):
                took = t - window.start
                when = "already at the phase start" if t == window.start else "reached"
                detail = f"{self._what} {when} {v:g} after {took:.1f} s"
                gaps_before = [str(g) for g in gaps if g.start < t]
                if took <= deadline:
                    if gaps_before:
                        detail += " (an upper bound: " + "; ".join(gaps_before) + ")"
                    return Evidence(took, detail, cov, verdict=Verdict.PASS)
                if gaps_before:
                    return Evidence(
                        took,
                        detail + f", later than {deadline:g} s, but it may have been reached "
                        "while the watch was down",
                        cov,
                        tuple(gaps_before),
                        verdict=Verdict.INCONCLUSIVE,
                    )
                return Evidence(
                    took, detail + f", later than the {deadline:g} s allowed", cov,
                    verdict=Verdict.FAIL,
                )  # fmt: skip
        seen = [self._value(o) for _, o in timed]
        best = (max(seen) if self.up else min(seen)) if seen else None
        got = f"best seen {best:g}" if best is not None else "no value in the window"
        if window.duration < deadline:
            return Evidence(
                None,
                f"{self._what} had not reached {self.target} after {window.duration:.1f} s "
                f"({got}); the window is shorter than the {deadline:g} s allowed, so this "
                "claim could not fail here: make the phase outlast the deadline",
                cov,
                tuple(map(str, gaps)),
                verdict=Verdict.INCONCLUSIVE,
            )
        if gaps:
            return Evidence(
                None,
                f"{self._what} was not seen reaching {self.target} in {window.duration:.1f} s "
                f"({got}), but the watch was not continuous",
                cov,
                tuple(map(str, gaps)),
                verdict=Verdict.INCONCLUSIVE,
            )
        return Evidence(
            None,
            f"{self._what} never reached {self.target} in {window.duration:.1f} s, "
            f"beyond the {deadline:g} s allowed ({got})",
            cov,
            verdict=Verdict.FAIL,
        )


class ReplicasCheck(_ObjectCheck):
    """``replicas >= 2`` — the lowest value of ``field`` at any time in the window.

    A floor seen broken is a FAIL even when the watch had gaps; a floor that held is a
    PASS only if the watch was continuous over the window."""

    kind = "replicas"

    def partial_violation_fails(self) -> bool:
        return self.threshold.op in (">", ">=")

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, self.api_kind, window)
        series = self._series(timeline)
        before = [o for o in series if o.t < window.start]
        inside = [o for o in series if window.contains(o.t)]
        if not before and not inside:
            return Evidence(None, f"no observations of {self._what}", cov, tuple(map(str, gaps)))
        values = [self._value(o) for o in inside]
        if before:
            values.append(self._value(before[-1]))
        doubts = [str(g) for g in gaps]
        if not before and inside[0].t - window.start > 1.0:
            doubts.append(f"{self._what} unknown for the first {inside[0].t - window.start:.1f}s")
        return Evidence(min(values), f"lowest of {len(values)} observation(s)", cov, tuple(doubts))
