"""What a process-backed pod asks for, read once from the Pod object, and the status
documents a kubelet would write for it. Pure functions, unit-tested without a cluster.

A pod opts in with the label ``kubedrill.io/process: "true"``. Its first container's
``command`` + ``args`` is the program to run (the image is ignored), with Kubernetes'
``$(VAR)`` expansion over the container's ``env`` and the variables the runner adds
(``PORT``, ``POD_NAME``, ``POD_NAMESPACE``, ``POD_IP``, ``NODE_NAME``,
``NVIDIA_VISIBLE_DEVICES``, ``KUBEDRILL_GPU_LEDGER``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GPU_DEVICES_ANNOTATION",
    "PROCESS_LABEL",
    "PodKey",
    "Probe",
    "ProcessSpec",
    "SpecError",
    "expand",
    "parse_pod",
    "pod_ip",
    "rfc3339",
]

PROCESS_LABEL = "kubedrill.io/process"
GPU_DEVICES_ANNOTATION = "kubedrill.io/gpu-devices"
GPU_RESOURCE = "nvidia.com/gpu"
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
_FIELD_REFS = {
    "metadata.name": "POD_NAME",
    "metadata.namespace": "POD_NAMESPACE",
    "status.podIP": "POD_IP",
    "spec.nodeName": "NODE_NAME",
    "status.hostIP": "HOST_IP",
}


class SpecError(ValueError):
    """The pod cannot be run as a process; the message names the field."""


@dataclass(frozen=True, slots=True)
class PodKey:
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"


@dataclass(frozen=True, slots=True)
class Probe:
    """An httpGet (path set) or tcpSocket (path None) probe against the process's port."""

    path: str | None
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    key: PodKey
    node: str
    container: str
    command: tuple[str, ...]  # before $(VAR) expansion
    env: tuple[tuple[str, str], ...]  # literal values and supported fieldRefs, in order
    readiness: Probe | None
    grace_s: float
    restart_policy: str  # Always | OnFailure | Never
    gpus: int
    container_port: int | None


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_ip(port: int) -> str:
    """A unique, valid, non-loopback pod IP per local port (EndpointSlices refuse
    127.0.0.0/8): 10.244.<port div 256>.<port mod 256>. It names the pod; traffic goes
    to 127.0.0.1:<port> through the Service proxy."""
    return f"10.244.{port >> 8}.{port & 255}"


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: unknown references stay as written, $$ is $."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR.sub(sub, text)


def _probe(doc: Any, where: str) -> Probe | None:
    if not doc:
        return None
    if not isinstance(doc, dict):
        raise SpecError(f"{where}: expected an object")
    if "httpGet" in doc:
        path = str((doc["httpGet"] or {}).get("path") or "/")
    elif "tcpSocket" in doc:
        path = None
    else:
        raise SpecError(f"{where}: only httpGet and tcpSocket probes run against a process")

    def num(key: str, default: float) -> float:
        value = doc.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SpecError(f"{where}.{key}: expected a non-negative number, got {value!r}")
        return float(value)

    return Probe(
        path=path,
        initial_delay_s=num("initialDelaySeconds", 0),
        period_s=max(0.2, num("periodSeconds", 10)),
        timeout_s=max(0.1, num("timeoutSeconds", 1)),
        success_threshold=max(1, int(num("successThreshold", 1))),
        failure_threshold=max(1, int(num("failureThreshold", 3))),
    )


def _gpus(container: Mapping[str, Any]) -> int:
    res = container.get("resources") or {}
    raw = (res.get("limits") or {}).get(GPU_RESOURCE) or (res.get("requests") or {}).get(
        GPU_RESOURCE
    )
    if raw in (None, ""):
        return 0
    try:
        return int(str(raw))
    except ValueError:
        raise SpecError(f"resources.limits.{GPU_RESOURCE}: expected a whole number") from None


def parse_pod(pod: Mapping[str, Any]) -> ProcessSpec:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    key = PodKey(str(meta.get("namespace", "")), str(meta.get("name", "")), str(meta.get("uid")))
    containers = spec.get("containers") or []
    if not containers:
        raise SpecError(f"pod {key}: spec.containers is empty")
    c = containers[0]
    where = f"pod {key}: spec.containers[0]"
    command = [str(x) for x in (c.get("command") or [])] + [str(x) for x in (c.get("args") or [])]
    if not command:
        raise SpecError(f"{where}: command/args: expected the program to run")
    env: list[tuple[str, str]] = []
    for item in c.get("env") or []:
        name = str(item.get("name", ""))
        if "value" in item:
            env.append((name, str(item["value"])))
            continue
        ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if ref in _FIELD_REFS:
            env.append((name, f"$({_FIELD_REFS[ref]})"))
        # other valueFrom sources (secrets, config maps) are not resolved: left unset
    ports = c.get("ports") or []
    container_port = int(ports[0]["containerPort"]) if ports else None
    grace = spec.get("terminationGracePeriodSeconds", 30)
    return ProcessSpec(
        key=key,
        node=str(spec.get("nodeName") or ""),
        container=str(c.get("name", "main")),
        command=tuple(command),
        env=tuple(env),
        readiness=_probe(c.get("readinessProbe"), f"{where}.readinessProbe"),
        grace_s=float(grace if isinstance(grace, int | float) else 30),
        restart_policy=str(spec.get("restartPolicy") or "Always"),
        gpus=_gpus(c),
        container_port=container_port,
    )
