"""Watch the cluster onto the timeline: one thread per kind, one observation per change.

Only the fields checks and reports use are kept (replicas, readiness, PDB budget, node
readiness, events), and an object is recorded again only when those fields change.

Continuity is recorded too: a ``WatchStatus`` ``synced`` mark when a LIST has brought a
kind up to date (the first one, and each relist after a break), ``lost`` when its watch
broke, ``stopped`` at the end. Checks read these marks to find spans of unknown state.
A first LIST that fails (RBAC forbidden, a missing resource) is an error that names the
verb and the resource: :meth:`ClusterWatcher.wait_synced` raises it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kubedrill.adapters.kube import KINDS, ApiAdapter, ApiFailed, WatchGone
from kubedrill.core.errors import PreconditionUnmet, truncate
from kubedrill.timeline import Note, ObjectTransition, Scalar, Timeline, WatchStatus

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
        self.first_list_error: PreconditionUnmet | None = None

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
        for kind in self.kinds:
            self.timeline.record(WatchStatus(kind, "stopped"), source="watch")

    def wait_synced(self, timeout_s: float) -> None:
        """Block until every kind has been listed once; raise what kept one from it."""
        deadline = time.monotonic() + timeout_s
        while self.first_list_error is None and time.monotonic() < deadline:
            if self.synced.wait(0.1):
                break
        if self.first_list_error is not None:
            raise self.first_list_error
        if not self.synced.is_set():
            raise PreconditionUnmet(
                f"the cluster watch did not list every kind within {timeout_s:g}s",
                "check that the API server answers (`kubectl get --raw /readyz`)",
            )

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

    def _first_list_failed(self, kind: str, e: ApiFailed) -> None:
        plural = KINDS.get(kind, ("", kind.lower() + "s"))[1]
        where = f"in namespace {self.namespace}" if self.namespace and kind != "Node" else ""
        if e.status == 403:
            what, fix = (
                "forbidden (HTTP 403)",
                (
                    f"grant the identity in the kubeconfig `list` and `watch` on {plural} {where}"
                    " (a Role/ClusterRole and binding)"
                ),
            )
        else:
            what = f"HTTP {e.status}" if e.status else "failed"
            fix = "check the kubeconfig's cluster and that the resource exists on it"
        self.first_list_error = PreconditionUnmet(
            f"cannot list {plural} {where}: {what}: {truncate(str(e), 160)}".replace("  ", " "),
            fix,
        )

    def _run(self, kind: str) -> None:
        rv = ""
        first = True
        while not self._stop.is_set():
            try:
                if not rv:
                    try:
                        items, rv = self.adapter.list(kind, self.namespace)
                    except ApiFailed as e:
                        if first:
                            self._first_list_failed(kind, e)
                            return
                        raise
                    self._relisted(kind, items)
                    self.timeline.record(WatchStatus(kind, "synced"), source="watch")
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
                self.timeline.record(WatchStatus(kind, "lost", "410 Gone: relisting"), "watch")
                rv = ""
            except Exception as e:  # noqa: BLE001 - a watch must not die silently
                detail = f"{type(e).__name__}: {e}"[:300]
                if not first:
                    self.timeline.record(WatchStatus(kind, "lost", detail), source="watch")
                self.timeline.record(Note(f"watch {kind}: {detail}", "warning"), source="watch")
                if self._stop.wait(1.0):
                    return
                rv = ""

    def _relisted(self, kind: str, items: list[dict[str, Any]]) -> None:
        """Record a LIST: every object as ADDED (unchanged ones are skipped), and objects
        known before but absent now as DELETED (they went while the watch was down)."""
        seen = set()
        for obj in items:
            meta = obj.get("metadata") or {}
            seen.add((kind, str(meta.get("namespace") or ""), str(meta.get("name") or "")))
            self._record("ADDED", kind, obj)
        with self._lock:
            gone = [k for k in self._last if k[0] == kind and k not in seen]
        for _, ns, name in gone:
            self._record("DELETED", kind, {"metadata": {"namespace": ns, "name": name}})
