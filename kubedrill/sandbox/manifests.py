"""The documents a sandbox is made from: kwokctl's configuration, the audit policy, the
fake nodes, and the Services/APIServices that route aggregated APIs to local processes.
Pure functions of their arguments, so they are unit-tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubedrill.sandbox.config import NodePool, SandboxConfig
from kubedrill.sandbox.podspec import PROCESS_LABEL

__all__ = [
    "GPU_RESOURCE",
    "SANDBOX_LABEL",
    "ControlPlanePorts",
    "aggregated_api",
    "audit_policy",
    "kwokctl_config",
    "node_docs",
    "prometheus_adapter_config",
]

GPU_RESOURCE = "nvidia.com/gpu"
SANDBOX_LABEL = "kubedrill.io/sandbox"
POOL_LABEL = "kubedrill.io/node-pool"


@dataclass(frozen=True, slots=True)
class ControlPlanePorts:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    metrics_server: int
    prometheus: int


def audit_policy() -> str:
    """Metadata for every request: who did what to which object, never the payload."""
    doc = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata"}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _arg(key: str, value: str, override: bool = False) -> dict[str, Any]:
    return {"key": key, "value": value, "override": override}


def kwokctl_config(
    cfg: SandboxConfig,
    bins: Mapping[str, Path],
    ports: ControlPlanePorts,
    audit_policy_path: Path,
    metrics_server_manifests: Path,
    client_ca: Path,
    prometheus_data: Path,
) -> str:
    """A KwokctlConfiguration for the binary runtime with our local binaries."""
    options: dict[str, Any] = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "kubeApiserverBinary": str(bins["kube-apiserver"]),
        "kubeControllerManagerBinary": str(bins["kube-controller-manager"]),
        "kubeSchedulerBinary": str(bins["kube-scheduler"]),
        "kubectlBinary": str(bins["kubectl"]),
        "kwokControllerBinary": str(bins["kwok"]),
        "etcdBinary": str(bins["etcd"]),
        "etcdctlBinary": str(bins["etcdctl"]),
        "metricsServerBinary": str(bins["metrics-server"]),
        "prometheusBinary": str(bins["prometheus"]),
        "metricsServerManifests": [str(metrics_server_manifests)],
        "kubeAuditPolicy": str(audit_policy_path),
        "etcdPort": ports.etcd,
        "etcdPeerPort": ports.etcd_peer,
        "kubeApiserverPort": ports.apiserver,
        "kubeControllerManagerPort": ports.controller_manager,
        "kubeSchedulerPort": ports.scheduler,
        "kwokControllerPort": ports.kwok,
        "metricsServerPort": ports.metrics_server,
        "prometheusPort": ports.prometheus,
        "etcdQuotaBackendSize": "2Gi",
        # kwok serves the kubelet's /containerLogs from Logs objects, which the pod runner
        # writes for process-backed pods: `kubectl logs` works (kubeletlogs.py)
        "enableCRDs": ["Logs"],
    }
    patches = [
        {
            # Pods with this label are run as local processes by our pod runner, which
            # writes their status; kwok must leave them alone (kwok's own flag for this).
            "name": "kwok-controller",
            "extraArgs": [_arg("disregard-status-with-label-selector", f"{PROCESS_LABEL}=true")],
        },
        {
            # kwok v0.8.0 launches metrics-server with InternalIP first (kwok #1681).
            "name": "metrics-server",
            "extraArgs": [
                _arg("kubelet-preferred-address-types", "Hostname,InternalIP,ExternalIP", True),
                _arg("metric-resolution", cfg.metric_resolution, True),
                # must stay below 0.9 x metric-resolution, or metrics-server refuses to start
                _arg("kubelet-request-timeout", "5s"),
            ],
        },
        {
            # No kube-proxy and no real Service network: do not reconcile the
            # kubernetes Service endpoints to a non-routable address (kwok #1701).
            "name": "kube-apiserver",
            # Front-proxy auth for aggregated APIs (metrics-server, prometheus-adapter,
            # KEDA): the aggregator's client cert is signed by the cluster CA, and the
            # extension servers see the real user in X-Remote-* headers, as on kubeadm.
            "extraArgs": [
                _arg("endpoint-reconciler-type", "none"),
                _arg("requestheader-client-ca-file", str(client_ca)),
                _arg("requestheader-allowed-names", "kwok-admin"),  # CN of kwokctl's cert
                _arg("requestheader-username-headers", "X-Remote-User"),
                _arg("requestheader-group-headers", "X-Remote-Group"),
                _arg("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
            ],
        },
        {
            # Debian's prometheus defaults to /var/lib/prometheus/metrics2: the system's
            # TSDB, shared by every sandbox (old series leak into new runs, and startup
            # replays an ever longer WAL). Each sandbox keeps its own, for a day at most.
            "name": "prometheus",
            "extraArgs": [
                _arg("storage.tsdb.path", str(prometheus_data)),
                _arg("storage.tsdb.retention.time", "1d"),
            ],
        },
        {
            "name": "kube-controller-manager",
            "extraArgs": [
                _arg("horizontal-pod-autoscaler-sync-period", cfg.hpa_sync_period),
                _arg(
                    "horizontal-pod-autoscaler-downscale-stabilization",
                    cfg.hpa_downscale_stabilization,
                ),
            ],
        },
    ]
    doc = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
        "componentsPatches": patches,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def node_name(pool: NodePool, index: int) -> str:
    return f"{pool.prefix}-{index}"


def node_doc(pool: NodePool, index: int, sandbox: str) -> dict[str, Any]:
    """A Node kwok will keep Ready; status (capacity, address) is kept by kwok's stages."""
    name = node_name(pool, index)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        SANDBOX_LABEL: sandbox,
        POOL_LABEL: pool.prefix,
    }
    resources: dict[str, str] = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
    taints: list[dict[str, str]] = []
    if pool.gpus:
        labels["nvidia.com/gpu.present"] = "true"
        labels["nvidia.com/gpu.product"] = pool.gpu_product
        labels["nvidia.com/gpu.count"] = str(pool.gpus)
        resources[GPU_RESOURCE] = str(pool.gpus)
        taints.append({"key": GPU_RESOURCE, "effect": "NoSchedule"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                # metrics-server >= 0.7 scrapes kwok's per-node resource metrics here.
                "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
            },
        },
        "spec": {"taints": taints},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            # Our own address: kwokctl's scale template uses a dead 192.0.2.x (kwok #1681).
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        },
    }


