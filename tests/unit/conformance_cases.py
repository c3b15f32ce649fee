"""Synthetic timelines for the HPA/KEDA conformance checks, recorded as the cluster watcher
records them (``ObjectTransition`` fields: ``spec`` and ``metrics`` as compact JSON).

Each violation case breaks exactly one rule; each control is what a real controller does
at an edge of the envelope and must PASS. ``conformance_synthetic()`` is the benchmark hook.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kubedrill.checks import expect
from kubedrill.checks.conformance.checks import _Conformant
from kubedrill.core.types import Verdict
from kubedrill.timeline import ObjectTransition, PhaseMark, Scalar, Timeline, WatchStatus

__all__ = ["CASES", "Case", "conformance_synthetic", "run_case"]

NS, HPA, DEPLOY, SO = "drill", "web", "web", "web-so"
CPU50 = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
}


def hpa_spec(
    lo: int = 1,
    hi: int = 10,
    behavior: dict[str, Any] | None = None,
    metrics: list[Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOY},
        "minReplicas": lo,
        "maxReplicas": hi,
        "metrics": metrics or [CPU50],
    }
    if behavior is not None:
        spec["behavior"] = behavior
    return spec


def pods(value: int, period: int) -> dict[str, Any]:
    return {"type": "Pods", "value": value, "periodSeconds": period}


def percent(value: int, period: int) -> dict[str, Any]:
    return {"type": "Percent", "value": value, "periodSeconds": period}


class Record:
    """A timeline with every watch synced at 0 and a ``drill`` phase over it."""

    def __init__(self, spec: dict[str, Any], hpa: str = HPA) -> None:
        self.tl = Timeline()
        self.spec, self.hpa_name = spec, hpa
        for kind in ("HorizontalPodAutoscaler", "Deployment", "ScaledObject"):
            self.tl.record(WatchStatus(kind, "synced"), t=0.0)
        self.tl.record(PhaseMark("drill", "start"), t=0.0)
        self.first = True
        self._last: dict[str, float] = {}

    def _at(self, kind: str, t: float) -> float:
        """A watch delivers one object's changes in the order they were written."""
        t = max(t, self._last.get(kind, -1.0) + 0.001)
        self._last[kind] = t
        return t

    def hpa(
        self,
        t: float,
        current: int,
        desired: int | None = None,
        util: int | None = None,
        metrics: list[Any] | None = None,
        active: bool = True,
        spec: dict[str, Any] | None = None,
    ) -> Record:
        if spec is not None:
            self.spec = spec
        if metrics is None and util is not None:
            metrics = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": util, "averageValue": f"{util * 5}m"},
                    },
                }
            ]
        fields = {
            "min_replicas": self.spec.get("minReplicas"),
            "max_replicas": self.spec.get("maxReplicas"),
            "current_replicas": current,
            "desired_replicas": current if desired is None else desired,
            "spec": json.dumps(self.spec, separators=(",", ":")),
            "metrics": None if metrics is None else json.dumps(metrics, separators=(",", ":")),
            "last_scale_time": None,
            "able_to_scale": True,
            "scaling_active": active,
            "scaling_limited": False,
            "server_time": "2026-01-01T00:00:00Z",  # extra keys are tolerated
        }
        event: Literal["ADDED", "MODIFIED"] = "ADDED" if self.first else "MODIFIED"
        self.first = False
        self.tl.record(
            ObjectTransition("HorizontalPodAutoscaler", NS, self.hpa_name, event, fields),
            t=self._at("hpa", t),
        )
        return self

    def deploy(self, t: float, replicas: int, ready: int | None = None) -> Record:
        r = replicas if ready is None else ready
        fields = {
            "replicas": replicas,
            "ready_replicas": r,
            "available_replicas": r,
            "updated_replicas": r,
        }
        self.tl.record(
            ObjectTransition("Deployment", NS, DEPLOY, "MODIFIED", fields), t=self._at("dep", t)
        )
        return self

    def so(self, t: float, active: bool, spec: dict[str, Any], fallback: bool = False) -> Record:
        fields: dict[str, Scalar] = {
            "spec": json.dumps(spec, separators=(",", ":")),
            "ready": True,
            "active": active,
            "fallback": fallback,
        }
        self.tl.record(
            ObjectTransition("ScaledObject", NS, SO, "MODIFIED", fields), t=self._at("so", t)
        )
        return self

    def end(self, t: float) -> Timeline:
        self.tl.record(PhaseMark("drill", "end"), t=t)
        return self.tl


