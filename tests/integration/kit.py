"""Helpers for the integration tests that run against a sandbox (see conftest.py)."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kubernetes import client

from kubedrill.sandbox.state import State

T = TypeVar("T")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def namespaces(core: client.CoreV1Api) -> set[str]:
    return {n.metadata.name for n in core.list_namespace().items}


def has_default_sa(core: client.CoreV1Api, ns: str) -> bool:
    return any(
        sa.metadata.name == "default" for sa in core.list_namespaced_service_account(ns).items
    )


def wait_for(fn: Callable[[], T], timeout_s: float, what: str, every_s: float = 0.5) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(every_s)


def deployment(
    name: str,
    replicas: int,
    *,
    node_selector: dict[str, str] | None = None,
    gpus: int = 0,
    tolerations: list[dict[str, Any]] | None = None,
    usage_cpu: str = "10m",
) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": "100m", "memory": "64Mi"}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {"kwok.x-k8s.io/usage-cpu": usage_cpu},
                },
                "spec": {
                    "nodeSelector": node_selector or {},
                    "tolerations": tolerations or [],
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": "example.invalid/app",
                            "resources": {
                                "requests": requests,
                                "limits": {
                                    k: v for k, v in requests.items() if k == "nvidia.com/gpu"
                                },
                            },
                        }
                    ],
                },
            },
        },
    }


def pods(api: client.ApiClient, ns: str, app: str) -> list[client.V1Pod]:
    items = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"app={app}").items
    return [p for p in items if p.metadata.deletion_timestamp is None]


def running(api: client.ApiClient, ns: str, app: str, count: int) -> list[client.V1Pod]:
    def check() -> list[client.V1Pod]:
        ps = [p for p in pods(api, ns, app) if p.status.phase == "Running"]
        return ps if len(ps) == count else []

    return wait_for(check, 60, f"{count} Running pods of {app}")


def kubectl(sandbox: State, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    cache = f"--cache-dir={sandbox.paths.dir / 'kube-cache'}"
    cmd = [str(sandbox.bins["kubectl"]), f"--kubeconfig={sandbox.paths.kubeconfig}", cache, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)


def pdb(name: str, app: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


def pdb_allows(api: client.ApiClient, ns: str, name: str, allowed: int, healthy: int) -> bool:
    st = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, ns).status
    return bool(st and st.current_healthy == healthy and st.disruptions_allowed == allowed)


def audit_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def process_deployment(
    name: str,
    replicas: int,
    args: list[str] | None = None,
    *,
    cpu: str = "100m",
    gpus: int = 0,
    grace_s: int = 5,
    node: str | None = None,
    command: list[str] | None = None,
    probe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Deployment whose pods are real local processes (the reference service by
    default), run by the sandbox's pod runner."""
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    container: dict[str, Any] = {
        "name": "app",
        "image": "kubedrill/refservice",
        "command": command or ["python", "-m", "kubedrill.refservice"],
        "args": ["--port", "$(PORT)", *(args or [])] if command is None else (args or []),
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}, "limits": limits},
    }
    if probe is None:  # {} means: no readiness probe
        probe = {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
    if probe:
        container["readinessProbe"] = probe
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": grace_s,
        "tolerations": [GPU_TOLERATION],
        "containers": [container],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "kubedrill.io/process": "true"}},
                "spec": spec,
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


def local_url(api: client.ApiClient, ns: str, name: str) -> str:
    """The Service's loopback URL, published by the pod runner."""

    def read() -> str:
        svc = client.CoreV1Api(api).read_namespaced_service(name, ns)
        return str((svc.metadata.annotations or {}).get("kubedrill.io/local-url", ""))

    return wait_for(read, 30, f"service {ns}/{name} to get a local URL")


def pod_port(pod: client.V1Pod) -> int:
    """The local port of a process-backed pod (its IP is 10.244.<port/256>.<port%256>)."""
    _, _, hi, lo = (int(x) for x in pod.status.pod_ip.split("."))
    return hi * 256 + lo


class Load:
    """A bounded closed-loop load: ``concurrency`` threads POSTing /v1/infer through url
    until stopped, ``max_s`` passes or ``max_requests`` are sent. Counts outcomes."""

    def __init__(
        self,
        url: str,
        concurrency: int,
        *,
        keep_alive: bool = True,
        max_s: float = 180,
        max_requests: int = 2_000_000,
    ) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", int(parts.port or 80)
        self.keep_alive = keep_alive
        self.deadline = time.monotonic() + max_s
        self.budget = max_requests
        self.ok = 0
        self.errors = 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, daemon=True) for _ in range(concurrency)
        ]

    def _take(self) -> bool:
        with self.lock:
            if self.budget <= 0:
                return False
            self.budget -= 1
            return True

    def _loop(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stop_event.is_set() and time.monotonic() < self.deadline and self._take():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                headers = {"Content-Type": "application/json"}
                if not self.keep_alive:
                    headers["Connection"] = "close"
                conn.request("POST", "/v1/infer", body=b"{}", headers=headers)
                resp = conn.getresponse()
                resp.read()
                good = resp.status == 200
                if not self.keep_alive or resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                good = False
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.errors += 1
        if conn is not None:
            conn.close()

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=15)
