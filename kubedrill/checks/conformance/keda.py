"""KEDA's own steps (0 ↔ N), judged over the scale target's replica record.

Between 1 and N the generated HPA (``keda-hpa-<scaledobject>``) decides and
:func:`~kubedrill.checks.conformance.judge_hpa` judges it. KEDA's loop, once per
``pollingInterval``, makes only these moves (KEDA 2.x, ``scale_scaledobjects.go``):

* ``keda_activation``: from 0 (or the idle count) it sets exactly ``max(minReplicaCount, 1)``,
  and only while a trigger is active (or fallback is); with ``minReplicaCount`` > 0 and no
  idle count it also restores the minimum while inactive.
* ``keda_idle``: scaling in below the HPA's range goes to ``idleReplicaCount`` if set, else
  to 0, and only with ``minReplicaCount`` 0 or an idle count.
* ``keda_cooldown``: that scale-in comes only once ``cooldownPeriod`` has passed since the
  ScaledObject was last active. Its last active poll is taken as early as it can have
  been: up to two polling intervals before the Active condition was seen False.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from kubedrill.checks.conformance.model import ReplicaSample, Slack, Violation
from kubedrill.checks.hpaspec import KedaSpec

__all__ = ["KedaSample", "judge_keda"]


@dataclass(frozen=True, slots=True)
class KedaSample:
    """One observation of the ScaledObject; ``spec`` None keeps the previous one."""

    t: float
    active: bool | None
    fallback: bool | None = None
    spec: KedaSpec | None = None
    paused: bool | None = None  # paused / paused-replicas: KEDA sets that count, or nothing


def judge_keda(
    spec: KedaSpec,
    samples: Sequence[KedaSample],
    replicas: Sequence[ReplicaSample],
    *,
    gaps: Sequence[tuple[float, float]] = (),
    slack: Slack | None = None,
) -> list[Violation]:
    """Every 0 ↔ N step of the target's ``replicas`` that KEDA's loop would not make.

    ``gaps`` are spans in which the target's watch (or the ScaledObject's) was down: a
    step across one is not judged.
    """
    sl = slack or Slack()
    sos = sorted(samples, key=lambda s: s.t)
    specs: list[KedaSpec] = []
    cur = spec
    for s in sos:
        cur = s.spec or cur
        specs.append(cur)
    reps = [r for r in sorted(replicas, key=lambda r: r.t) if r.replicas is not None]
    out: list[Violation] = []
    for a, b in itertools.pairwise(reps):
        assert a.replicas is not None
        assert b.replicas is not None
        if a.replicas == b.replicas or any(g0 < b.t and g1 > a.t for g0, g1 in gaps):
            continue
        if _paused_near(sos, b.t, specs, sl):
            continue
        cands = _candidates(spec, sos, specs, b.t, sl)
        found: Violation | None = None
        for n, k in enumerate(cands):
            v = _step(k, sos, a.replicas, b.replicas, b.t, sl)
            if v is None:
                found = None
                break
            if n == 0:
                found = v
        if found is not None:
            out.append(found)
    return out


def _candidates(
    spec: KedaSpec, sos: list[KedaSample], specs: list[KedaSpec], t: float, sl: Slack
) -> list[KedaSpec]:
    in_force = spec
    out: list[KedaSpec] = []
    for s, k in zip(sos, specs, strict=True):
        if s.t <= t:
            in_force = k
        if t - 2 * max(k.polling_s, 1) - sl.edge <= s.t <= t and k not in out:
            out.append(k)
    return [in_force, *[k for k in out if k != in_force]]


def _paused_near(sos: list[KedaSample], t: float, specs: list[KedaSpec], sl: Slack) -> bool:
    poll = max((k.polling_s for k in specs), default=30)
    lo, hi = t - 2 * poll - sl.edge, t + poll + sl.edge
    before = [s for s in sos if s.t < lo]
    near = ([before[-1]] if before else []) + [s for s in sos if lo <= s.t <= hi]
    return any(s.paused is True for s in near)


def _active_near(k: KedaSpec, sos: list[KedaSample], t: float, sl: Slack) -> bool | None:
    """Was a trigger (or fallback) active within a polling interval or two of ``t``?"""
    if k.always_active:
        return True
    lo, hi = t - 2 * k.polling_s - sl.edge, t + k.polling_s + sl.edge
    before = [s for s in sos if s.t < lo]
    near = ([before[-1]] if before else []) + [s for s in sos if lo <= s.t <= hi]
    if any(s.active is True or s.fallback is True for s in near):
        return True
    if not near or all(s.active is None for s in near):
        return None
    return False


def _step(
    k: KedaSpec, sos: list[KedaSample], a: int, b: int, t: float, sl: Slack
) -> Violation | None:
    act = k.activation_replicas
    from_idle = a == 0 or (k.idle_replicas is not None and a == k.idle_replicas and a < act)
    if b > a and from_idle:
        if b != act:
            why = f"KEDA activates to exactly max(minReplicaCount, 1) = {act}"
            return Violation("keda_activation", t, (a, b), (act, act), why)
        if k.min_replicas > 0 and k.idle_replicas is None:
            return None  # restoring the minimum needs no active trigger
        if _active_near(k, sos, t, sl) is False:
            why = (
                f"the ScaledObject was not active (nor in fallback) within "
                f"{2 * k.polling_s} s before or {k.polling_s} s after the step"
            )
            return Violation("keda_activation", t, (a, b), (a, a), why)
        return None
    if not (b < a and b < act):
        return None  # 1..N belongs to the HPA
    if k.idle_replicas is not None:
        allowed = k.idle_replicas
    elif k.min_replicas == 0:
        allowed = 0
    else:
        why = (
            f"minReplicaCount is {k.min_replicas} and no idleReplicaCount: KEDA never goes below it"
        )
        return Violation("keda_idle", t, (a, b), (act, a), why)
    if b != allowed:
        to = "idleReplicaCount" if k.idle_replicas is not None else "0"
        why = f"KEDA scales in to {to} = {allowed}"
        return Violation("keda_idle", t, (a, b), (allowed, allowed), why)
    last_active = [s for s in sos if s.t <= t and (s.active is True or s.fallback is True)]
    if k.always_active:
        why = "only cpu/memory triggers: KEDA treats the ScaledObject as always active"
        return Violation("keda_cooldown", t, (a, b), (a, a), why)
    if not last_active:
        return None  # never seen active: initialCooldownPeriod counts from creation
    t_a = last_active[-1].t
    off = [s.t for s in sos if t_a < s.t <= t and s.active is False]
    t_off = off[0] if off else t
    earliest = t_off - 2 * k.polling_s - sl.edge + k.cooldown_s
    if t >= earliest:
        return None
    why = (
        f"{t - t_off:.1f} s after the ScaledObject was seen inactive; cooldownPeriod "
        f"{k.cooldown_s} s (polling {k.polling_s} s) allows it from {earliest - t_off:.1f} s"
    )
    return Violation("keda_cooldown", t, (a, b), (a, a), why)