@dataclass(frozen=True)
class Case:
    name: str
    rule: str | None  # the one rule it breaks; None: a control that must PASS
    build: Callable[[], Timeline]
    keda: bool = False

    def check(self) -> _Conformant:
        if self.keda:
            return expect.keda_conformant(SO, NS, phase="drill")
        return expect.hpa_conformant(HPA, NS, phase="drill")


def run_case(case: Case) -> tuple[Verdict, set[str], str]:
    tl = case.build()
    check = case.check()
    result = check.evaluate(tl)
    return result.verdict, {v.rule for v in check.violations(tl)}, result.reason


# ------------------------------------------------------------------ HPA timelines
def _steady(r: Record, until: float, c: int, util: int, step: float = 20.0) -> Record:
    """The HPA at c with util, written every ``step`` s from 0, and the target steady."""
    r.deploy(0.0, c)
    t = 0.0
    while t < until:
        r.hpa(t, c, util=util + int(t // step) % 2)  # utilization wobbles: a write each time
        t += step
    return r


def rate_up_period() -> Timeline:  # Pods 2 / 60 s: 2→4 at 100, then 4→6 30 s later
    r = _steady(Record(hpa_spec(behavior={"scaleUp": {"policies": [pods(2, 60)]}})), 85, 2, 50)
    r.hpa(85, 2, util=150).hpa(100, 2, 4, util=150).deploy(101, 4).hpa(115, 4, util=150)
    return r.hpa(130, 4, 6, util=150).deploy(131, 6).hpa(145, 6, util=60).end(150)


def rate_up_period_ok() -> Timeline:  # the same second step once the first left the period
    r = _steady(Record(hpa_spec(behavior={"scaleUp": {"policies": [pods(2, 60)]}})), 85, 2, 50)
    r.hpa(85, 2, util=150).hpa(100, 2, 4, util=150).deploy(101, 4).hpa(115, 4, util=150)
    return r.hpa(165, 4, 6, util=150).deploy(166, 6).hpa(180, 6, util=60).end(185)


def rate_up_legacy() -> Timeline:  # no behavior: at most max(2c, 4) per sync
    r = _steady(Record(hpa_spec()), 45, 2, 50).hpa(45, 2, util=200)
    return r.hpa(60, 2, 6, util=200).deploy(61, 6).hpa(75, 6, util=60).end(80)


def legacy_ok() -> Timeline:  # legacy: 2→4→8 by doubling, then 8→3 after 5 minutes of quiet
    r = _steady(Record(hpa_spec()), 45, 2, 50).hpa(45, 2, util=200)
    r.hpa(60, 2, 4, util=200).deploy(61, 4).hpa(75, 4, 8, util=200).deploy(76, 8)
    r.hpa(90, 8, util=52).hpa(110, 8, util=20).hpa(130, 8, util=21)
    return r.hpa(410, 8, 3, util=20).deploy(411, 3).hpa(425, 3, util=50).end(430)


def select_min_violation() -> Timeline:  # Min of 4 pods and 100 % from 2: at most 4
    b = {"scaleUp": {"selectPolicy": "Min", "policies": [pods(4, 60), percent(100, 60)]}}
    r = _steady(Record(hpa_spec(behavior=b)), 65, 2, 50).hpa(65, 2, util=200)
    return r.hpa(80, 2, 5, util=200).deploy(81, 5).hpa(95, 5, util=60).end(100)


def select_min_ok() -> Timeline:
    b = {"scaleUp": {"selectPolicy": "Min", "policies": [pods(4, 60), percent(100, 60)]}}
    r = _steady(Record(hpa_spec(behavior=b)), 65, 2, 50).hpa(65, 2, util=200)
    return r.hpa(80, 2, 4, util=200).deploy(81, 4).hpa(95, 4, util=60).end(100)


def percent_up_ok() -> Timeline:  # Percent 50 / 30 s from 4: ceil(4 x 1.5) = 6
    b = {"scaleUp": {"policies": [percent(50, 30)]}}
    r = _steady(Record(hpa_spec(behavior=b)), 45, 4, 50).hpa(45, 4, util=150)
    return r.hpa(60, 4, 6, util=150).deploy(61, 6).hpa(75, 6, util=52).end(80)


def rate_down_pods() -> Timeline:  # Pods 1 / 60 s down, no window: 6→3 is too fast
    b = {"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [pods(1, 60)]}}
    r = _steady(Record(hpa_spec(behavior=b)), 85, 6, 50).hpa(85, 6, util=10)
    return r.hpa(100, 6, 3, util=10).deploy(101, 3).hpa(115, 3, util=40).end(120)


def percent_down_ok() -> Timeline:  # Percent 50 / 60 s down: int(6 x 0.5) = 3
    b = {"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [percent(50, 60)]}}
    r = _steady(Record(hpa_spec(behavior=b)), 85, 6, 50).hpa(85, 6, util=10)
    return r.hpa(100, 6, 3, util=10).deploy(101, 3).hpa(115, 3, util=40).end(120)


def _busy_then_idle(r: Record, c: int) -> Record:
    r.deploy(0, c).hpa(0, c, util=50).hpa(20, c, util=52).hpa(40, c, util=49)
    return r.hpa(60, c, util=10).hpa(75, c, util=11)


def stabilization_down() -> Timeline:  # default 300 s window: busy at 40 s, down at 90 s
    r = _busy_then_idle(Record(hpa_spec(behavior={})), 10)
    return r.hpa(90, 10, 2, util=10).deploy(91, 2).hpa(105, 2, util=48).end(110)


def long_stabilization_ok() -> Timeline:  # the same scale-down once the window has passed
    r = _busy_then_idle(Record(hpa_spec(behavior={})), 10)
    return r.hpa(345, 10, 2, util=10).deploy(346, 2).hpa(360, 2, util=48).end(365)


def stabilization_up() -> Timeline:  # scaleUp window 120 s: at target at 20 s, up at 60 s
    b = {"scaleUp": {"stabilizationWindowSeconds": 120}}
    r = Record(hpa_spec(behavior=b)).deploy(0, 2).hpa(0, 2, util=50).hpa(20, 2, util=51)
    r.hpa(40, 2, util=150)
    return r.hpa(60, 2, 4, util=150).deploy(61, 4).hpa(75, 4, util=70).end(80)


def stabilization_up_ok() -> Timeline:
    b = {"scaleUp": {"stabilizationWindowSeconds": 120}}
    r = Record(hpa_spec(behavior=b)).deploy(0, 2).hpa(0, 2, util=50).hpa(20, 2, util=51)
    r.hpa(40, 2, util=150).hpa(100, 2, util=151)
    return r.hpa(150, 2, 4, util=150).deploy(151, 4).hpa(165, 4, util=70).end(170)


def tolerance_step() -> Timeline:  # 54 % of a 50 % target is 1.08: inside the 0.1 band
    b = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    r = _steady(Record(hpa_spec(behavior=b)), 60, 4, 54)
    return r.hpa(60, 4, 5, util=54).deploy(61, 5).hpa(75, 5, util=45).end(80)


def tolerance_edge_ok() -> Timeline:  # 56 % is 1.12, outside the band: ceil(1.12 x 4) = 5
    b = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    r = _steady(Record(hpa_spec(behavior=b)), 45, 4, 50).hpa(45, 4, util=56)
    return r.hpa(60, 4, 5, util=56).deploy(61, 5).hpa(75, 5, util=45).end(80)


def own_tolerance_ok() -> Timeline:  # scaleUp tolerance 0.05: 1.08 is outside that band
    b = {"scaleUp": {"tolerance": "50m"}, "scaleDown": {"stabilizationWindowSeconds": 0}}
    r = _steady(Record(hpa_spec(behavior=b)), 60, 4, 54)
    return r.hpa(60, 4, 5, util=54).deploy(61, 5).hpa(75, 5, util=45).end(80)


def direction_step() -> Timeline:  # down while CPU is at twice its target
    b = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    r = _steady(Record(hpa_spec(behavior=b)), 45, 4, 50).hpa(45, 4, util=100)
    return r.hpa(60, 4, 3, util=100).deploy(61, 3).hpa(75, 3, util=100, desired=6).end(80)


def disabled_down() -> Timeline:  # scaleDown selectPolicy Disabled
    b = {"scaleDown": {"selectPolicy": "Disabled"}}
    r = _steady(Record(hpa_spec(behavior=b)), 60, 6, 10)
    return r.hpa(60, 6, 3, util=10).deploy(61, 3).hpa(75, 3, util=20).end(80)


def above_max() -> Timeline:  # maxReplicas 5, the HPA writes 6
    r = _steady(Record(hpa_spec(hi=5)), 45, 4, 50).hpa(45, 4, util=150)
    return r.hpa(60, 4, 6, util=150).deploy(61, 6).hpa(75, 6, 5, util=100).end(80)


def max_lowered_ok() -> Timeline:  # maxReplicas edited 8 → 5 at 8: clamped at the next sync
    r = _steady(Record(hpa_spec(hi=8)), 60, 8, 50)
    r.hpa(60, 8, util=50, spec=hpa_spec(hi=5)).hpa(70, 8, 5, util=50).deploy(71, 5)
    return r.hpa(85, 5, util=80).end(90)


def stuck_below() -> Timeline:  # 3x the target, 2 ready pods, nothing for 3 minutes
    return _steady(Record(hpa_spec()), 40, 2, 150).end(220)


def stuck_above() -> Timeline:  # a fifth of the target at 6 pods for 8 minutes
    return _steady(Record(hpa_spec(behavior={})), 100, 6, 10).end(500)


def idle_ok() -> Timeline:  # low load, within the 300 s window: holding is right
    return _steady(Record(hpa_spec(behavior={})), 100, 6, 10).end(300)


def rollout_hold_ok() -> Timeline:  # high load but pods not ready (a rollout): no stuck verdict
    r = Record(hpa_spec()).deploy(0, 3, ready=2).hpa(0, 2, util=150).hpa(20, 2, util=151)
    return r.hpa(40, 2, util=150).end(220)


# ------------------------------------------------------------------ KEDA timelines
def so_spec(
    lo: int = 0, hi: int = 10, cooldown: int = 300, idle: int | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": DEPLOY},
        "minReplicaCount": lo,
        "maxReplicaCount": hi,
        "cooldownPeriod": cooldown,
        "pollingInterval": 30,
        "triggers": [{"type": "prometheus", "metadata": {"threshold": "10"}}],
    }
    if idle is not None:
        spec["idleReplicaCount"] = idle
    return spec


QUEUE = {
    "type": "External",
    "external": {
        "metric": {"name": "s0-prometheus"},
        "target": {"type": "AverageValue", "averageValue": "10"},
    },
}


def queue(avg: str) -> list[Any]:
    return [
        {
            "type": "External",
            "external": {"metric": {"name": "s0-prometheus"}, "current": {"averageValue": avg}},
        }
    ]


def _keda(
    so: dict[str, Any], scale_in_at: float, to: int = 0, inactive_at: float = 100
) -> Timeline:
    act = max(so["minReplicaCount"], 1)
    r = Record(hpa_spec(lo=act, metrics=[QUEUE]), hpa=f"keda-hpa-{SO}")
    r.deploy(0, 0).so(0, False, so).hpa(0, 0, 0, metrics=queue("0"), active=False)
    r.so(3, True, so).deploy(5, act).hpa(15, act, 3, metrics=queue("28")).deploy(16, 3)
    r.hpa(30, 3, metrics=queue("9500m")).hpa(50, 3, metrics=queue("10")).hpa(
        70, 3, metrics=queue("10100m")
    )
    r.so(inactive_at, False, so).hpa(inactive_at + 5, 3, metrics=queue("0"))
    r.deploy(scale_in_at, to).hpa(scale_in_at + 10, 0, 0, metrics=queue("0"), active=False)
    return r.end(scale_in_at + 30)


def keda_round_trip_ok() -> Timeline:  # 0 → 1 (KEDA) → 3 (HPA) → 0 after the cooldown
    return _keda(so_spec(), 420)


def keda_cooldown() -> Timeline:  # back to 0 50 s after going inactive, cooldown 300 s
    return _keda(so_spec(), 150)


def keda_idle() -> Timeline:  # minReplicaCount 2 and no idle count: KEDA never sets 0
    return _keda(so_spec(lo=2), 420)


def keda_idle_ok() -> Timeline:  # idleReplicaCount 0 with minReplicaCount 2
    return _keda(so_spec(lo=2, idle=0), 420)


def keda_activation() -> Timeline:  # from 0 while the ScaledObject is not active
    so = so_spec()
    r = Record(hpa_spec(lo=1, metrics=[QUEUE]), hpa=f"keda-hpa-{SO}")
    r.deploy(0, 0).so(0, False, so).hpa(0, 0, 0, metrics=queue("0"), active=False)
    r.deploy(120, 1).hpa(130, 1, metrics=queue("0"))
    return r.end(150)


CASES: tuple[Case, ...] = (
    Case("rate_up over a 60 s Pods period", "rate_up", rate_up_period),
    Case("rate_up on the legacy path", "rate_up", rate_up_legacy),
    Case("rate_up with selectPolicy Min", "rate_up", select_min_violation),
    Case("rate_down with a Pods policy", "rate_down", rate_down_pods),
    Case("scale-down inside the stabilization window", "stabilization_down", stabilization_down),
    Case("scale-up inside the scale-up window", "stabilization_up", stabilization_up),
    Case("step inside the tolerance band", "tolerance", tolerance_step),
    Case("scale-down with CPU above target", "direction", direction_step),
    Case("scale-down while scaleDown is Disabled", "disabled", disabled_down),
    Case("above maxReplicas", "bounds", above_max),
    Case("stuck below what CPU demands", "stuck_below", stuck_below),
    Case("stuck above what CPU demands", "stuck_above", stuck_above),
    Case("KEDA to 0 inside the cooldown", "keda_cooldown", keda_cooldown, keda=True),
    Case("KEDA below minReplicaCount", "keda_idle", keda_idle, keda=True),
    Case("KEDA activation while inactive", "keda_activation", keda_activation, keda=True),
    Case("Pods policy, second step after its period", None, rate_up_period_ok),
    Case("legacy path: doubling, then down after 5 min", None, legacy_ok),
    Case("selectPolicy Min at its limit", None, select_min_ok),
    Case("Percent policy up", None, percent_up_ok),
    Case("Percent policy down (truncating)", None, percent_down_ok),
    Case("scale-down after a long stabilization", None, long_stabilization_ok),
    Case("scale-up after the scale-up window", None, stabilization_up_ok),
    Case("tolerance edge: 1.12 scales", None, tolerance_edge_ok),
    Case("per-HPA tolerance 0.05", None, own_tolerance_ok),
    Case("maxReplicas lowered, clamped at the next sync", None, max_lowered_ok),
    Case("idle inside the scale-down window", None, idle_ok),
    Case("high load during a rollout", None, rollout_hold_ok),
    Case("KEDA 0 → N → 0 after the cooldown", None, keda_round_trip_ok, keda=True),
    Case("KEDA idleReplicaCount 0", None, keda_idle_ok, keda=True),
)


def conformance_synthetic() -> dict[str, int]:
    """Benchmark hook: how many injected violations the checks detect (FAIL for exactly the
    injected rule), and how many conformant controls PASS."""
    injected = detected = passed = 0
    for case in CASES:
        verdict, rules, _ = run_case(case)
        if case.rule is None:
            passed += verdict is Verdict.PASS
        else:
            injected += 1
            detected += verdict is Verdict.FAIL and rules == {case.rule}
    return {
        "conformance_violations_injected": injected,
        "conformance_detected": detected,
        "controls_passed": passed,
    }
