"""A forward simulation of the HPA controller (Kubernetes 1.35, one CPU Utilization metric),
written from the algorithm as documented in shared/notes/hpa-keda.md, independently of the
envelope engine: it syncs every ~15 s (jittered), computes the proposal with the pod
adjustments, stabilizes, rate-limits, rescales, and writes status only when it differs;
the watcher sees each write after a random lag. The conformance check must find nothing.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from kubedrill.timeline import ObjectTransition, Timeline
from tests.unit import conformance_cases as cc


@dataclass
class Sim:
    spec: dict[str, Any]
    rng: random.Random
    startup_s: float  # a new pod is ready this long after it is created
    c: int = 2
    pods: list[float] = field(default_factory=list)  # ready-at time of each pod
    recs: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)  # (time, signed change)
    last_status: tuple[Any, ...] | None = None
    last_desired: int = 2
    fault: str = ""  # "no_rate", "no_stabilization", "no_tolerance": a broken controller

    def tolerance(self, side: str) -> float:
        b = self.spec.get("behavior")
        if b is None or (b.get(side) or {}).get("tolerance") is None:
            return 0.1
        return float(b[side]["tolerance"])

    def within(self, r: float) -> bool:
        if self.fault == "no_tolerance":
            return r == 1
        return 1 - self.tolerance("scaleDown") <= r <= 1 + self.tolerance("scaleUp")

    def proposal(self, now: float, demand: float, target: int) -> tuple[int, int]:
        """(replicas or -1, reported utilization)."""
        ready = [p for p in self.pods if p <= now]
        n, unready = len(ready), len(self.pods) - len(ready)
        if n == 0:
            return -1, 0
        u = int(100 * demand / n)
        r0 = u / target
        if unready == 0 or r0 <= 1:
            return (self.c if self.within(r0) else math.ceil(r0 * n)), u
        u1 = int(100 * demand / (n + unready))
        r1 = u1 / target
        if self.within(r1) or r1 < 1:
            return self.c, u
        new = math.ceil(r1 * (n + unready))
        return (self.c if new < self.c else new), u

    def rules(self, side: str) -> dict[str, Any]:
        b = self.spec.get("behavior") or {}
        got = b.get(side) or {}
        if side == "scaleUp":
            default = [cc.pods(4, 15), cc.percent(100, 15)]
            w = got.get("stabilizationWindowSeconds", 0)
        else:
            default = [cc.percent(100, 15)]
            w = got.get("stabilizationWindowSeconds", 300)
        return {
            "select": got.get("selectPolicy", "Max"),
            "window": w,
            "policies": got.get("policies") or default,
        }

    def limit(self, now: float, up: bool) -> int:
        r = self.rules("scaleUp" if up else "scaleDown")
        if self.fault == "no_rate":
            return 10**6 if up else 0
        if r["select"] == "Disabled":
            return self.c
        out: list[int] = []
        for p in r["policies"]:
            ups = sum(d for t, d in self.events if t > now - p["periodSeconds"] and d > 0)
            downs = -sum(d for t, d in self.events if t > now - p["periodSeconds"] and d < 0)
            start = self.c - ups + downs
            if up:
                v = (
                    start + p["value"]
                    if p["type"] == "Pods"
                    else math.ceil(start * (1 + p["value"] / 100))
                )
            else:
                v = (
                    start - p["value"]
                    if p["type"] == "Pods"
                    else int(start * (1 - p["value"] / 100))
                )
            out.append(int(v))
        if up:
            return max(out) if r["select"] == "Max" else min(out)
        return min(out) if r["select"] == "Max" else max(out)

    def sync(self, now: float, demand: float) -> tuple[int, int, int, bool] | None:
        lo, hi = self.spec["minReplicas"], self.spec["maxReplicas"]
        target = self.spec["metrics"][0]["resource"]["target"]["averageUtilization"]
        behavior = self.spec.get("behavior") is not None
        c = self.c
        _, u = self.proposal(now, demand, target)
        if c > hi or c < lo:
            desired = hi if c > hi else lo
        else:
            rec, u = self.proposal(now, demand, target)
            if rec < 0:
                return c, self.last_desired, u, False
            self.recs.append((now, rec))
            if not behavior:
                stab = max(r for t, r in self.recs if t > now - 300)
                if self.fault == "no_stabilization":
                    stab = rec
                cap = 10**6 if self.fault == "no_rate" else max(2 * c, 4)
                desired = max(lo, min(stab, hi, cap))
            else:
                up, down = self.rules("scaleUp"), self.rules("scaleDown")
                up_rec = min(r for t, r in self.recs if t > now - up["window"] or t == now)
                down_rec = max(r for t, r in self.recs if t > now - down["window"] or t == now)
                if self.fault == "no_stabilization":
                    up_rec = down_rec = rec
                stab = c
                if stab < up_rec:
                    stab = up_rec
                if stab > down_rec:
                    stab = down_rec
                if stab > c:
                    desired = min(stab, min(hi, max(self.limit(now, True), c)))
                elif stab < c:
                    desired = max(stab, max(lo, min(self.limit(now, False), c)))
                else:
                    desired = c
                desired = max(lo, min(hi, desired))
        if desired != c:
            if behavior:
                self.events.append((now, desired - c))
            self.c = desired
            if desired > c:
                self.pods += [now + self.startup_s] * (desired - c)
            else:
                self.pods = sorted(self.pods)[:desired]
        self.last_desired = desired
        return c, desired, u, True


def simulate(
    seed: int,
    duration_s: float = 1500.0,
    fault: str = "",
    lag_max: float = 1.5,
    jitter: tuple[float, float] = (-0.3, 0.8),
) -> Timeline:
    rng = random.Random(seed)
    behavior: dict[str, Any] | None
    kind = rng.choice(["legacy", "default", "random", "random"])
    if kind == "legacy":
        behavior = None
    elif kind == "default":
        behavior = {}
    else:
        behavior = {}
        for side in ("scaleUp", "scaleDown"):
            if rng.random() < 0.2:
                continue
            pol = []
            for _ in range(rng.randint(1, 2)):
                if rng.random() < 0.5:
                    pol.append(cc.pods(rng.randint(1, 5), rng.choice([15, 30, 60, 120])))
                else:
                    pol.append(
                        cc.percent(
                            rng.choice([10, 25, 50, 100, 200])
                            if side == "scaleUp"
                            else rng.choice([10, 25, 50, 100]),
                            rng.choice([15, 30, 60, 120]),
                        )
                    )
            side_spec: dict[str, Any] = {
                "policies": pol,
                "selectPolicy": rng.choice(["Max", "Max", "Min"]),
                "stabilizationWindowSeconds": rng.choice([0, 30, 60, 120, 300]),
            }
            if rng.random() < 0.3:
                side_spec["tolerance"] = rng.choice(["0.05", "0.2", "0"])
            behavior[side] = side_spec
    lo, hi = rng.randint(1, 3), rng.randint(6, 20)
    spec = cc.hpa_spec(lo=lo, hi=hi, behavior=behavior)
    sim = Sim(spec, rng, startup_s=rng.choice([0.0, 5.0, 20.0, 45.0]), c=lo, fault=fault)
    sim.pods = [0.0] * lo
    sim.last_desired = lo
    rec = cc.Record(spec)
    demand, next_change = rng.uniform(0.5, 3), 0.0
    now = rng.uniform(0, 15)
    dep_last: tuple[int, int] | None = None
    while now < duration_s:
        if now >= next_change:
            demand = rng.choice([0.3, 1.0, 2.5, 5.0, 9.0, 14.0]) * rng.uniform(0.8, 1.2)
            next_change = now + rng.uniform(60, 400)
        out = sim.sync(now, demand * rng.uniform(0.95, 1.05))
        lag = rng.uniform(0.05, lag_max)
        if out is not None:
            c, d, u, active = out
            status = (c, d, u, active)
            if status != sim.last_status:
                sim.last_status = status
                rec.hpa(now + lag, c, d, util=u, active=active)
        ready = sum(1 for p in sim.pods if p <= now + lag)
        if (sim.c, ready) != dep_last:
            dep_last = (sim.c, ready)
            rec.deploy(now + lag + 0.01, sim.c, ready=ready)
        now += 15 + rng.uniform(*jitter)
        # pods turning ready between syncs show up on the Deployment record too
        ready_later = sum(1 for p in sim.pods if p <= now - 1)
        if (sim.c, ready_later) != dep_last:
            dep_last = (sim.c, ready_later)
            rec.deploy(now - 1, sim.c, ready=ready_later)
    return rec.end(duration_s)


def steps(tl: Timeline) -> list[tuple[object, object]]:
    """The (current, desired) of every HPA write: what the controller did."""
    return [
        (o.data.fields.get("current_replicas"), o.data.fields.get("desired_replicas"))
        for o in tl.select(ObjectTransition)
        if o.data.api_kind == "HorizontalPodAutoscaler"
    ]


def replicas(tl: Timeline) -> list[object]:
    """The Deployment's replica count, write by write."""
    return [
        o.data.fields.get("replicas")
        for o in tl.select(ObjectTransition)
        if o.data.api_kind == "Deployment"
    ]


