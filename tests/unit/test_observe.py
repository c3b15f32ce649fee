from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubedrill.adapters.kube import ApiFailed, WatchGone
from kubedrill.checks import expect
from kubedrill.core.errors import PreconditionUnmet
from kubedrill.core.types import Verdict
from kubedrill.observe import ClusterWatcher, extract_fields
from kubedrill.timeline import Note, ObjectTransition, PhaseMark, Timeline, WatchStatus


def deployment(name: str, replicas: int, ready: int, rv: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "drill", "resourceVersion": rv},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": ready},
    }


class FakeAdapter:
    """Our own adapter faked: scripted list results and watch streams."""

    def __init__(
        self,
        items: list[dict[str, Any]],
        events: list[tuple[str, dict[str, Any]]],
        gone_once: bool = False,
    ) -> None:
        self.items, self.events, self.gone_once = items, events, gone_once
        self.lists = 0
        self.lock = threading.Lock()

    def list(self, kind: str, namespace: str | None, **_: Any) -> tuple[list[dict[str, Any]], str]:
        with self.lock:
            self.lists += 1
        return (self.items if kind == "Deployment" else []), "1"

    def watch(
        self, kind: str, namespace: str | None, resource_version: str, timeout_s: int, **_: Any
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if kind != "Deployment":
            time.sleep(0.05)
            return
        if self.gone_once:
            self.gone_once = False
            raise WatchGone(kind)
        events, self.events = self.events, []
        for e in events:
            time.sleep(0.01)
            yield e
        time.sleep(0.05)


def test_extract_fields_by_kind() -> None:
    dep = deployment("svc", 3, 2, "5")
    dep["metadata"]["managedFields"] = [
        {"manager": "kube-controller-manager", "time": "2026-12-02T10:00:05Z"},
        {"manager": "kubectl", "time": "2026-12-02T09:59:00Z"},
    ]
    assert extract_fields("Deployment", dep) == {
        "replicas": 3,
        "ready_replicas": 2,
        "available_replicas": 2,
        "updated_replicas": 2,
        "status_replicas": 0,
        "server_time": "2026-12-02T10:00:05Z",  # the newest write the server made
    }
    pod = {
        "metadata": {"deletionTimestamp": "x", "labels": {"app": "svc"}},
        "spec": {"nodeName": "gpu-0"},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"},
            ],
            "containerStatuses": [
                {"restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"reason": "OOMKilled"}}},
            ],
        },
    }  # fmt: skip
    got = extract_fields("Pod", pod)
    assert got["phase"] == "Running" and got["ready"] is False and got["node"] == "gpu-0"
    assert got["deleting"] is True and got["restarts"] == 2 and got["reason"] == "OOMKilled"
    assert got["disruption"] == "EvictionByEvictionAPI" and got["labels"] == "app=svc"
    pending = {
        "spec": {},
        "status": {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        }]},
    }  # fmt: skip
    assert "Insufficient nvidia.com/gpu" in str(extract_fields("Pod", pending)["unschedulable"])
    pdb = {
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "svc"}}},
        "status": {
            "currentHealthy": 2,
            "desiredHealthy": 2,
            "disruptionsAllowed": 0,
            "expectedPods": 3,
        },
    }
    got = extract_fields("PodDisruptionBudget", pdb)
    assert got["disruptions_allowed"] == 0 and got["min_available"] == "2"
    assert got["selector"] == "app=svc"
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    node = {
        "spec": {"unschedulable": True, "taints": [taint]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip
    got = extract_fields("Node", node)
    assert (
        got["ready"] is True and got["unschedulable"] is True and got["taints"] == "k=v:NoSchedule"
    )
    hpa = {
        "spec": {"minReplicas": 1, "maxReplicas": 5,
                 "scaleTargetRef": {"kind": "Deployment", "name": "svc"}},
        "status": {
            "currentReplicas": 1, "desiredReplicas": 3,
            "currentMetrics": [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": 180}}}],
            "conditions": [{"type": "ScalingActive", "status": "False",
                            "reason": "FailedGetResourceMetric", "message": "no metrics"}],
        },
    }  # fmt: skip
    got = extract_fields("HorizontalPodAutoscaler", hpa)
    assert got["desired_replicas"] == 3 and got["target"] == "Deployment/svc"
    assert (
        got["scaling_active"] is False and got["scaling_active_reason"] == "FailedGetResourceMetric"
    )
    assert '"averageUtilization":180' in str(got["metrics"]) and '"maxReplicas":5' in str(
        got["spec"]
    )


def test_watcher_records_changes_once_and_feeds_scaling_checks() -> None:
    tl = Timeline()
    adapter = FakeAdapter(
        [deployment("svc", 1, 1, "1")],
        [
            ("MODIFIED", deployment("svc", 1, 1, "2")),  # no change in kept fields
            ("MODIFIED", deployment("svc", 4, 1, "3")),
            ("MODIFIED", deployment("svc", 4, 4, "4")),
        ],
    )
    with ClusterWatcher(adapter, tl, "drill", kinds=("Deployment", "Pod")) as w:
        assert w.synced.wait(5)
        tl.record(PhaseMark("inject", "start"))
        time.sleep(0.5)
    tl.record(PhaseMark("inject", "end"))
    seen = [o.data.fields["ready_replicas"] for o in tl.select(ObjectTransition)]
    assert seen == [1, 1, 4]  # the unchanged MODIFIED is not recorded again
    r = expect("scale_up_within: 5s", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert r.verdict is Verdict.PASS, r.reason
    r = expect("scale_up_within: 1ms", phase="inject", object_name="svc", target=4).evaluate(tl)
    assert r.verdict is Verdict.FAIL, r.reason


def test_watch_gone_relists() -> None:
    tl = Timeline()
    adapter = FakeAdapter([deployment("svc", 1, 1, "1")], [], gone_once=True)
    with ClusterWatcher(adapter, tl, "drill", kinds=("Deployment",)):
        time.sleep(0.5)
    assert adapter.lists >= 2
    assert not tl.select(Note)


def test_adapter_errors_become_notes_not_crashes() -> None:
    class Broken(FakeAdapter):
        def list(
            self, kind: str, namespace: str | None, **_: Any
        ) -> tuple[list[dict[str, Any]], str]:
            raise RuntimeError("connection refused")

    tl = Timeline()
    with ClusterWatcher(Broken([], []), tl, "drill", kinds=("Deployment",)):
        time.sleep(0.3)
    notes = tl.select(Note)
    assert notes and "connection refused" in notes[0].data.text


def test_continuity_marks_synced_lost_resumed_stopped() -> None:
    """A broken stream is lost; reopened from its resourceVersion (no relist) it is synced
    again; a stream that never reopens stays lost until the watch stops."""

    class Flaky(FakeAdapter):
        def __init__(self, breaks: int) -> None:
            super().__init__([deployment("svc", 1, 1, "1")], [])
            self.breaks, self.versions = breaks, []

        def watch(
            self, kind: str, namespace: str | None, resource_version: str, timeout_s: int, **_: Any
        ) -> Iterator[tuple[str, dict[str, Any]]]:
            self.versions.append(resource_version)
            time.sleep(0.05)
            if self.breaks:
                self.breaks -= 1
                raise ConnectionResetError("connection reset by peer")
            yield "OPENED", {}
            yield "MODIFIED", deployment("svc", 2, 1, "7")
            time.sleep(0.05)

    tl = Timeline()
    flaky = Flaky(breaks=1)
    with ClusterWatcher(flaky, tl, "drill", ("Deployment",)):
        time.sleep(0.8)
    states = [o.data.state for o in tl.select(WatchStatus)]
    assert states[:3] == ["synced", "lost", "synced"] and states[-1] == "stopped"
    lost = next(o for o in tl.select(WatchStatus) if o.data.state == "lost")
    assert "connection reset by peer" in lost.data.detail
    assert flaky.lists == 1 and flaky.versions[:2] == ["1", "1"]  # resumed, not relisted
    assert "7" in flaky.versions  # and went on from the newest version seen

    tl = Timeline()
    with ClusterWatcher(Flaky(breaks=1000), tl, "drill", ("Deployment",)):
        time.sleep(0.8)
    assert [o.data.state for o in tl.select(WatchStatus)] == ["synced", "lost", "stopped"]


def test_a_refused_first_list_names_the_verb_and_the_resource() -> None:
    class Forbidden(FakeAdapter):
        def list(
            self, kind: str, namespace: str | None, **_: Any
        ) -> tuple[list[dict[str, Any]], str]:
            raise ApiFailed("GET /api/v1/namespaces/drill/pods: HTTP 403: pods is forbidden", 403)

    tl = Timeline()
    with (
        ClusterWatcher(Forbidden([], []), tl, "drill", kinds=("Pod",)) as w,
        pytest.raises(PreconditionUnmet, match=r"cannot list pods in namespace drill: forbidden"),
    ):
        w.wait_synced(5)
    assert "grant" in str(w.first_list_error) and "`list` and `watch` on pods" in str(
        w.first_list_error
    )


def test_a_kind_the_cluster_does_not_serve_is_marked_and_its_checks_say_so() -> None:
    """No KEDA CRD: ScaledObject is not watched but marked ``unserved``; a check that
    needs it is INCONCLUSIVE naming why, never PASS."""

    class NoKeda(FakeAdapter):
        def has_kind(self, kind: str) -> bool:
            return kind != "ScaledObject"

    tl = Timeline()
    with ClusterWatcher(NoKeda([deployment("svc", 1, 1, "1")], []), tl, "drill",
                        kinds=("Deployment", "ScaledObject")) as w:  # fmt: skip
        w.wait_synced(5)
        with tl.phase("run"):
            time.sleep(0.2)
    marks = [(o.data.api_kind, o.data.state) for o in tl.select(WatchStatus)]
    assert ("ScaledObject", "unserved") in marks and ("Deployment", "synced") in marks
    r = expect.keda_conformant("svc", "drill", phase="run").evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE and "does not serve ScaledObject" in r.reason, r.reason
