"""What ``up`` recorded (state.json) and how healthy each component is right now."""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubedrill.adapters.kube import ApiFailed, KubeAdapter
from kubedrill.sandbox.addons import ADDON_APISERVICES, ADDON_COMPONENTS, AddonPorts
from kubedrill.sandbox.api import Kubectl, api_ready, condition
from kubedrill.sandbox.config import SandboxConfig, SandboxPaths
from kubedrill.sandbox.manifests import SANDBOX_LABEL, ControlPlanePorts
from kubedrill.sandbox.procs import alive, read_pid

__all__ = [
    "KWOKCTL_COMPONENTS",
    "ComponentHealth",
    "Health",
    "State",
    "check_health",
    "http_ok",
]

KWOKCTL_COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "metrics-server",
    "prometheus",
)


@dataclass(frozen=True)
class State:
    config: SandboxConfig
    ports: ControlPlanePorts
    addon_ports: AddonPorts
    bins: dict[str, Path]
    phase: str = "starting"  # starting | ready | failed
    started_at: float = 0.0
    ready_s: float | None = None

    @property
    def paths(self) -> SandboxPaths:
        return self.config.paths

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    def components(self) -> list[tuple[str, bool]]:
        """(name, managed by kwokctl) for every process of this sandbox, in start order."""
        out = [(c, True) for c in KWOKCTL_COMPONENTS]
        out.append(("pod-runner", False))
        for addon in self.config.addons:
            out += [(c, False) for c in ADDON_COMPONENTS[addon]]
        return out

    def api(self) -> KubeAdapter:
        """The engine's kube adapter on this sandbox, as its admin (short timeouts: the
        sandbox's own probes ask often and must not hang)."""
        pki = self.paths.pki
        return KubeAdapter.from_certificates(
            self.api_url, pki / "ca.crt", pki / "admin.crt", pki / "admin.key"
        )

    def kubectl(self) -> Kubectl:
        return Kubectl(self.bins["kubectl"], self.paths.kubeconfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "ports": {f: getattr(self.ports, f) for f in self.ports.__slots__},
            "addon_ports": self.addon_ports.to_dict(),
            "bins": {k: str(v) for k, v in self.bins.items()},
            "phase": self.phase,
            "started_at": self.started_at,
            "ready_s": self.ready_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        return cls(
            config=SandboxConfig.from_dict(data["config"]),
            ports=ControlPlanePorts(**{k: int(v) for k, v in data["ports"].items()}),
            addon_ports=AddonPorts.from_dict(data["addon_ports"]),
            bins={k: Path(v) for k, v in data["bins"].items()},
            phase=str(data.get("phase", "starting")),
            started_at=float(data.get("started_at", 0.0)),
            ready_s=None if data.get("ready_s") is None else float(data["ready_s"]),
        )

    def save(self) -> None:
        self.paths.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.paths.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(self.paths.state)

    @classmethod
    def load(cls, paths: SandboxPaths) -> State | None:
        try:
            return cls.from_dict(json.loads(paths.state.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """GET url on loopback answers 2xx. TLS is not verified: components' self-signed
    serving certs are probed for liveness only, never sent credentials."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=ctx) as resp:  # noqa: S310
            return 200 <= int(resp.status) < 300
    except (OSError, ValueError):
        return False


@dataclass
class ComponentHealth:
    name: str
    pid: int | None
    running: bool
    ready: bool
    detail: str
    log: Path


@dataclass
class Health:
    components: list[ComponentHealth] = field(default_factory=list)
    nodes_ready: int = 0
    nodes_total: int = 0
    gpus: int = 0

    @property
    def all_ready(self) -> bool:
        return (
            bool(self.components)
            and all(c.ready for c in self.components)
            and (self.nodes_total > 0 and self.nodes_ready == self.nodes_total)
        )

    def down(self) -> list[str]:
        return [c.name for c in self.components if not c.ready]


def _apiservice(api: KubeAdapter, name: str) -> tuple[bool, str]:
    try:
        obj = api.get("APIService", None, name) or {}
    except ApiFailed as e:
        return False, f"{name}: {e}"
    status = condition(obj, "Available")
    return status == "True", f"{name} Available={status}"


def _functional_checks(state: State, api: KubeAdapter) -> dict[str, Callable[[], tuple[bool, str]]]:
    p = state.ports
    checks: dict[str, Callable[[], tuple[bool, str]]] = {
        "etcd": lambda: (http_ok(f"http://127.0.0.1:{p.etcd}/health"), "/health"),
        "kube-apiserver": lambda: (api_ready(api), f"{state.api_url}/readyz"),
        "kube-controller-manager": lambda: (
            http_ok(f"https://127.0.0.1:{p.controller_manager}/healthz"),
            "/healthz",
        ),
        "kube-scheduler": lambda: (http_ok(f"https://127.0.0.1:{p.scheduler}/healthz"), "/healthz"),
        "kwok-controller": lambda: (http_ok(f"http://127.0.0.1:{p.kwok}/healthz"), "/healthz"),
        "metrics-server": lambda: _apiservice(api, "v1beta1.metrics.k8s.io"),
        "prometheus": lambda: (http_ok(f"{state.prometheus_url}/-/ready"), state.prometheus_url),
    }
    a = state.addon_ports
    checks["pod-runner"] = lambda: (
        http_ok(f"http://127.0.0.1:{a.pod_runner}/healthz"),
        f"http://127.0.0.1:{a.pod_runner}",
    )
    if "prometheus-adapter" in state.config.addons:
        names = ADDON_APISERVICES["prometheus-adapter"]
        checks["prometheus-adapter"] = lambda: _all_apiservices(api, names)
    if "keda" in state.config.addons:
        checks["keda-operator"] = lambda: (
            http_ok(f"http://127.0.0.1:{a.keda_operator_health}/readyz"),
            "/readyz",
        )
        names_k = ADDON_APISERVICES["keda"]
        checks["keda-adapter"] = lambda: _all_apiservices(api, names_k)
    return checks


def _all_apiservices(api: KubeAdapter, names: tuple[str, ...]) -> tuple[bool, str]:
    results = [_apiservice(api, n) for n in names]
    return all(ok for ok, _ in results), "; ".join(d for _, d in results)


def check_component(state: State, name: str, managed: bool, api: KubeAdapter) -> ComponentHealth:
    paths = state.paths
    pid = read_pid(paths.pid_file(name, managed))
    running = alive(pid, str(paths.dir))
    log = paths.log_file(name, managed)
    if not running:
        return ComponentHealth(name, pid, False, False, "not running", log)
    ok, detail = _functional_checks(state, api)[name]()
    return ComponentHealth(name, pid, True, ok, detail, log)


def check_health(state: State) -> Health:
    api = state.api()
    health = Health()
    for name, managed in state.components():
        health.components.append(check_component(state, name, managed, api))
    try:
        items, _ = api.list("Node", None, label_selector=f"{SANDBOX_LABEL}={state.config.name}")
    except ApiFailed:
        return health
    for node in items:
        health.nodes_total += 1
        if condition(node, "Ready") == "True":
            health.nodes_ready += 1
        gpus = node.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu", "0")
        health.gpus += int(gpus) if str(gpus).isdigit() else 0
    return health
