"""The HPA envelope engine: which replica steps the documented HPA algorithm allows.

Pure functions over recorded samples (no timeline here; ``conformance_checks`` reads it).
Each status write of the HPA (``currentReplicas`` c, ``desiredReplicas`` d, the
``currentMetrics`` it saw) is one sync's decision, observed up to ``lag_s`` after it was
made. A step is a write with d ≠ c; each is judged against the rules below, with the spec
in force (any spec seen within a sync period before it). The stabilization and rate-limit
history live only in the controller's memory, so every bound is built leniently: an
earlier write counts where it surely falls inside a window when that tightens a bound,
and wherever it possibly falls when that loosens it. When in doubt, a step is allowed.

Rules (one violation per step, the first that applies, in this order):

* ``bounds``: d outside [min, max]; with c outside them, d must be that bound, and the
  count must not stay out of range longer than two sync periods.
* ``disabled``: a step in a direction whose ``selectPolicy`` is ``Disabled``.
* ``tolerance``: a step while every metric that decides it is inside the tolerance band.
* ``direction``: a step the sync's own metrics cannot ask for (down while a metric is at
  or above target, up while all are at or below it).
* ``rate_up`` / ``rate_down``: beyond the behavior's policies over their periods (or the
  legacy ``max(2c, 4)`` per sync).
* ``stabilization_down`` / ``stabilization_up``: below the highest (above the lowest)
  recommendation the window still holds.
* ``stuck_below`` / ``stuck_above``: the metrics demanding a change, the target steady,
  and no step for longer than the windows, a policy period and two sync periods allow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kubedrill.checks.conformance.model import (
    Ctx,
    Event,
    HpaSample,
    ReplicaSample,
    Slack,
    Violation,
    candidates,
    out_of_range,
)
from kubedrill.checks.conformance.rules import step_rule
from kubedrill.checks.conformance.stuck import stuck
from kubedrill.checks.hpaspec import HpaSpec

__all__ = ["judge_hpa"]


def judge_hpa(
    spec: HpaSpec,
    samples: Sequence[HpaSample],
    *,
    replicas: Sequence[ReplicaSample] = (),
    gaps: Sequence[tuple[float, float]] = (),
    replica_gaps: Sequence[tuple[float, float]] = (),
    restarts: Sequence[float] = (),
    until: float | None = None,
    slack: Slack | None = None,
) -> list[Violation]:
    """Every step of ``samples`` (in time order) outside what the HPA algorithm allows.

    ``spec`` is in force before the first sample that carries one; ``replicas`` is the
    scale target's record (needed for the stuck rules), ``gaps`` the spans the HPA watch
    was down (``replica_gaps`` the target's), ``restarts`` the moments the controller
    manager lost its memory (a leader change), ``until`` the end of the judged span.
    """
    sl = slack or Slack()
    ordered = sorted(samples, key=lambda s: s.t)
    if not ordered:
        return []
    specs: list[HpaSpec] = []
    state_only: list[bool] = []
    known: list[float] = []
    cur_spec, since = spec, ordered[0].t
    for i, s in enumerate(ordered):
        cur_spec = s.spec or cur_spec
        specs.append(cur_spec)
        prev_t = ordered[i - 1].t if i else -math.inf
        broken = i == 0 or any(g0 < s.t and g1 > prev_t for g0, g1 in gaps)
        if broken:
            since = s.t
        state_only.append(broken or _key(s) == _key(ordered[i - 1]))
        known.append(since)
    ctx = Ctx(
        sl,
        ordered,
        specs,
        state_only,
        known,
        sorted(replicas, key=lambda r: r.t),
        restarts,
        [*gaps, *replica_gaps],
    )
    out: list[Violation] = []
    for i, s in enumerate(ordered):
        if i and not state_only[i]:
            prev = ordered[i - 1]
            if s.current is not None and prev.desired is not None and s.current != prev.desired:
                delta = s.current - prev.desired  # a change nobody was seen writing
                ctx.events.append(Event(prev.t - sl.edge, s.t, delta, False))
        if state_only[i] or not _decides(s):
            continue
        assert s.current is not None  # _decides
        assert s.desired is not None
        c, d = s.current, s.desired
        if d == c and not out_of_range(c, candidates(ctx, i)):
            continue
        v = _judge_step(ctx, i, c, d)
        if v is not None:
            out.append(v)
        if d != c:
            ctx.events.append(Event(s.t - sl.edge, s.t, d - c, not specs[i].legacy))
    out.extend(stuck(ctx, until if until is not None else ordered[-1].t))
    return sorted(out, key=lambda v: v.t)


def _key(s: HpaSample) -> object:
    if s.status_key is not None:
        return s.status_key
    return (s.current, s.desired, s.metrics, s.scaling_active, s.able_to_scale)


def _decides(s: HpaSample) -> bool:
    """A write that is the outcome of a sync that could scale (not a failed one)."""
    return (
        s.current is not None
        and s.desired is not None
        and s.current > 0  # 1.35: at 0 the HPA is disabled (KEDA's or a person's move)
        and s.scaling_active is not False
        and s.able_to_scale is not False
    )


def _judge_step(ctx: Ctx, i: int, c: int, d: int) -> Violation | None:
    """The step's violation under the spec of sample ``i``, unless another spec it may
    have read allows it."""
    found: Violation | None = None
    for n, spec in enumerate(candidates(ctx, i)):
        v = step_rule(ctx, i, spec, c, d)
        if v is None:
            return None
        if n == 0:
            found = v
    return found