def node_docs(cfg: SandboxConfig) -> list[dict[str, Any]]:
    return [node_doc(pool, i, cfg.name) for pool in cfg.pools for i in range(pool.count)]


def aggregated_api(
    group: str, versions: tuple[str, ...], namespace: str, service: str, port: int
) -> list[dict[str, Any]]:
    """Route an aggregated API group to a process on 127.0.0.1:port.

    An ExternalName Service pointing at 127.0.0.1 is what kwokctl does for metrics-server:
    the aggregator resolves it to https://127.0.0.1:<port>. (Endpoints may not hold a
    loopback address, so a selector-less Service would be rejected.)
    """
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace},
            "spec": {
                "type": "ExternalName",
                "externalName": "127.0.0.1",
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        },
    ]
    for version in versions:
        docs.append(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": f"{version}.{group}"},
                "spec": {
                    "group": group,
                    "version": version,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "insecureSkipTLSVerify": True,
                    "service": {"name": service, "namespace": namespace, "port": port},
                },
            }
        )
    return docs


def prometheus_adapter_config() -> str:
    """prometheus-adapter's stock rules: every namespaced pod series becomes a Pods metric
    (counters as per-second rates), so HPA ``type: Pods`` works on whatever is scraped."""
    labels = {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    series = '{namespace!="",pod!=""}'
    doc = {
        "rules": [
            {
                "seriesQuery": series,
                "seriesFilters": [{"isNot": "^container_.*"}, {"is": ".*_total$"}],
                "resources": {"overrides": labels},
                "name": {"matches": "^(.*)_total$", "as": "${1}_per_second"},
                "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)",
            },
            {
                "seriesQuery": series,
                "seriesFilters": [{"isNot": ".*_total$"}],
                "resources": {"overrides": labels},
                "name": {"matches": "^(.*)$", "as": "${1}"},
                "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
            },
        ]
    }
    return yaml.safe_dump(doc, sort_keys=False)