def describe(seed: int) -> str:
    tl = simulate(seed)
    spec = next(o.data.fields["spec"] for o in tl.select(ObjectTransition))
    return json.dumps(json.loads(str(spec)).get("behavior"))


def simulate_keda(seed: int, duration_s: float = 1800.0, fault: str = "") -> Timeline:
    """KEDA's loop (activation, cooldown, idle) around the same HPA simulation: the
    ScaledObject's Active condition is written after KEDA's own scaling in each poll.
    ``fault``: "no_cooldown" scales in at once, "wake_idle" wakes without activity."""
    rng = random.Random(seed)
    poll, cooldown = rng.choice([5, 15, 30]), rng.choice([30, 60, 120, 300])
    lo, idle = rng.choice([(0, None), (2, 0), (1, 0)])
    act = max(lo, 1)
    so = cc.so_spec(lo=lo, hi=rng.randint(5, 12), cooldown=cooldown, idle=idle)
    so["pollingInterval"] = poll
    hpa = cc.hpa_spec(lo=act, hi=so["maxReplicaCount"], behavior=rng.choice([None, {}]))
    sim = Sim(hpa, rng, startup_s=rng.choice([0.0, 10.0]), c=0, fault="")
    sim.last_desired = 0
    rec = cc.Record(hpa, hpa=f"keda-hpa-{cc.SO}")
    rec.deploy(0.0, 0).so(0.0, False, so).hpa(0.0, 0, 0, util=0, active=False)
    demand, next_change, active_cond, last_active = 0.0, 0.0, False, -math.inf
    next_poll, next_sync, now = rng.uniform(0, poll), rng.uniform(0, 15), 0.0
    while now < duration_s:
        now = min(next_poll, next_sync)
        if now >= next_change:
            demand = rng.choice([0.0, 0.0, 0.5, 2.0, 6.0]) * rng.uniform(0.8, 1.2)
            next_change = now + rng.uniform(60, 600)
        lag = rng.uniform(0.05, 1.5)
        if now == next_poll:
            active = demand > 0
            if fault == "wake_idle" and not active and sim.c == 0 and rng.random() < 0.1:
                sim.c = act
                sim.pods = [now + sim.startup_s] * act
                rec.deploy(now + lag, act, ready=0 if sim.startup_s else act)
            elif active:
                last_active = now
                if sim.c == 0 or (idle is not None and sim.c == idle):
                    sim.c = act
                    sim.pods = [now + sim.startup_s] * act
                    rec.deploy(now + lag, act, ready=0 if sim.startup_s else act)
            elif (
                sim.c > (idle if idle is not None else 0)
                and (lo == 0 or idle is not None)
                and (last_active + cooldown < now or fault == "no_cooldown")
            ):
                sim.c, sim.pods = idle or 0, []
                rec.deploy(now + lag, sim.c)
            if active != active_cond:
                active_cond = active
                rec.so(now + lag + 0.05, active, so)
            next_poll = now + poll + rng.uniform(0, 1.0)
            continue
        next_sync = now + 15 + rng.uniform(-0.3, 0.8)
        if sim.c == 0:
            status: tuple[Any, ...] = (0, 0, 0, False)
            if status != sim.last_status:
                sim.last_status = status
                rec.hpa(now + lag, 0, 0, util=0, active=False)
            continue
        out = sim.sync(now, demand * rng.uniform(0.95, 1.05) + 0.01)
        if out is not None:
            c, d, u, ok = out
            if (c, d, u, ok) != sim.last_status:
                sim.last_status = (c, d, u, ok)
                rec.hpa(now + lag, c, d, util=u, active=ok)
                if ok and d != c:
                    rec.deploy(now + lag + 0.01, d, ready=sum(1 for p in sim.pods if p <= now))
    return rec.end(duration_s)
