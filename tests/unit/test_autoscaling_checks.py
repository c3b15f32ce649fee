"""Autoscaling and disruption checks on recorded timelines: each claim PASSes on a run
that keeps it and FAILs on one built to break it (the sandbox tests break the real
controllers; these pin the arithmetic and the reasons)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubedrill.checks import expect
from kubedrill.core.types import Verdict
from kubedrill.timeline import Eviction, ObjectTransition, PhaseMark, Timeline, WatchStatus

T0 = 1000.0
HPA_SPEC = {
    "minReplicas": 1,
    "maxReplicas": 5,
    "scaleTargetRef": {"kind": "Deployment", "name": "web"},
    "metrics": [
        {"type": "Resource", "resource": {"name": "cpu",
         "target": {"type": "Utilization", "averageUtilization": 50}}}
    ],
}  # fmt: skip


class Run:
    """A timeline with a phase from T0 to T0 + length and a continuous watch."""

    def __init__(self, length: float = 120.0, kinds: tuple[str, ...] = ()) -> None:
        self.tl = Timeline()
        self.length = length
        for k in kinds or ("Deployment", "HorizontalPodAutoscaler", "Pod", "Node",
                           "PodDisruptionBudget", "Event", "ReplicaSet"):  # fmt: skip
            self.tl.record(WatchStatus(k, "synced"), t=T0 - 5)
        self.tl.record(PhaseMark("load", "start"), t=T0)
        self.tl.record(PhaseMark("load", "end"), t=T0 + length)

    def dep(self, t: float, replicas: int, ready: int | None = None) -> None:
        fields = {"replicas": replicas, "ready_replicas": replicas if ready is None else ready}
        self.tl.record(ObjectTransition("Deployment", "ns", "web", "MODIFIED", fields), t=T0 + t)

    def hpa(self, t: float, desired: int, util: int = 50, **extra: Any) -> None:
        metrics = [{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": util}}}]  # fmt: skip
        fields = {
            "min_replicas": 1, "max_replicas": 5, "desired_replicas": desired,
            "current_replicas": desired, "target": "Deployment/web",
            "spec": json.dumps(HPA_SPEC), "metrics": json.dumps(metrics), **extra,
        }  # fmt: skip
        self.tl.record(
            ObjectTransition("HorizontalPodAutoscaler", "ns", "web", "MODIFIED", fields),
            t=T0 + t,
        )

    def pod(self, t: float, name: str, event: str = "MODIFIED", **fields: Any) -> None:
        base = {"labels": "app=web", "phase": "Running", "ready": True, "deleting": False,
                "owner": "ReplicaSet/web-1", "node": "gpu-0"}  # fmt: skip
        self.tl.record(
            ObjectTransition("Pod", "ns", name, event, {**base, **fields}),  # type: ignore[arg-type]
            t=T0 + t,
        )

    def pdb(self, t: float, desired_healthy: int) -> None:
        fields = {"selector": "app=web", "desired_healthy": desired_healthy, "min_available": "2"}
        self.tl.record(
            ObjectTransition("PodDisruptionBudget", "ns", "web", "MODIFIED", fields), t=T0 + t
        )

    def judge(self, expression: str, **params: Any) -> tuple[Verdict, str, float | None]:
        r = expect(expression, phase="load", **params).evaluate(self.tl)
        return r.verdict, r.reason, r.value


def scale_up_run(ready_at: float = 40.0) -> Run:
    r = Run()
    r.dep(-10, 1)
    r.hpa(-10, 1)
    r.hpa(15, 3, util=150)
    r.dep(16, 3, ready=1)
    r.dep(ready_at, 3, ready=3)
    return r


def test_scale_timing_from_phase_and_from_the_metric_crossing() -> None:
    r = scale_up_run()
    v, reason, took = r.judge("first_scale_up_within: 30s", object_name="web")
    assert v is Verdict.PASS and took == pytest.approx(16.0), reason
    v, reason, took = r.judge("desired_within: 20s", object_name="web")
    assert v is Verdict.PASS and "reached 3 replicas" in reason
    v, reason, took = r.judge("ready_within: 20s", object_name="web", trigger="metric")
    # the metric crossed at 15 s, all Ready at 40 s: 25 s is over the 20 s allowed
    assert v is Verdict.FAIL and took == pytest.approx(25.0), reason
    assert "cpu at 150 over its target 50" in reason
    v, reason, _ = scale_up_run(ready_at=200).judge("ready_within: 60s", object_name="web")
    assert v is Verdict.FAIL and "never" in reason


def test_scale_down_start_and_done() -> None:
    r = Run()
    r.dep(-10, 4)
    r.hpa(-10, 4)
    r.hpa(50, 1, util=10)
    r.dep(51, 1)
    v, _, took = r.judge("scale_down_start_within: 60s", object_name="web")
    assert v is Verdict.PASS and took == pytest.approx(51.0)
    v, reason, _ = r.judge("scale_down_done_within: 30s", object_name="web")
    assert v is Verdict.FAIL and "fell to 1 replicas" in reason


def test_bounds_overshoot_reversals_settle() -> None:
    r = Run()
    r.dep(-10, 2)
    r.hpa(-10, 2)
    r.dep(10, 6)  # above max 5 for 40 s
    r.dep(50, 3)
    r.dep(60, 4)
    v, reason, n = r.judge("hpa_bounds_violations == 0", object_name="web")
    assert v is Verdict.FAIL and n == 1 and "outside [1, 5]" in reason, reason
    v, reason, n = r.judge("overshoot <= 1", object_name="web")
    assert v is Verdict.FAIL and n == 2, reason  # peak 6, settled at 4
    v, reason, n = r.judge("reversals <= 0", object_name="web")
    assert v is Verdict.FAIL and n == 2 and "2 → 6 → 3 → 4" in reason, reason
    v, reason, took = r.judge("settle_within: 90s", object_name="web")
    assert v is Verdict.PASS and took == pytest.approx(60.0), reason
    v, reason, _ = r.judge("settle_within: 30s", object_name="web")
    assert v is Verdict.FAIL, reason

    calm = scale_up_run()
    assert calm.judge("hpa_bounds_violations == 0", object_name="web")[0] is Verdict.PASS
    assert calm.judge("reversals <= 0", object_name="web")[0] is Verdict.PASS
    assert calm.judge("overshoot <= 0", object_name="web")[0] is Verdict.PASS


def test_pending_pods_with_the_schedulers_reason() -> None:
    r = Run()
    r.pod(0, "web-1-a")
    why = "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    r.pod(5, "web-1-b", "ADDED", phase="Pending", ready=False, unschedulable=why)
    r.pod(50, "web-1-b", phase="Running")
    v, reason, longest = r.judge("pending_within: 30s", object_name="web")
    assert v is Verdict.FAIL and longest == pytest.approx(45.0)
    assert "Insufficient nvidia.com/gpu" in reason
    assert r.judge("pending_within: 60s", object_name="web")[0] is Verdict.PASS


def test_autoscaler_health_quotes_the_controller() -> None:
    r = scale_up_run()
    assert r.judge("autoscaler_failures == 0", object_name="web")[0] is Verdict.PASS
    r.hpa(60, 3, scaling_active=False, scaling_active_reason="FailedGetResourceMetric",
          scaling_active_message="unable to get metrics for resource cpu")  # fmt: skip
    v, reason, _ = r.judge("autoscaler_failures == 0", object_name="web")
    assert v is Verdict.FAIL and "unable to get metrics for resource cpu" in reason
    # a broken second metric only shows as the controller's warning event: still a FAIL
    r = scale_up_run()
    event = {"reason": "FailedGetExternalMetric", "type": "Warning",
             "object": "HorizontalPodAutoscaler/web", "message": "no queue metric"}  # fmt: skip
    r.tl.record(ObjectTransition("Event", "ns", "web.1", "ADDED", event), t=T0 + 30)
    v, reason, _ = r.judge("autoscaler_failures == 0", object_name="web")
    assert v is Verdict.PASS and "transient" in reason  # once, at start-up: no metrics yet
    r.tl.record(ObjectTransition("Event", "ns", "web.1", "MODIFIED", {**event, "count": 9}),
                t=T0 + 100)  # fmt: skip
    v, reason, _ = r.judge("autoscaler_failures == 0", object_name="web")
    assert v is Verdict.FAIL and "no queue metric" in reason and "for 70 s" in reason


def pdb_run() -> Run:
    r = Run()
    r.pdb(-10, desired_healthy=2)
    for name in ("web-1-a", "web-1-b", "web-1-c"):
        r.pod(-10, name, "ADDED")
    return r


def test_pdb_floor_held_and_broken_at_event_resolution() -> None:
    r = pdb_run()
    r.pod(10, "web-1-a", deleting=True, disruption="EvictionByEvictionAPI")
    r.pod(12, "web-1-a", "DELETED")
    r.pod(20, "web-1-d", "ADDED", ready=False)
    r.pod(30, "web-1-d", ready=True)
    v, reason, below = r.judge("pdb_below_s == 0", pdb="web")
    assert v is Verdict.PASS and below == 0, reason
    assert r.judge("pdb_bypasses == 0", pdb="web")[0] is Verdict.PASS
    r.pod(15, "web-1-b", "DELETED")  # forced: gone without a grace period or an eviction
    v, reason, below = r.judge("pdb_below_s == 0", pdb="web")
    assert v is Verdict.FAIL and below == pytest.approx(15.0) and "lowest 1 healthy" in reason
    v, reason, n = r.judge("pdb_bypasses == 0", pdb="web")
    assert v is Verdict.FAIL and n == 1 and "web-1-b deleted" in reason and "forced" in reason


def test_scale_down_deletes_are_not_pdb_bypasses() -> None:
    r = pdb_run()
    rs = {"replicas": 3, "owner": "Deployment/web"}
    r.tl.record(ObjectTransition("ReplicaSet", "ns", "web-1", "ADDED", rs), t=T0 - 10)
    r.tl.record(
        ObjectTransition("ReplicaSet", "ns", "web-1", "MODIFIED", {**rs, "replicas": 2}), t=T0 + 9
    )
    r.pod(10, "web-1-c", deleting=True)
    r.pod(11, "web-1-c", "DELETED")
    v, reason, _ = r.judge("pdb_bypasses == 0", pdb="web")
    assert v is Verdict.PASS and "1 by scale-down" in reason, reason


def test_evictions_refused_are_counted_with_the_budgets_words() -> None:
    r = pdb_run()
    words = "The disruption budget web needs 2 healthy pods and has 2 currently"
    r.tl.record(Eviction("ns", "web-1-a", "evicted"), t=T0 + 5)
    r.tl.record(Eviction("ns", "web-1-b", "refused", words), t=T0 + 6)
    r.tl.record(Eviction("ns", "web-1-b", "refused", words), t=T0 + 8)
    v, reason, n = r.judge("evictions_refused >= 1", pdb="web")
    assert v is Verdict.PASS and n == 2 and "needs 2 healthy pods" in reason
    assert r.judge("evictions_refused == 0", pdb="web")[0] is Verdict.FAIL


def test_drain_duration_and_ready_recovery() -> None:
    r = pdb_run()
    r.dep(-10, 3)
    node = {"unschedulable": True, "ready": True}
    r.tl.record(ObjectTransition("Node", "", "gpu-0", "MODIFIED", node), t=T0 + 5)
    r.dep(6, 3, ready=2)
    for i, name in enumerate(("web-1-a", "web-1-b", "web-1-c")):
        r.pod(10 + i * 10, name, "DELETED")
        r.pod(11 + i * 10, name.replace("web-1", "web-2"), "ADDED", node="cpu-0")
    r.dep(45, 3, ready=3)
    v, reason, took = r.judge("drain_within: 60s", node="gpu-0")
    assert v is Verdict.PASS and took == pytest.approx(25.0), reason
    assert r.judge("drain_within: 10s", node="gpu-0")[0] is Verdict.FAIL
    v, reason, took = r.judge("replicas_recover_within: 60s", object_name="web")
    assert v is Verdict.PASS and took == pytest.approx(39.0), reason
    stuck = pdb_run()
    stuck.dep(-10, 3)
    stuck.dep(6, 3, ready=2)
    v, reason, _ = stuck.judge("replicas_recover_within: 60s", object_name="web")
    assert v is Verdict.FAIL and "not all back" in reason
    calm = pdb_run()
    calm.dep(-10, 3)
    v, reason, _ = calm.judge("replicas_recover_within: 60s", object_name="web")
    assert v is Verdict.INCONCLUSIVE and "no disruption to recover from" in reason


def test_a_watch_gap_keeps_a_pass_from_being_a_pass() -> None:
    r = scale_up_run()
    r.tl.record(WatchStatus("Deployment", "lost", "connection reset"), t=T0 + 10)
    r.tl.record(WatchStatus("Deployment", "synced", "watch resumed"), t=T0 + 70)
    v, reason, _ = r.judge("reversals <= 0", object_name="web")
    assert v is Verdict.INCONCLUSIVE and "watch of Deployment down" in reason
