"""Autoscaling checks over the recorded Deployment and HPA series: how fast the autoscaler
reacted (first step, desired reached, all Ready, scale-down start and end), whether it
stayed within min/max, overshot, oscillated or settled, which pods waited Pending and
why, and whether the autoscaler itself was healthy.

The trigger is the phase start (load start) or, with ``trigger="metric"``, the first
moment in the window the HPA reported a metric beyond its target's tolerance band. Every
check reads watch continuity; a gap is named in the reason (see :mod:`.evidence`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from kubedrill.checks.base import Check, Evidence, clock, require_deadline
from kubedrill.checks.evidence import WatchGap, watch_gaps
from kubedrill.checks.hpaspec import HpaSpec, SpecError, current_metrics
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import ObjectTransition, Observation, Scalar, Timeline

__all__ = [
    "AutoscalerHealthCheck",
    "BoundsCheck",
    "OscillationCheck",
    "OvershootCheck",
    "PendingCheck",
    "ScaleTimingCheck",
    "SettleCheck",
]

Point = tuple[float, float]  # (monotonic t, value)


@dataclass(frozen=True, slots=True)
class _Target:
    namespace: str | None
    deployment: str
    hpa: str | None


def _num(v: Scalar) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _objects(
    timeline: Timeline, kind: str, name: str | None, namespace: str | None
) -> list[Observation[ObjectTransition]]:
    return [
        o
        for o in timeline.select(ObjectTransition)
        if o.data.api_kind == kind
        and (name is None or o.data.name == name)
        and (namespace is None or o.data.namespace == namespace)
    ]


def _points(obs: Sequence[Observation[ObjectTransition]], field: str) -> list[Point]:
    out: list[Point] = []
    for o in obs:
        v = _num(o.data.fields.get(field))
        if v is not None and o.data.event != "DELETED":
            out.append((o.t, v))
    return out


def _in_window(points: Sequence[Point], window: Window) -> list[Point]:
    """The value in force at the window's start (as seen then), then the changes inside."""
    before = [p for p in points if p[0] < window.start]
    inside = [p for p in points if window.contains(p[0])]
    return ([(window.start, before[-1][1])] if before else []) + inside


class _AutoscalingCheck(Check):
    """Shared: the Deployment (``object_name``) and its HPA (``hpa=``, default: the HPA
    whose scaleTargetRef names the Deployment)."""

    kind = "scaling"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        object_name: str,
        namespace: str | None = None,
        hpa: str | None = None,
        trigger: Literal["phase", "metric"] = "phase",
    ) -> None:
        super().__init__(threshold, phase, name)
        if trigger not in ("phase", "metric"):
            raise ValueError(f"trigger {trigger!r}: expected 'phase' or 'metric'")
        self.target = _Target(namespace, object_name, hpa)
        self.trigger = trigger

    def _deployment(self, timeline: Timeline) -> list[Observation[ObjectTransition]]:
        return _objects(timeline, "Deployment", self.target.deployment, self.target.namespace)

    def _hpa(self, timeline: Timeline) -> list[Observation[ObjectTransition]]:
        obs = _objects(timeline, "HorizontalPodAutoscaler", self.target.hpa, self.target.namespace)
        if self.target.hpa is None:
            ref = f"Deployment/{self.target.deployment}"
            obs = [o for o in obs if o.data.fields.get("target") == ref]
        return obs

    def _gaps(self, timeline: Timeline, window: Window, kinds: Sequence[str]) -> list[WatchGap]:
        out: list[WatchGap] = []
        for kind in kinds:
            out += watch_gaps(timeline, kind, window)[1]
        return out

    def _start(self, timeline: Timeline, window: Window) -> tuple[float | None, str]:
        """The trigger moment and how it was found."""
        if self.trigger == "phase":
            return window.start, "the phase start"
        for o in self._hpa(timeline):
            if not window.contains(o.t):
                continue
            crossed = _metric_over_target(o.data.fields)
            if crossed:
                return o.t, f"{crossed} at {clock(timeline, window, o.t)}"
        return None, "no HPA metric beyond its target in the window"

    @property
    def _what(self) -> str:
        return f"Deployment {self.target.deployment}"


