"""Spans in which the count stays where the HPA would not leave it."""

from __future__ import annotations

import math

from kubedrill.checks.conformance.model import Ctx, Violation, ratios, steady_at
from kubedrill.checks.hpaspec import HpaSpec

__all__ = ["stuck"]


_Held = tuple[str, int, HpaSpec]  # rule, the count held, the spec in force


def stuck(ctx: Ctx, until: float) -> list[Violation]:
    """Spans in which the count stayed where the rules say it cannot stay: out of range,
    or below (above) what the metrics demand while the target is steady and nothing moves."""
    first = ctx.samples[0].t
    points = sorted({s.t for s in ctx.samples} | {r.t for r in ctx.replicas if first < r.t < until})
    points.append(max(until, points[-1]))
    since: dict[_Held, tuple[float, float, tuple[int, int], str]] = {}
    flagged: set[_Held] = set()
    out: list[Violation] = []
    i, prev_p = 0, -math.inf
    for p in points:
        for key, (start, limit, allowed, why) in since.items():
            if p - start >= limit and key not in flagged:
                out.append(Violation(key[0], start + limit, (key[1], key[1]), allowed, why))
                flagged.add(key)
        while i + 1 < len(ctx.samples) and ctx.samples[i + 1].t <= p:
            i += 1
        if any(g0 <= p and g1 > prev_p for g0, g1 in ctx.gaps):
            since.clear()
        conds = _stuck_conditions(ctx, i, p)
        for key in [k for k in since if k not in conds]:
            since.pop(key)
        for key, (limit, allowed, why) in conds.items():
            since.setdefault(key, (p, limit, allowed, why))
        prev_p = p
    return out


def _stuck_conditions(
    ctx: Ctx, i: int, p: float
) -> dict[_Held, tuple[float, tuple[int, int], str]]:
    """What the state from ``p`` on (HPA sample ``i``, the target's record) forbids to last,
    and for how long it may last."""
    sl, s, spec = ctx.slack, ctx.samples[i], ctx.specs[i]
    c = s.current
    if c is None or c <= 0 or s.able_to_scale is False:
        return {}
    two_syncs = 2 * sl.sync_period_s + sl.edge
    settle = two_syncs + sl.metric_staleness_s  # the pods' samples catch up with readiness
    lo, hi = spec.min_replicas, spec.max_replicas
    if c < lo or c > hi:
        bound = lo if c < lo else hi
        why = f"{c} is outside [{lo}, {hi}]: the HPA sets {bound} at its next sync"
        return {("bounds", c, spec): (two_syncs, (bound, bound), why)}
    if s.desired != c or s.scaling_active is not True or not steady_at(ctx, p, c):
        return {}
    seen = ratios(spec, s, sl)
    out: dict[_Held, tuple[float, tuple[int, int], str]] = {}
    above = [r for r in seen if r is not None and r.where == "above"]
    if above and c < hi and (spec.legacy or spec.up.select != "Disabled"):
        hold = settle if spec.legacy else (spec.up.window_s or 0) + spec.up.max_period_s + settle
        want = max(math.ceil(r.lo * c) for r in above)
        why = f"{above[0].show()} with {c} ready pods asks for {want}: no step in {hold:g} s"
        out[("stuck_below", c, spec)] = (hold, (c + 1, min(hi, max(want, c + 1))), why)
    known = [r for r in seen if r is not None]
    if (
        seen
        and len(known) == len(seen)
        and all(r.where == "below" for r in known)
        and c > lo
        and (spec.legacy or spec.down.select != "Disabled")
    ):
        want = max(lo, max(math.ceil(r.hi * c) for r in known))
        if want < c:
            w = spec.down.window_s
            window = float(w) if w is not None and not spec.legacy else sl.downscale_stabilization_s
            hold = window + (0 if spec.legacy else spec.down.max_period_s) + settle
            shown = ", ".join(r.show() for r in known)
            why = f"{shown} with {c} ready pods asks for {want}: no step in {hold:g} s"
            out[("stuck_above", c, spec)] = (hold, (lo, want), why)
    return out
