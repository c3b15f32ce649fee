"""What a sandbox is made of (typed, validated once) and where its files live.

Everything of one sandbox lives under ``<root>/<name>``, where ``root`` is
``KUBEDRILL_SANDBOX_DIR`` or ``~/.cache/kubedrill/sandbox``. ``down`` removes that folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubedrill.core.errors import ConfigError

__all__ = [
    "ADDONS",
    "SANDBOX_DIR_ENV",
    "NodePool",
    "SandboxConfig",
    "SandboxPaths",
    "default_root",
]

SANDBOX_DIR_ENV = "KUBEDRILL_SANDBOX_DIR"
# Local processes kubedrill runs beside the kwokctl-managed control plane.
ADDONS = ("prometheus-adapter", "keda")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    value = env.get(SANDBOX_DIR_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "kubedrill" / "sandbox"


@dataclass(frozen=True, slots=True)
class NodePool:
    """A set of identical fake nodes (kwok plays their kubelets)."""

    prefix: str
    count: int
    cpu: str
    memory: str
    pods: int = 110
    gpus: int = 0
    gpu_product: str = ""


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    name: str = "kubedrill"
    root: Path = field(default_factory=default_root)
    gpu_nodes: int = 2
    cpu_nodes: int = 2
    gpus_per_node: int = 8
    gpu_product: str = "NVIDIA-H100-80GB-HBM3"
    gpu_node_cpu: str = "96"
    gpu_node_memory: str = "1Ti"
    cpu_node_cpu: str = "16"
    cpu_node_memory: str = "64Gi"
    # Multiplies kwokctl's kubelet-like defaults (lease 40 s, status 10 s, grace 40 s):
    # 0.5 gives a 20 s node-monitor grace period, so a silent node is NotReady in ~20 s.
    heartbeat_factor: float = 0.5
    hpa_sync_period: str = "5s"
    hpa_downscale_stabilization: str = "15s"
    metric_resolution: str = "10s"  # metrics-server refuses less than 10 s
    addons: tuple[str, ...] = ADDONS

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError("--name", "name", "a short DNS label (a-z, 0-9, '-')", self.name)
        for flag, value in (("--gpu-nodes", self.gpu_nodes), ("--cpu-nodes", self.cpu_nodes)):
            if not 0 <= value <= 5000:
                raise ConfigError(flag, "", "a node count from 0 to 5000", value)
        if self.gpu_nodes + self.cpu_nodes == 0:
            raise ConfigError("--gpu-nodes/--cpu-nodes", "", "at least one node", 0)
        if not 1 <= self.gpus_per_node <= 64:
            raise ConfigError("--gpus-per-node", "", "a GPU count from 1 to 64", self.gpus_per_node)
        if not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}", self.gpu_product):
            raise ConfigError("--gpu-product", "", "a label value", self.gpu_product)
        for flag, qty in (
            ("gpu_node_cpu", self.gpu_node_cpu),
            ("gpu_node_memory", self.gpu_node_memory),
            ("cpu_node_cpu", self.cpu_node_cpu),
            ("cpu_node_memory", self.cpu_node_memory),
        ):
            if not _QUANTITY.match(qty):
                raise ConfigError(flag, "", "a Kubernetes quantity such as 16 or 64Gi", qty)
        if not 0.05 <= self.heartbeat_factor <= 5:
            raise ConfigError(
                "--heartbeat-factor", "", "a factor from 0.05 to 5", self.heartbeat_factor
            )
        unknown = sorted(set(self.addons) - set(ADDONS))
        if unknown:
            raise ConfigError("--addons", "", "a subset of " + ", ".join(ADDONS), unknown)

    @property
    def pools(self) -> tuple[NodePool, ...]:
        return (
            NodePool(
                prefix="gpu",
                count=self.gpu_nodes,
                cpu=self.gpu_node_cpu,
                memory=self.gpu_node_memory,
                gpus=self.gpus_per_node,
                gpu_product=self.gpu_product,
            ),
            NodePool(
                prefix="cpu",
                count=self.cpu_nodes,
                cpu=self.cpu_node_cpu,
                memory=self.cpu_node_memory,
            ),
        )

    @property
    def paths(self) -> SandboxPaths:
        return SandboxPaths(self.root / self.name, self.name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["root"] = str(self.root)
        out["addons"] = list(self.addons)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxConfig:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["root"] = Path(values.get("root", default_root()))
        values["addons"] = tuple(values.get("addons", ADDONS))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SandboxPaths:
    """Every file of one sandbox; kwokctl's own tree is ``kwok/clusters/<name>``."""

    dir: Path
    name: str

    @property
    def state(self) -> Path:
        return self.dir / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def kwokctl_config(self) -> Path:
        return self.dir / "kwokctl.yaml"

    @property
    def audit_policy(self) -> Path:
        return self.dir / "audit-policy.yaml"

    @property
    def kwok_workdir(self) -> Path:
        return self.dir / "kwok"

    @property
    def cluster(self) -> Path:
        return self.kwok_workdir / "clusters" / self.name

    @property
    def pki(self) -> Path:
        return self.cluster / "pki"

    @property
    def audit_log(self) -> Path:
        return self.cluster / "logs" / "audit.log"

    @property
    def addon_dir(self) -> Path:
        return self.dir / "addons"

    @property
    def certs(self) -> Path:
        return self.addon_dir / "certs"

    def pid_file(self, component: str, managed_by_kwokctl: bool) -> Path:
        base = self.cluster if managed_by_kwokctl else self.addon_dir
        return base / "pids" / f"{component}.pid"

    def log_file(self, component: str, managed_by_kwokctl: bool) -> Path:
        base = self.cluster if managed_by_kwokctl else self.addon_dir
        return base / "logs" / f"{component}.log"