def _metric_over_target(fields: dict[str, Scalar] | object) -> str | None:
    """The first metric the HPA saw above its target's tolerance band, in words."""
    if not isinstance(fields, dict):
        return None
    try:
        spec = HpaSpec.from_api(json.loads(str(fields.get("spec") or "{}")))
        values = current_metrics(json.loads(str(fields.get("metrics") or "[]")))
    except (SpecError, ValueError):
        return None
    by_key = {v.key: v for v in values}
    for target in spec.metrics:
        seen = by_key.get(target.key)
        current = seen.for_target(target) if seen else None
        if current is not None and target.target > 0 and current / target.target > 1.1:
            return f"{target.name} at {current:g} over its target {target.target:g}"
    return None


class ScaleTimingCheck(_AutoscalingCheck):
    """Deadlines from the trigger: ``first_scale_up_within`` (the Deployment's replicas
    first rise), ``desired_within`` (they reach the highest count the HPA asked for in the
    window), ``ready_within`` (that many Ready), ``scale_down_start_within`` (replicas
    first fall) and ``scale_down_done_within`` (they reach ``target=``, default the HPA's
    minReplicas). Never reached is a FAIL only when the window outlasted the deadline."""

    METRICS = (
        "first_scale_up_within",
        "desired_within",
        "ready_within",
        "scale_down_start_within",
        "scale_down_done_within",
    )

    def __init__(
        self, threshold: Threshold, *args: object, target: int | None = None, **kw: object
    ) -> None:
        require_deadline(threshold)
        super().__init__(threshold, *args, **kw)  # type: ignore[arg-type]
        self.goal = target

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        metric, deadline = self.threshold.metric, self.threshold.value
        kinds = ["Deployment"] + ([] if metric.startswith("first") else ["HorizontalPodAutoscaler"])
        gaps = self._gaps(timeline, window, kinds)
        cov = watch_gaps(timeline, "Deployment", window)[0]
        start, how = self._start(timeline, window)
        if start is None:
            return Evidence(None, how, cov, tuple(map(str, gaps)))
        dep = self._deployment(timeline)
        field = "ready_replicas" if metric == "ready_within" else "replicas"
        series = [p for p in _in_window(_points(dep, field), window) if p[0] >= start] or [
            p for p in _in_window(_points(dep, field), window)
        ][-1:]
        if not series:
            return Evidence(None, f"no observations of {self._what}", cov, tuple(map(str, gaps)))
        base = series[0][1]
        goal, what = self._goal(timeline, window, start, base)
        if goal is None:
            return Evidence(None, what, cov, tuple(map(str, gaps)))
        reached = next((t for t, v in series if goal(v)), None)
        if reached is not None:
            took = max(0.0, reached - start)
            detail = f"{what} after {took:.1f} s from {how}"
            late = [str(g) for g in gaps if g.start < reached]
            if took <= deadline:
                if late:
                    detail += " (an upper bound: " + "; ".join(late) + ")"
                return Evidence(took, detail, cov, verdict=Verdict.PASS)
            verdict = Verdict.INCONCLUSIVE if late else Verdict.FAIL
            detail += f", later than the {deadline:g} s allowed"
            if late:
                detail += ", but it may have happened while the watch was down"
            return Evidence(took, detail, cov, tuple(late), verdict=verdict)
        seen = ", ".join(f"{v:g}" for _, v in series[-5:])
        span = window.end - start
        if span < deadline:
            detail = (
                f"not yet {what} {span:.1f} s after {how} (last values {seen}); the window "
                f"is shorter than the {deadline:g} s allowed, so this claim could not fail here"
            )
            return Evidence(None, detail, cov, tuple(map(str, gaps)), verdict=Verdict.INCONCLUSIVE)
        detail = f"never {what} in {span:.1f} s after {how} (last values {seen})"
        verdict = Verdict.INCONCLUSIVE if gaps else Verdict.FAIL
        return Evidence(None, detail, cov, tuple(map(str, gaps)), verdict=verdict)

    def _goal(
        self, timeline: Timeline, window: Window, start: float, base: float
    ) -> tuple[Callable[[float], bool] | None, str]:
        metric = self.threshold.metric
        if metric == "first_scale_up_within":
            return (lambda v: v > base), f"{self._what} rose above {base:g} replicas"
        if metric == "scale_down_start_within":
            return (lambda v: v < base), f"{self._what} fell below {base:g} replicas"
        hpa = self._hpa(timeline)
        if metric == "scale_down_done_within":
            floor = self.goal
            if floor is None:
                mins = _points(hpa, "min_replicas")
                floor = int(mins[-1][1]) if mins else None
            if floor is None:
                return None, "no HPA recorded for the Deployment, and no target= given"
            return (lambda v: v <= floor), f"{self._what} fell to {floor} replicas"
        desired = [v for t, v in _in_window(_points(hpa, "desired_replicas"), window) if t >= start]
        want = self.goal if self.goal is not None else (max(desired) if desired else None)
        if want is None:
            return None, "no HPA desiredReplicas recorded in the window"
        noun = "Ready replicas" if metric == "ready_within" else "replicas"
        return (lambda v: v >= want), f"{self._what} reached {want:g} {noun}"


