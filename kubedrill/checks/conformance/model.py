"""The model the HPA envelope is built on: the samples, the slack, the controller's
memory as far as the record shows it, and floors and ceilings on one sync's proposal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubedrill.checks.hpaspec import GROUP_PODS_SOURCES, HpaSpec, MetricTarget, MetricValue

__all__ = [
    "Ctx",
    "Event",
    "HpaSample",
    "Ratio",
    "ReplicaSample",
    "Slack",
    "Violation",
    "candidates",
    "out_of_range",
    "ratios",
    "rec_high",
    "rec_low",
    "steady_at",
]


@dataclass(frozen=True, slots=True)
class Slack:
    """What the envelope allows for what cannot be seen (see docs/conformance.md)."""

    sync_period_s: float = 15.0  # --horizontal-pod-autoscaler-sync-period
    lag_s: float = 3.0  # a status write reaches the timeline within this
    metric_staleness_s: float = 60.0  # pods just ready may still count unready (CPU samples)
    clock_s: float = 1.0  # processing time inside a sync, timestamps taken apart
    tolerance: float = 0.1  # --horizontal-pod-autoscaler-tolerance
    downscale_stabilization_s: float = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
    surge: float = 0.25  # pods a rollout may add to those the HPA counts
    eps: float = 1e-9  # float64 ambiguity of a ratio at a band edge

    @property
    def edge(self) -> float:
        """How long before a write its decision may have been taken."""
        return self.lag_s + self.clock_s


@dataclass(frozen=True, slots=True)
class HpaSample:
    """One observation of the HPA; ``spec`` None keeps the previous one."""

    t: float
    current: int | None
    desired: int | None
    metrics: tuple[MetricValue, ...] | None = None
    scaling_active: bool | None = None
    able_to_scale: bool | None = None
    spec: HpaSpec | None = None
    status_key: object = None  # equal keys: the same status write; None derives one


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """One observation of the scale target (a Deployment)."""

    t: float
    replicas: int | None
    ready: int | None = None
    available: int | None = None
    updated: int | None = None
    status_replicas: int | None = None  # pods (not terminating) the scale status counts

    @property
    def steady(self) -> bool:
        """Every pod wanted is there, ready, available and up to date, and no others."""
        vals = {self.replicas, self.ready, self.available, self.updated}
        if self.status_replicas is not None:
            vals.add(self.status_replicas)
        return self.replicas is not None and len(vals) == 1


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    t: float
    step: tuple[int, int]  # from, to
    allowed: tuple[int, int]  # the envelope at that moment
    why: str

    def describe(self, at: str | None = None) -> str:
        when = at if at is not None else f"{self.t:.1f} s"
        a, b = self.allowed
        allowed = f"{a}" if a == b else f"{a}..{b}"
        return (
            f"{self.rule} at {when}: {self.step[0]}→{self.step[1]}, allowed {allowed} ({self.why})"
        )


@dataclass(slots=True)
class Event:
    """A replica change the controller may hold in its rate-limit history."""

    lo: float  # earliest and latest moment it may have been made
    hi: float
    delta: int  # signed
    definite: bool  # a step the HPA surely made and stored (behavior set, seen whole)


@dataclass(slots=True)
class Ctx:
    slack: Slack
    samples: list[HpaSample]
    specs: list[HpaSpec]
    state_only: list[bool]
    known_since: list[float]  # history complete since (start, gap end)
    replicas: Sequence[ReplicaSample]
    restarts: Sequence[float]
    gaps: Sequence[tuple[float, float]]
    events: list[Event] = field(default_factory=list)


def candidates(ctx: Ctx, i: int) -> list[HpaSpec]:
    """The specs the sync behind sample ``i`` may have read."""
    t0 = ctx.samples[i].t - ctx.slack.sync_period_s - ctx.slack.edge
    out = [ctx.specs[i]]
    j = i - 1
    while j >= 0:
        if ctx.specs[j] not in out:
            out.append(ctx.specs[j])
        if ctx.samples[j].t <= t0:
            break
        j -= 1
    return out


def out_of_range(c: int, specs: list[HpaSpec]) -> bool:
    return all(c < s.min_replicas or c > s.max_replicas for s in specs)


@dataclass(frozen=True, slots=True)
class Ratio:
    target: MetricTarget
    lo: float  # the ratio the controller computed lies in [lo, hi]
    hi: float
    where: str  # "inside" / "above" / "below" / "edge": against every tolerance it may use

    def show(self) -> str:
        r = self.hi if self.target.target_type != "AverageValue" else (self.lo + self.hi) / 2
        return f"{self.target.source} {self.target.name} at {r:.3g}x target"


def tolerances(spec: HpaSpec, sl: Slack) -> tuple[list[float], list[float]]:
    down, up = [sl.tolerance], [sl.tolerance]
    if not spec.legacy:  # a per-HPA tolerance counts only where the feature gate is on
        if spec.down.tolerance is not None:
            down.append(spec.down.tolerance)
        if spec.up.tolerance is not None:
            up.append(spec.up.tolerance)
    return down, up


def ratios(spec: HpaSpec, s: HpaSample, sl: Slack) -> list[Ratio | None]:
    """Each spec metric's ratio as the sync saw it (None: not in the status)."""
    seen = list(s.metrics or ())
    down, up = tolerances(spec, sl)
    out: list[Ratio | None] = []
    for m in spec.metrics:
        value = next((v for v in seen if v.key == m.key and v.for_target(m) is not None), None)
        if value is None:
            out.append(None)
            continue
        seen.remove(value)
        cur = value.for_target(m)
        assert cur is not None
        # averages are reported rounded up to a milli-unit
        lo = (cur - 0.001) / m.target if m.target_type == "AverageValue" else cur / m.target
        hi = cur / m.target
        if lo >= 1 - min(down) + sl.eps and hi <= 1 + min(up) - sl.eps:
            where = "inside"
        elif lo > 1 + max(up) + sl.eps:
            where = "above"
        elif hi < 1 - max(down) - sl.eps:
            where = "below"
        else:
            where = "edge"
        out.append(Ratio(m, lo, hi, where))
    return out


