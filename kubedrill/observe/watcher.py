"""Watch the cluster onto the timeline: one thread per kind, one observation per change.

Only the fields checks and reports use are kept (:mod:`kubedrill.observe.fields`), and an
object is recorded again only when those fields change (``server_time`` aside).

Continuity is recorded too: a ``WatchStatus`` ``synced`` mark when a LIST has brought a
kind up to date (the first one, and each relist after a 410), or a broken watch has been
resumed from its resourceVersion (the server replays what happened meanwhile); ``lost``
when its watch broke, ``stopped`` at the end, ``unserved`` for an optional kind the
cluster does not serve (a CRD that is not installed). Checks read these marks to find
spans of unknown state. A first LIST that fails (RBAC forbidden, a missing resource) is
an error that names the verb and the resource: :meth:`ClusterWatcher.wait_synced` raises it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from kubedrill.adapters.kube import ApiAdapter, ApiFailed
from kubedrill.adapters.listwatch import ListWatch
from kubedrill.core.errors import PreconditionUnmet, truncate
from kubedrill.observe.fields import SERVER_TIME, extract_fields
from kubedrill.timeline import Note, ObjectTransition, Scalar, Timeline, WatchStatus

__all__ = ["DEFAULT_KINDS", "ClusterWatcher", "extract_fields"]

DEFAULT_KINDS = (
    "Deployment",
    "ReplicaSet",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Pod",
    "Node",
    "Event",
    "ScaledObject",
)
# kinds a cluster may not serve (a CRD): not watched, marked ``unserved``; checks that
# need them are INCONCLUSIVE with that reason
OPTIONAL_KINDS = frozenset({"ScaledObject"})


class ClusterWatcher:
    """Start with :meth:`start` (or as a context manager); :meth:`stop` joins the threads."""

    def __init__(
        self,
        adapter: ApiAdapter,
        timeline: Timeline,
        namespace: str | None,
        kinds: Iterable[str] = DEFAULT_KINDS,
        watch_timeout_s: int = 30,
    ) -> None:
        self.adapter = adapter
        self.timeline = timeline
        self.namespace = namespace
        self.kinds = tuple(kinds)
        self.watch_timeout_s = watch_timeout_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loops: list[ListWatch] = []
        self._last: dict[tuple[str, str, str], dict[str, Scalar]] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self._pending_sync = len(self.kinds)
        self.first_list_error: PreconditionUnmet | None = None

    def start(self) -> ClusterWatcher:
        for kind in self.kinds:
            if kind in OPTIONAL_KINDS and not self._served(kind):
                continue
            loop = ListWatch(
                self.adapter,
                kind,
                self.namespace,
                on_sync=partial(self._synced, kind),
                on_event=partial(self._on_event, kind),
                on_lost=partial(self._mark, kind, "lost"),
                on_resumed=partial(self._mark, kind, "synced", "watch resumed"),
                on_first_error=partial(self._first_list_failed, kind),
                on_error=partial(self._note, kind),
                stop=self._stop,
                timeout_s=self.watch_timeout_s,
            )
            self._loops.append(loop)
            self._threads.append(loop.start(f"kubedrill-watch-{kind}"))
        if not self._threads or self._pending_sync == 0:
            self.synced.set()
        return self

    def _served(self, kind: str) -> bool:
        has_kind = getattr(self.adapter, "has_kind", None)
        if has_kind is None or has_kind(kind):
            return True
        self._mark(kind, "unserved", f"the cluster does not serve {kind} (is its CRD installed?)")
        with self._lock:
            self._pending_sync -= 1
        return False

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.watch_timeout_s + 15)
        for kind in self.kinds:
            self._mark(kind, "stopped")

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

    def _mark(self, kind: str, state: str, detail: str = "") -> None:
        self.timeline.record(WatchStatus(kind, state, detail), source="watch")  # type: ignore[arg-type]

    def _note(self, kind: str, detail: str) -> None:
        self.timeline.record(Note(f"watch {kind}: {detail}", "warning"), source="watch")

    def _on_event(self, kind: str, event: str, obj: Mapping[str, Any]) -> None:
        self._record(event, kind, obj)

    def _record(self, event: str, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        whole = len(obj) > 1  # a relist's DELETED carries only the metadata
        fields = extract_fields(kind, obj) if whole else {}
        key = (kind, ns, name)
        same = {k: v for k, v in fields.items() if k != SERVER_TIME}
        with self._lock:
            if event != "DELETED" and self._last.get(key) == same:
                return
            if event == "DELETED":
                self._last.pop(key, None)
            else:
                self._last[key] = same
        self.timeline.record(ObjectTransition(kind, ns, name, event, fields), source="watch")  # type: ignore[arg-type]

    def _first_list_failed(self, kind: str, e: ApiFailed) -> bool:
        plural = kind.lower() + ("es" if kind.endswith("s") else "s")
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
        return True

    def _synced(self, kind: str, items: list[dict[str, Any]]) -> None:
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
        self._mark(kind, "synced")
        first = [lw for lw in self._loops if lw.kind == kind and lw.lists == 1]
        if first:
            with self._lock:
                self._pending_sync -= 1
                if self._pending_sync == 0:
                    self.synced.set()