class BoundsCheck(_AutoscalingCheck):
    """``hpa_bounds_violations == 0``: spans in which the Deployment's replicas were below
    the HPA's minReplicas or above its maxReplicas for longer than ``grace_s`` (the HPA
    corrects a count out of bounds at its next sync: 15 s by default)."""

    def __init__(
        self, threshold: Threshold, *args: object, grace_s: float = 30.0, **kw: object
    ) -> None:
        super().__init__(threshold, *args, **kw)  # type: ignore[arg-type]
        self.grace_s = grace_s

    def partial_violation_fails(self) -> bool:
        return True

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Deployment", window)
        gaps += self._gaps(timeline, window, ["HorizontalPodAutoscaler"])
        reps = _in_window(_points(self._deployment(timeline), "replicas"), window)
        hpa = self._hpa(timeline)
        lo, hi = (
            _in_window(_points(hpa, "min_replicas"), window),
            _in_window(_points(hpa, "max_replicas"), window),
        )
        if not reps or not lo or not hi:
            return Evidence(None, "no Deployment replicas or HPA bounds recorded", cov)
        times = sorted({t for t, _ in reps + lo + hi} | {window.end})
        bad: list[str] = []
        since: float | None = None
        for i, t in enumerate(times[:-1]):
            r, mn, mx = _at(reps, t), _at(lo, t), _at(hi, t)
            out = r is not None and mn is not None and mx is not None and not mn <= r <= mx
            if out and since is None:
                since = t
            if since is not None and (not out or i == len(times) - 2):
                end = times[i + 1] if out else t
                if end - since > self.grace_s:
                    bad.append(
                        f"{r:g} replicas outside [{mn:g}, {mx:g}] from "
                        f"{clock(timeline, window, since)} for {end - since:.1f} s"
                    )
                since = None if not out else since
        detail = "; ".join(bad) if bad else f"{len(reps)} replica value(s) within the HPA's bounds"
        return Evidence(float(len(bad)), detail, cov, tuple(map(str, gaps)))


def _at(points: Sequence[Point], t: float) -> float | None:
    v = None
    for pt, pv in points:
        if pt > t:
            break
        v = pv
    return v


class OvershootCheck(_AutoscalingCheck):
    """``overshoot <= 1``: the highest replica count in the window minus the count the
    Deployment settled at by the window's end."""

    def partial_violation_fails(self) -> bool:
        return True

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Deployment", window)
        reps = _in_window(_points(self._deployment(timeline), "replicas"), window)
        if not reps:
            return Evidence(None, f"no observations of {self._what}", cov, tuple(map(str, gaps)))
        peak, final = max(v for _, v in reps), reps[-1][1]
        detail = f"peak {peak:g} replicas, {final:g} at the window's end"
        return Evidence(peak - final, detail, cov, tuple(map(str, gaps)))


