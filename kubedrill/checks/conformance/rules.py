"""The rules one step (a status write with desired != current) is judged by."""

from __future__ import annotations

import math

from kubedrill.checks.conformance.model import (
    Ctx,
    Violation,
    out_of_range,
    rec_high,
    rec_low,
)
from kubedrill.checks.hpaspec import HpaSpec

__all__ = ["step_rule"]


def step_rule(ctx: Ctx, i: int, spec: HpaSpec, c: int, d: int) -> Violation | None:
    t = ctx.samples[i].t
    lo, hi = spec.min_replicas, spec.max_replicas
    if c < lo or c > hi:
        bound = lo if c < lo else hi
        if d == bound:
            return None
        side = "below minReplicas" if c < lo else "above maxReplicas"
        why = f"{c} is {side} [{lo}, {hi}]: the HPA sets the bound {bound} at once"
        return Violation("bounds", t, (c, d), (bound, bound), why)
    if d < lo or d > hi:
        why = f"{d} is outside minReplicas..maxReplicas [{lo}, {hi}]"
        return Violation("bounds", t, (c, d), (lo, hi), why)
    up = d > c
    if not spec.legacy and (spec.up if up else spec.down).select == "Disabled":
        side = "scaleUp" if up else "scaleDown"
        why = f"behavior.{side}.selectPolicy is Disabled"
        return Violation("disabled", t, (c, d), (c, c), why)
    for rule in (_metrics_rule, _rate_rule, _stabilization_rule):
        v = rule(ctx, i, spec, c, d)
        if v is not None:
            return v
    return None


def _metrics_rule(ctx: Ctx, i: int, spec: HpaSpec, c: int, d: int) -> Violation | None:
    t = ctx.samples[i].t
    if d < c:
        rec, r = rec_low(ctx, i, spec, c)
        if rec is None or r is None or rec < c:
            return None
        rule = "tolerance" if r.where == "inside" else "direction"
        why = (
            f"{r.show()} is inside the tolerance band, so it proposes {c}"
            if rule == "tolerance"
            else f"{r.show()} is above target, so it proposes at least {c}"
        )
        return Violation(rule, t, (c, d), (c, spec.max_replicas), why)
    if spec.legacy:
        return None  # the legacy max over 5 minutes may lift a held count
    rec_hi, ratios = rec_high(ctx, i, spec, c)
    if rec_hi is None or rec_hi > c:
        return None
    inside = all(r.where == "inside" for r in ratios)
    shown = ", ".join(r.show() for r in ratios)
    why = (
        f"{shown}: inside the tolerance band, the HPA holds {c}"
        if inside
        else f"{shown}: none above target, the HPA proposes at most {c}"
    )
    return Violation("tolerance" if inside else "direction", t, (c, d), (spec.min_replicas, c), why)


