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

    def list(self, kind: str, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        with self.lock:
            self.lists += 1
        return (self.items if kind == "Deployment" else []), "1"

    def watch(
        self, kind: str, namespace: str | None, resource_version: str, timeout_s: int
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
    assert extract_fields("Deployment", deployment("svc", 3, 2, "5")) == {
        "replicas": 3,
        "ready_replicas": 2,
        "available_replicas": 2,
        "updated_replicas": 2,
    }
    pod = {
        "metadata": {"deletionTimestamp": "x"},
        "spec": {"nodeName": "gpu-0"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert extract_fields("Pod", pod) == {
        "phase": "Running",
        "ready": False,
        "node": "gpu-0",
        "deleting": True,
    }
    pdb = {
        "status": {
            "currentHealthy": 2,
            "desiredHealthy": 2,
            "disruptionsAllowed": 0,
            "expectedPods": 3,
        }
    }
    assert extract_fields("PodDisruptionBudget", pdb)["disruptions_allowed"] == 0
    node = {
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert extract_fields("Node", node) == {"ready": True, "unschedulable": True}
    hpa = {
        "spec": {"minReplicas": 1, "maxReplicas": 5},
        "status": {"currentReplicas": 1, "desiredReplicas": 3},
    }
    assert extract_fields("HorizontalPodAutoscaler", hpa)["desired_replicas"] == 3


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
        def list(self, kind: str, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
            raise RuntimeError("connection refused")

    tl = Timeline()
    with ClusterWatcher(Broken([], []), tl, "drill", kinds=("Deployment",)):
        time.sleep(0.3)
    notes = tl.select(Note)
    assert notes and "connection refused" in notes[0].data.text


def test_continuity_marks_synced_lost_relisted_stopped() -> None:
    class Flaky(FakeAdapter):
        def watch(
            self, kind: str, namespace: str | None, resource_version: str, timeout_s: int
        ) -> Iterator[tuple[str, dict[str, Any]]]:
            time.sleep(0.05)
            raise ConnectionResetError("connection reset by peer")
            yield  # pragma: no cover

    tl = Timeline()
    with ClusterWatcher(Flaky([deployment("svc", 1, 1, "1")], []), tl, "drill", ("Deployment",)):
        time.sleep(1.3)
    states = [o.data.state for o in tl.select(WatchStatus)]
    assert states[:3] == ["synced", "lost", "synced"] and states[-1] == "stopped"
    lost = next(o for o in tl.select(WatchStatus) if o.data.state == "lost")
    assert "connection reset by peer" in lost.data.detail


def test_a_refused_first_list_names_the_verb_and_the_resource() -> None:
    class Forbidden(FakeAdapter):
        def list(self, kind: str, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
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