class OscillationCheck(_AutoscalingCheck):
    """``reversals <= 1``: how often the Deployment's replica count changed direction
    (up then down, or down then up) in the window."""

    def partial_violation_fails(self) -> bool:
        return True

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Deployment", window)
        reps = _in_window(_points(self._deployment(timeline), "replicas"), window)
        if not reps:
            return Evidence(None, f"no observations of {self._what}", cov, tuple(map(str, gaps)))
        steps: list[str] = []
        direction, reversals = 0, 0
        for (_, a), (t, b) in pairwise(reps):
            if b == a:
                continue
            d = 1 if b > a else -1
            if direction and d != direction:
                reversals += 1
                steps.append(f"{a:g}→{b:g} at {clock(timeline, window, t)}")
            direction = d
        path = " → ".join(f"{v:g}" for v in _dedupe([v for _, v in reps]))
        detail = f"replicas {path}" + (f"; reversals: {', '.join(steps)}" if steps else "")
        return Evidence(float(reversals), detail, cov, tuple(map(str, gaps)))


def _dedupe(values: list[float]) -> list[float]:
    out: list[float] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


class SettleCheck(_AutoscalingCheck):
    """``settle_within: 90s``: from the trigger to the Deployment's last replica change in
    the window, provided the count then held for ``hold_s`` until the window's end."""

    def __init__(
        self, threshold: Threshold, *args: object, hold_s: float = 30.0, **kw: object
    ) -> None:
        require_deadline(threshold)
        super().__init__(threshold, *args, **kw)  # type: ignore[arg-type]
        self.hold_s = hold_s

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Deployment", window)
        start, how = self._start(timeline, window)
        if start is None:
            return Evidence(None, how, cov, tuple(map(str, gaps)))
        reps = [p for p in _in_window(_points(self._deployment(timeline), "replicas"), window)]
        if not reps:
            return Evidence(None, f"no observations of {self._what}", cov, tuple(map(str, gaps)))
        changes = [t for (_, a), (t, b) in pairwise(reps) if b != a and t >= start]
        last = changes[-1] if changes else start
        held = window.end - last
        took = last - start
        detail = f"{self._what} last changed {took:.1f} s after {how}, to {reps[-1][1]:g}"
        if held < self.hold_s:
            if took > self.threshold.value:
                return Evidence(took, detail + ", later than allowed", cov, verdict=Verdict.FAIL)
            return Evidence(
                None,
                detail + f" and held only {held:.1f} s of the {self.hold_s:g} s needed to call "
                "it settled: make the phase longer",
                cov,
                tuple(map(str, gaps)),
                verdict=Verdict.INCONCLUSIVE,
            )
        return Evidence(took, detail + f", then held {held:.1f} s", cov, tuple(map(str, gaps)))


class PendingCheck(_AutoscalingCheck):
    """``pending_s <= 30``: the longest time one of the Deployment's pods spent Pending in
    the window, with the scheduler's reason (``0/3 nodes are available: 3 Insufficient
    nvidia.com/gpu``). A pod still Pending at the window's end counts until then."""

    kind = "pods"

    def partial_violation_fails(self) -> bool:
        return True

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Pod", window)
        prefix = f"{self.target.deployment}-"
        pods: dict[str, list[Observation[ObjectTransition]]] = {}
        for o in _objects(timeline, "Pod", None, self.target.namespace):
            if o.data.name.startswith(prefix):
                pods.setdefault(o.data.name, []).append(o)
        if not pods:
            return Evidence(None, f"no pods of {self._what} recorded", cov, tuple(map(str, gaps)))
        longest: list[tuple[float, str, str]] = []
        for name, obs in pods.items():
            since: float | None = None
            total, reason = 0.0, ""
            for o in obs:
                pending = o.data.event != "DELETED" and o.data.fields.get("phase") == "Pending"
                if pending and since is None:
                    since = max(o.t, window.start)
                if pending and o.data.fields.get("unschedulable"):
                    reason = str(o.data.fields["unschedulable"])
                if not pending and since is not None:
                    total += max(0.0, min(o.t, window.end) - since)
                    since = None
            if since is not None:
                total += max(0.0, window.end - since)
            if total > 0:
                longest.append((total, name, reason))
        longest.sort(reverse=True)
        if not longest:
            return Evidence(
                0.0, f"no pod of {len(pods)} Pending in the window", cov, tuple(map(str, gaps))
            )
        shown = "; ".join(f"{n} {s:.1f} s" + (f" ({r})" if r else "") for s, n, r in longest[:3])
        detail = f"{len(longest)} of {len(pods)} pods were Pending: {shown}"
        return Evidence(longest[0][0], detail, cov, tuple(map(str, gaps)))


