"""What of each watched object goes on the timeline: the fields checks and reports read,
by kind, pure functions of the API's JSON (tested on recorded objects).

Nested parts the conformance checks need whole (an HPA's spec and current metrics, a
ScaledObject's spec) are kept as compact JSON strings, so a transition stays a flat map of
scalars. ``server_time`` is the newest time the server wrote on the object (its
managedFields, else its creation or deletion time): the server's side of the clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubedrill.timeline import Scalar

__all__ = ["RECORDED_KINDS", "SERVER_TIME", "extract_fields", "server_time"]

SERVER_TIME = "server_time"


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def _cond_true(obj: Mapping[str, Any], kind: str) -> bool | None:
    c = _condition(obj, kind)
    return None if c is None else bool(c.get("status") == "True")


def _compact(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def server_time(obj: Mapping[str, Any]) -> str | None:
    """The newest timestamp the server put on the object (RFC 3339, second resolution)."""
    meta = obj.get("metadata") or {}
    times = [str(m.get("time")) for m in meta.get("managedFields") or [] if m.get("time")]
    for key in ("deletionTimestamp", "creationTimestamp"):
        if meta.get(key):
            times.append(str(meta[key]))
    return max(times) if times else None


def _owner(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def _deployment(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "replicas": spec.get("replicas"),
        "ready_replicas": status.get("readyReplicas") or 0,
        "available_replicas": status.get("availableReplicas") or 0,
        "updated_replicas": status.get("updatedReplicas") or 0,
        "status_replicas": status.get("replicas") or 0,
    }


def _replicaset(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "replicas": spec.get("replicas"),
        "ready_replicas": status.get("readyReplicas") or 0,
        "available_replicas": status.get("availableReplicas") or 0,
        "owner": _owner(obj),
    }


def _pod_reason(obj: Mapping[str, Any]) -> str | None:
    """Why a pod is not simply running: a container's waiting or last termination reason
    (CrashLoopBackOff, OOMKilled, ImagePullBackOff), the pod's own (Evicted)."""
    status = obj.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") and waiting.get("reason") != "ContainerCreating":
            return str(waiting["reason"])
        term = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
        if term.get("reason") and term.get("reason") != "Completed":
            return str(term["reason"])
    return str(status["reason"]) if status.get("reason") else None


def _pod(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    sched = _condition(obj, "PodScheduled") or {}
    pending_reason = None
    if sched.get("status") == "False":
        pending_reason = f"{sched.get('reason')}: {str(sched.get('message') or '')[:200]}"
    disruption = _condition(obj, "DisruptionTarget") or {}
    return {
        "phase": status.get("phase"),
        "ready": _cond_true(obj, "Ready"),
        "node": spec.get("nodeName"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "deletion_grace_s": meta.get("deletionGracePeriodSeconds"),
        "restarts": sum(
            int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []
        ),
        "reason": _pod_reason(obj),
        "unschedulable": pending_reason,
        # set by the API on an eviction (EvictionByEvictionAPI), the taint manager, PodGC…;
        # absent on a plain delete: that is how a PDB bypass shows
        "disruption": str(disruption.get("reason")) if disruption.get("status") == "True" else None,
        "owner": _owner(obj),
        "labels": ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())),
    }


def _hpa(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out: dict[str, Scalar] = {
        "min_replicas": spec.get("minReplicas"),
        "max_replicas": spec.get("maxReplicas"),
        "current_replicas": status.get("currentReplicas"),
        "desired_replicas": status.get("desiredReplicas"),
        "target": f"{(spec.get('scaleTargetRef') or {}).get('kind')}/"
        f"{(spec.get('scaleTargetRef') or {}).get('name')}",
        "spec": _compact(spec),
        "metrics": _compact(status.get("currentMetrics") or []),
        "last_scale_time": status.get("lastScaleTime"),
    }
    for cond, key in (
        ("AbleToScale", "able_to_scale"),
        ("ScalingActive", "scaling_active"),
        ("ScalingLimited", "scaling_limited"),
    ):
        c = _condition(obj, cond)
        out[key] = None if c is None else c.get("status") == "True"
        out[f"{key}_reason"] = None if c is None else c.get("reason")
        out[f"{key}_message"] = None if c is None else str(c.get("message") or "")[:300]
    return out


def _pdb(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "current_healthy": status.get("currentHealthy"),
        "desired_healthy": status.get("desiredHealthy"),
        "disruptions_allowed": status.get("disruptionsAllowed"),
        "expected_pods": status.get("expectedPods"),
        "min_available": None if spec.get("minAvailable") is None else str(spec["minAvailable"]),
        "max_unavailable": None
        if spec.get("maxUnavailable") is None
        else str(spec["maxUnavailable"]),
        "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
    }


def _node(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    spec = obj.get("spec") or {}
    taints = ",".join(
        f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
        for t in spec.get("taints") or []
    )
    ready = _condition(obj, "Ready") or {}
    return {
        "ready": None if not ready else ready.get("status") == "True",
        "ready_reason": ready.get("reason"),
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": taints,
        "gpus": ((obj.get("status") or {}).get("allocatable") or {}).get("nvidia.com/gpu"),
    }


def _event(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    involved = obj.get("involvedObject") or {}
    return {
        "reason": obj.get("reason"),
        "type": obj.get("type"),
        "object": f"{involved.get('kind')}/{involved.get('name')}",
        "message": str(obj.get("message") or "")[:300],
        "count": obj.get("count") or 1,
        "last_time": obj.get("lastTimestamp") or obj.get("eventTime"),
        "source": (obj.get("source") or {}).get("component") or obj.get("reportingComponent"),
    }


def _scaledobject(obj: Mapping[str, Any]) -> dict[str, Scalar]:
    status = obj.get("status") or {}
    return {
        "ready": _cond_true(obj, "Ready"),
        "active": _cond_true(obj, "Active"),
        "fallback": _cond_true(obj, "Fallback"),
        "paused": _cond_true(obj, "Paused"),
        "hpa": status.get("hpaName"),
        "spec": _compact(obj.get("spec") or {}),
    }


_EXTRACTORS: dict[str, Callable[[Mapping[str, Any]], dict[str, Scalar]]] = {
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "Pod": _pod,
    "HorizontalPodAutoscaler": _hpa,
    "PodDisruptionBudget": _pdb,
    "Node": _node,
    "Event": _event,
    "ScaledObject": _scaledobject,
}
RECORDED_KINDS = tuple(_EXTRACTORS)


def extract_fields(kind: str, obj: Mapping[str, Any]) -> dict[str, Scalar]:
    """The fields of ``obj`` worth a timeline entry, by kind (``server_time`` included)."""
    fields = _EXTRACTORS[kind](obj)
    fields[SERVER_TIME] = server_time(obj)
    return fields