# ------------------------------------------------------------------ rate limits
def _rate_rule(ctx: Ctx, i: int, spec: HpaSpec, c: int, d: int) -> Violation | None:
    sl, t = ctx.slack, ctx.samples[i].t
    if spec.legacy:
        if d <= c:
            return None  # no scale-down rate limit on the legacy path
        limit = min(spec.max_replicas, max(2 * c, 4))
        if d <= limit:
            return None
        why = f"no behavior: at most max(2x{c}, 4) = {max(2 * c, 4)} per sync"
        return Violation("rate_up", t, (c, d), (c, limit), why)
    up = d > c
    rules = spec.up if up else spec.down
    if not rules.policies:
        return None
    if any(t - p.period_s - sl.edge < ctx.known_since[i] for p in rules.policies):
        return None  # the history reaches back before the record is complete
    last_restart = max((r for r in ctx.restarts if r <= t), default=-math.inf)
    limits: list[tuple[int, str]] = []
    for p in rules.policies:
        start_lo, start_hi = t - p.period_s - sl.edge, t - p.period_s + sl.edge
        period_start = c
        for e in ctx.events:
            possibly = e.hi > start_lo
            surely = e.definite and e.lo > start_hi and e.lo > last_restart + sl.edge
            # lenient: the start the controller may have used that loosens the limit most
            if up and ((e.delta > 0 and surely) or (e.delta < 0 and possibly)):
                period_start -= e.delta
            if not up and ((e.delta < 0 and surely) or (e.delta > 0 and possibly)):
                period_start -= e.delta
        if up:
            lim = (
                period_start + p.value
                if p.type == "Pods"
                else math.ceil(float(period_start) * (1 + float(p.value) / 100))
            )
        else:
            lim = (
                period_start - p.value
                if p.type == "Pods"
                else int(float(period_start) * (1 - float(p.value) / 100))
            )
        unit = "" if p.type == "Pods" else "%"
        limits.append((lim, f"{p.type} {p.value}{unit}/{p.period_s}s from {period_start} → {lim}"))
    # Max: the policy allowing the biggest change; Min: the smallest one
    pick = max if (rules.select == "Max") == up else min
    limit, _ = pick(limits, key=lambda x: x[0])
    if up:
        bound = min(spec.max_replicas, max(limit, c))
        if d <= bound:
            return None
        why = f"scaleUp {rules.select} of {'; '.join(h for _, h in limits)}: at most {bound}"
        return Violation("rate_up", t, (c, d), (c, bound), why)
    bound = max(spec.min_replicas, min(limit, c))
    if d >= bound:
        return None
    why = f"scaleDown {rules.select} of {'; '.join(h for _, h in limits)}: at least {bound}"
    return Violation("rate_down", t, (c, d), (bound, c), why)


# ------------------------------------------------------------------ stabilization
def anchors(ctx: Ctx, i: int, window_s: float) -> list[int]:
    """Earlier writes whose sync surely recorded a recommendation inside the window."""
    sl, t = ctx.slack, ctx.samples[i].t
    last_restart = max((r for r in ctx.restarts if r <= t), default=-math.inf)
    out = []
    for j in range(i):
        s = ctx.samples[j]
        if ctx.state_only[j] or s.scaling_active is not True or s.able_to_scale is False:
            continue
        if s.current is None or s.current <= 0:
            continue
        inside = s.t - sl.edge > t - window_s + sl.edge and s.t - sl.edge > last_restart + sl.edge
        if inside and not out_of_range(s.current, [ctx.specs[j]]):
            out.append(j)
    return out


def _stabilization_rule(ctx: Ctx, i: int, spec: HpaSpec, c: int, d: int) -> Violation | None:
    t = ctx.samples[i].t
    if d < c:
        w = spec.down.window_s
        window = (
            float(w) if w is not None and not spec.legacy else ctx.slack.downscale_stabilization_s
        )
        floor, at = 0, -1
        for j in anchors(ctx, i, window):
            s = ctx.samples[j]
            assert s.current is not None
            rec, _ = rec_low(ctx, j, ctx.specs[j], s.current)
            if rec is not None and rec > floor:
                floor, at = rec, j
        bound = min(c, floor, spec.max_replicas)
        if at < 0 or d >= bound:
            return None
        why = (
            f"a recommendation of at least {floor} {t - ctx.samples[at].t:.1f} s earlier "
            f"is inside the {window:g} s scale-down window"
        )
        return Violation("stabilization_down", t, (c, d), (bound, c), why)
    w_up = spec.up.window_s or 0
    if spec.legacy or w_up <= 0:
        return None
    ceiling, at = math.inf, -1
    for j in anchors(ctx, i, float(w_up)):
        s = ctx.samples[j]
        assert s.current is not None
        rec, _ = rec_high(ctx, j, ctx.specs[j], s.current)
        if rec is not None and rec < ceiling:
            ceiling, at = rec, j
    if at < 0 or d <= max(c, ceiling):
        return None
    bound = int(max(c, ceiling))
    why = (
        f"a recommendation of at most {int(ceiling)} {t - ctx.samples[at].t:.1f} s earlier "
        f"is inside the {w_up} s scale-up window"
    )
    return Violation("stabilization_up", t, (c, d), (c, bound), why)