class AutoscalerHealthCheck(_AutoscalingCheck):
    """``autoscaler_failures == 0``: distinct failures the HPA controller itself reported
    in the window — ScalingActive or AbleToScale False for a failure reason, and Warning
    events such as FailedGetResourceMetric / FailedGetPodsMetric / FailedGetExternalMetric
    on the HPA — that lasted at least ``grace_s`` (default 60 s). A fresh HPA or pod has
    no metrics for its first sync or two; that is not a broken source, and the reason
    names it as transient. One broken metric source is a failure even while another
    metric scales the target (the controller then warns by event, and the reason quotes it).
    """

    kind = "autoscaler"

    def __init__(
        self, threshold: Threshold, *args: object, grace_s: float = 60.0, **kw: object
    ) -> None:
        super().__init__(threshold, *args, **kw)  # type: ignore[arg-type]
        self.grace_s = grace_s

    def partial_violation_fails(self) -> bool:
        return True

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "HorizontalPodAutoscaler", window)
        hpa = self._hpa(timeline)
        if not hpa:
            return Evidence(None, f"no HPA recorded for {self._what}", cov, tuple(map(str, gaps)))
        names = {o.data.name for o in hpa}
        spans: dict[str, list[float]] = {}  # reason -> [failing since, until]
        words: dict[str, str] = {}
        on: dict[str, float] = {}  # failing now, since
        before = [o for o in hpa if o.t < window.start]
        for o in before[-1:] + [o for o in hpa if window.contains(o.t)]:
            t = max(o.t, window.start)
            failing = set()
            for cond in ("scaling_active", "able_to_scale"):
                f = o.data.fields
                reason = str(f.get(f"{cond}_reason") or "")
                if f.get(cond) is False and reason.startswith(("Failed", "Invalid")):
                    failing.add(reason)
                    words.setdefault(reason, f"{reason}: {f.get(f'{cond}_message') or ''}")
                    on.setdefault(reason, t)
            for reason in [r for r in on if r not in failing]:
                since = on.pop(reason)
                spans[reason] = [min(spans.get(reason, [since])[0], since), t]
        for reason, since in on.items():  # still failing at the window's end
            spans[reason] = [min(spans.get(reason, [since])[0], since), window.end]
        for o in _objects(timeline, "Event", None, self.target.namespace):
            f = o.data.fields
            obj = str(f.get("object") or "")
            if not window.contains(o.t) or obj.split("/", 1)[-1] not in names:
                continue
            if not obj.startswith("HorizontalPodAutoscaler/") or f.get("type") != "Warning":
                continue
            reason = str(f.get("reason") or "")
            words.setdefault(reason, f"{reason}: {f.get('message') or ''}")
            span = spans.setdefault(reason, [o.t, o.t])
            span[0], span[1] = min(span[0], o.t), max(span[1], o.t)
        lasting = {r: s for r, s in spans.items() if s[1] - s[0] >= self.grace_s}
        brief = {r: s for r, s in spans.items() if r not in lasting}
        parts = [f"{words[r]} (for {s[1] - s[0]:.0f} s)" for r, s in sorted(lasting.items())]
        detail = (
            "the controller reported " + "; ".join(parts)
            if parts
            else f"HPA {', '.join(sorted(names))} reported no lasting failure"
        )
        if brief:
            detail += (
                "; transient, under the "
                + f"{self.grace_s:g} s grace: "
                + ", ".join(f"{r} for {s[1] - s[0]:.0f} s" for r, s in sorted(brief.items()))
            )
        return Evidence(float(len(lasting)), detail, cov, tuple(map(str, gaps)))