def steady_at(ctx: Ctx, t: float, c: int) -> bool:
    """The target showed exactly c replicas, all ready and updated, at ``t``."""
    last = None
    for r in ctx.replicas:
        if r.t > t:
            break
        last = r
    return last is not None and last.steady and last.replicas == c


def ready_low(ctx: Ctx, t: float) -> int | None:
    """A floor under the pods the scale subresource counted near ``t``."""
    t0 = t - ctx.slack.sync_period_s - ctx.slack.edge
    vals = [r.ready for r in ctx.replicas if t0 <= r.t <= t and r.ready is not None]
    before = [r.ready for r in ctx.replicas if r.t < t0 and r.ready is not None]
    if before:
        vals.append(before[-1])
    return min(vals) if vals else None


def rec_low(ctx: Ctx, i: int, spec: HpaSpec, c: int) -> tuple[int | None, Ratio | None]:
    """A floor under the recommendation of the sync behind sample ``i``, and the metric
    that sets it (the max over metrics is at least any one metric's proposal)."""
    s = ctx.samples[i]
    best: tuple[int | None, Ratio | None] = (None, None)
    for r in ratios(spec, s, ctx.slack):
        if r is None or r.where in ("below", "edge"):
            continue
        rec: int | None = None
        if r.target.source in GROUP_PODS_SOURCES or r.target.target_type == "Value":
            if r.where == "inside" or r.target.source in GROUP_PODS_SOURCES:
                rec = c  # hold, or a scale-up that never proposes less than c
            elif steady_at(ctx, s.t, c):
                rec = c
        else:  # AverageValue Object/External: hold means the status replica count
            rec = c if steady_at(ctx, s.t, c) else ready_low(ctx, s.t)
        if rec is not None and (best[0] is None or rec > best[0]):
            best = (rec, r)
    return best


def rec_high(ctx: Ctx, i: int, spec: HpaSpec, c: int) -> tuple[int | None, list[Ratio]]:
    """A ceiling over the recommendation of sample ``i``'s sync (None: unknown)."""
    s = ctx.samples[i]
    seen = ratios(spec, s, ctx.slack)
    if not seen or any(r is None for r in seen):
        return None, []
    known = [r for r in seen if r is not None]
    steady = steady_at(ctx, s.t, c)
    pods = pods_high(ctx, s.t, c)
    worst = 0
    for r in known:
        hold_c = steady or r.target.source in GROUP_PODS_SOURCES or r.target.target_type == "Value"
        if r.where == "inside" and hold_c:
            rec = c
        elif r.where == "inside" and r.target.target_type == "AverageValue":
            rec = pods  # holds at the status replica count, which may run ahead of c
        elif r.where in ("inside", "below", "edge") and r.target.source in GROUP_PODS_SOURCES:
            rec = c if r.hi <= 1 + ctx.slack.eps else math.ceil(r.hi * pods)
        else:
            rec = math.ceil(r.hi * (c if steady else pods))
        worst = max(worst, rec)
    return worst, known


def pods_high(ctx: Ctx, t: float, c: int) -> int:
    t0 = t - ctx.slack.sync_period_s - ctx.slack.edge
    seen = [c]
    for r in ctx.replicas:
        if t0 <= r.t <= t:
            seen += [n for n in (r.replicas, r.status_replicas) if n is not None]
    return math.ceil(max(seen) * (1 + ctx.slack.surge)) + 1
