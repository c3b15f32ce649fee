"""prometheus-adapter and KEDA as local processes beside the kwokctl control plane.

Each serves an aggregated API (custom.metrics.k8s.io, external.metrics.k8s.io) on a
loopback port; an ExternalName Service at 127.0.0.1 routes the aggregator to it. They
authenticate the aggregator by the cluster's client CA and use the cluster's admin
certificate (SANs 127.0.0.1/localhost) to serve, as kwokctl does for metrics-server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedrill.sandbox.config import SandboxPaths
from kubedrill.sandbox.manifests import aggregated_api, prometheus_adapter_config

__all__ = [
    "ADDON_APISERVICES",
    "ADDON_COMPONENTS",
    "AddonPorts",
    "Process",
    "addon_manifests",
    "addon_processes",
    "prepare_certs",
]

ADDON_COMPONENTS: dict[str, tuple[str, ...]] = {
    "prometheus-adapter": ("prometheus-adapter",),
    "keda": ("keda-operator", "keda-adapter"),
}
# The APIService that proves each addon serves (Available=True).
ADDON_APISERVICES: dict[str, tuple[str, ...]] = {
    "prometheus-adapter": ("v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"),
    "keda": ("v1beta1.external.metrics.k8s.io",),
}
KEDA_NAMESPACE = "keda"
ADAPTER_NAMESPACE = "monitoring"


@dataclass(frozen=True, slots=True)
class AddonPorts:
    prometheus_adapter: int
    keda_operator_metrics: int
    keda_operator_health: int
    keda_grpc: int
    keda_adapter: int
    keda_adapter_metrics: int
    pod_runner: int

    def to_dict(self) -> dict[str, int]:
        return {f: int(getattr(self, f)) for f in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AddonPorts:
        return cls(**{f: int(data[f]) for f in cls.__slots__})


@dataclass(frozen=True, slots=True)
class Process:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def prepare_certs(paths: SandboxPaths) -> None:
    """ca.crt / tls.crt / tls.key from the cluster PKI, where KEDA's gRPC mTLS reads them."""
    paths.certs.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.certs, 0o700)
    (paths.certs / "ca").mkdir(exist_ok=True)
    for src, dst in (
        ("ca.crt", "ca.crt"),
        ("admin.crt", "tls.crt"),
        ("admin.key", "tls.key"),
        ("ca.crt", "ca/ca.crt"),  # --ca-dir: KEDA parses every file there as a certificate
    ):
        target = paths.certs / dst
        shutil.copyfile(paths.pki / src, target)
        os.chmod(target, 0o600)


def _serving(paths: SandboxPaths, port: int) -> list[str]:
    kc = str(paths.kubeconfig)
    return [
        f"--lister-kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={paths.certs}",
        f"--tls-cert-file={paths.certs / 'tls.crt'}",
        f"--tls-private-key-file={paths.certs / 'tls.key'}",
    ]


def addon_processes(
    addon: str, paths: SandboxPaths, bins: Mapping[str, Path], ports: AddonPorts, prom_url: str
) -> list[Process]:
    if addon == "prometheus-adapter":
        cfg = paths.addon_dir / "prometheus-adapter.yaml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(prometheus_adapter_config())
        argv = [
            str(bins["prometheus-adapter"]),
            *_serving(paths, ports.prometheus_adapter),
            f"--prometheus-url={prom_url}",
            f"--config={cfg}",
            "--metrics-relist-interval=10s",
        ]
        return [Process("prometheus-adapter", tuple(argv))]
    if addon == "keda":
        env = (
            ("POD_NAMESPACE", KEDA_NAMESPACE),
            ("KEDA_CLUSTER_OBJECT_NAMESPACE", KEDA_NAMESPACE),
            ("WATCH_NAMESPACE", ""),
            ("KUBECONFIG", str(paths.kubeconfig)),
        )
        operator = [
            str(bins["keda-operator"]),
            f"--kubeconfig={paths.kubeconfig}",
            f"--cert-dir={paths.certs}",
            f"--ca-dir={paths.certs / 'ca'}",
            f"--metrics-bind-address=127.0.0.1:{ports.keda_operator_metrics}",
            f"--health-probe-bind-address=127.0.0.1:{ports.keda_operator_health}",
            f"--metrics-service-bind-address=127.0.0.1:{ports.keda_grpc}",
            "--enable-cert-rotation=false",
            "--enable-webhook-patching=false",
            "--enable-apiservice-patching=false",
            "--zap-log-level=info",
        ]
        adapter = [
            str(bins["keda-adapter"]),
            f"--kubeconfig={paths.kubeconfig}",
            *_serving(paths, ports.keda_adapter),
            f"--metrics-service-address=127.0.0.1:{ports.keda_grpc}",
            f"--port={ports.keda_adapter_metrics}",
            "--zap-log-level=info",
        ]
        return [
            Process("keda-operator", tuple(operator), env),
            Process("keda-adapter", tuple(adapter), env),
        ]
    raise ValueError(f"unknown addon {addon!r}")


def addon_manifests(addon: str, ports: AddonPorts) -> list[dict[str, Any]]:
    if addon == "prometheus-adapter":
        return aggregated_api(
            "custom.metrics.k8s.io",
            ("v1beta1", "v1beta2"),
            ADAPTER_NAMESPACE,
            "prometheus-adapter",
            ports.prometheus_adapter,
        )
    if addon == "keda":
        return aggregated_api(
            "external.metrics.k8s.io",
            ("v1beta1",),
            KEDA_NAMESPACE,
            "keda-metrics-apiserver",
            ports.keda_adapter,
        )
    raise ValueError(f"unknown addon {addon!r}")
