"""The Pod status and the Events a kubelet would write for a process-backed pod."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from kubedrill.adapters.kube import ApiFailed, KubeAdapter
from kubedrill.sandbox.podproc import PodProcess
from kubedrill.sandbox.podspec import rfc3339

__all__ = ["Events", "status_patch"]


def _container_state(pp: PodProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, lastState) of the pod's container."""
    last: dict[str, Any] = {}
    if pp.last_exit is not None:
        code, started, finished = pp.last_exit
        last = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": rfc3339(started),
                "finishedAt": rfc3339(finished),
            }
        }
    if pp.proc is not None:
        return {"running": {"startedAt": rfc3339(pp.started_wall)}}, last
    if pp.finished or pp.terminating_until is not None:
        return (last or {"terminated": {"exitCode": 137, "reason": "Error"}}), {}
    reason = "CrashLoopBackOff" if pp.last_exit is not None else "ContainerCreating"
    return {"waiting": {"reason": reason}}, last


def _phase(pp: PodProcess) -> str:
    if pp.finished and pp.last_exit is not None:
        return "Succeeded" if pp.last_exit[0] == 0 else "Failed"
    return "Running" if pp.started_wall else "Pending"


def status_patch(pp: PodProcess) -> dict[str, Any]:
    """A JSON merge patch for /status: lists are replaced whole, so it is all of it."""
    now = time.time()
    if pp.sent_ready != pp.ready:
        pp.ready_since_wall = now
        pp.sent_ready = pp.ready
    ready = "True" if pp.ready else "False"
    since = rfc3339(pp.ready_since_wall)
    created = rfc3339(pp.created_wall)
    state, last = _container_state(pp)
    container: dict[str, Any] = {
        "name": pp.spec.container,
        "image": "kubedrill.io/process",
        "imageID": "",
        "containerID": f"process://{pp.proc.pid}" if pp.proc is not None else "",
        "ready": pp.ready,
        "started": pp.proc is not None,
        "restartCount": pp.restart_count,
        "state": state,
    }
    if last:
        container["lastState"] = last
    return {
        "status": {
            "phase": _phase(pp),
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": pp.ip,
            "podIPs": [{"ip": pp.ip}],
            "startTime": created,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
                {"type": "Initialized", "status": "True", "lastTransitionTime": created},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": since},
                {"type": "Ready", "status": ready, "lastTransitionTime": since},
            ],
            "containerStatuses": [container],
        }
    }


class Events:
    """Pod events under the kubelet's name, so `kubectl describe` and the cluster watcher
    see them. Best effort: an event that cannot be written is dropped."""

    def __init__(self, api: KubeAdapter) -> None:
        self.api = api

    def pod(self, pod: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        meta = pod["metadata"]
        node = (pod.get("spec") or {}).get("nodeName", "")
        self._post(
            meta["namespace"], meta["name"], str(meta.get("uid")), node, reason, message, warning
        )

    def pod_key(self, pp: PodProcess, reason: str, message: str, warning: bool = False) -> None:
        k = pp.spec.key
        self._post(k.namespace, k.name, k.uid, pp.spec.node, reason, message, warning)

    def _post(
        self, ns: str, name: str, uid: str, node: str, reason: str, message: str, warning: bool
    ) -> None:
        now = rfc3339(time.time())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": ns},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": ns,
                "name": name,
                "uid": uid,
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": node},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiFailed):
            self.api.create(body, ns)
