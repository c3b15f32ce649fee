"""Watch the cluster onto the timeline: one thread per kind, one observation per change.

Only the fields checks and reports use are kept (replicas, readiness, PDB budget, node
readiness, events), and an object is recorded again only when those fields change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from kubedrill.kube import ApiAdapter, WatchGone
from kubedrill.timeline import Note, ObjectTransition, Scalar, Timeline

__all__ = ["DEFAULT_KINDS", "ClusterWatcher", "extract_fields"]

DEFAULT_KINDS = (
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Pod",
    "Node",
    "Event",
)


def _condition(obj: Mapping[str, Any], kind: str) -> bool | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return bool(c.get("status") == "True")
    return None


def extract_fields(kind: str, obj: Mapping[str, Any]) -> dict[str, Scalar]:
    """The fields of ``obj`` worth a timeline entry, by kind (pure; tested on API JSON)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Deployment":
        return {
            "replicas": spec.get("replicas"),
            "ready_replicas": status.get("readyReplicas") or 0,
            "available_replicas": status.get("availableReplicas") or 0,
            "updated_replicas": status.get("updatedReplicas") or 0,
        }
    if kind == "HorizontalPodAutoscaler":
        return {
            "min_replicas": spec.get("minReplicas"),
            "max_replicas": spec.get("maxReplicas"),
            "current_replicas": status.get("currentReplicas"),
            "desired_replicas": status.get("desiredReplicas"),
            "able_to_scale": _condition(obj, "AbleToScale"),
            "scaling_limited": _condition(obj, "ScalingLimited"),
        }
    if kind == "PodDisruptionBudget":
        return {
            "current_healthy": status.get("currentHealthy"),
            "desired_healthy": status.get("desiredHealthy"),
            "disruptions_allowed": status.get("disruptionsAllowed"),
            "expected_pods": status.get("expectedPods"),
        }
    if kind == "Pod":
        return {
            "phase": status.get("phase"),
            "ready": _condition(obj, "Ready"),
            "node": spec.get("nodeName"),
            "deleting": bool((obj.get("metadata") or {}).get("deletionTimestamp")),
        }
    if kind == "Node":
        return {"ready": _condition(obj, "Ready"), "unschedulable": bool(spec.get("unschedulable"))}
    if kind == "Event":
        involved = obj.get("involvedObject") or {}
        return {
            "reason": obj.get("reason"),
            "type": obj.get("type"),
            "object": f"{involved.get('kind')}/{involved.get('name')}",
            "message": str(obj.get("message") or "")[:300],
        }
    if kind == "ScaledObject":
        return {"ready": _condition(obj, "Ready"), "active": _condition(obj, "Active")}
    raise KeyError(kind)


class ClusterWatcher:
    """Start with :meth:`start` (or as a context manager); :meth:`stop` joins the threads."""

    def __init__(
        self,
        adapter: ApiAdapter,
        timeline: Timeline,
        namespace: str | None,
        kinds: Iterable[str] = DEFAULT_KINDS,
        watch_timeout_s: int = 5,
    ) -> None:
        self.adapter = adapter
        self.timeline = timeline
        self.namespace = namespace
        self.kinds = tuple(kinds)
        self.watch_timeout_s = watch_timeout_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last: dict[tuple[str, str, str], dict[str, Scalar]] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self._pending_sync = len(self.kinds)

    def start(self) -> ClusterWatcher:
        for kind in self.kinds:
            t = threading.Thread(
                target=self._run, args=(kind,), name=f"kubedrill-watch-{kind}", daemon=True
            )
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.watch_timeout_s + 10)

    def __enter__(self) -> ClusterWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, event: str, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        fields = extract_fields(kind, obj)
        key = (kind, ns, name)
        with self._lock:
            if event != "DELETED" and self._last.get(key) == fields:
                return
            if event == "DELETED":
                self._last.pop(key, None)
            else:
                self._last[key] = fields
        self.timeline.record(ObjectTransition(kind, ns, name, event, fields), source="watch")  # type: ignore[arg-type]

    def _run(self, kind: str) -> None:
        rv = ""
        first = True
        while not self._stop.is_set():
            try:
                if not rv:
                    items, rv = self.adapter.list(kind, self.namespace)
                    for obj in items:
                        self._record("ADDED", kind, obj)
                    if first:
                        first = False
                        with self._lock:
                            self._pending_sync -= 1
                            if self._pending_sync == 0:
                                self.synced.set()
                for event, obj in self.adapter.watch(
                    kind, self.namespace, rv, self.watch_timeout_s
                ):
                    if event in ("ADDED", "MODIFIED", "DELETED"):
                        self._record(event, kind, obj)
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if self._stop.is_set():
                        return
            except WatchGone:
                rv = ""
            except Exception as e:  # noqa: BLE001 - a watch must not die silently
                self.timeline.record(
                    Note(f"watch {kind}: {type(e).__name__}: {e}"[:300], "warning"), source="watch"
                )
                if self._stop.wait(1.0):
                    return
                rv = ""
