"""Sandbox configuration, documents and CLI errors, without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubedrill.cli import main
from kubedrill.core.errors import ConfigError, PreconditionUnmet
from kubedrill.sandbox.binaries import BINARIES, resolve_binaries
from kubedrill.sandbox.config import SANDBOX_DIR_ENV, SandboxConfig, default_root
from kubedrill.sandbox.manifests import (
    ControlPlanePorts,
    aggregated_api,
    audit_policy,
    kwokctl_config,
    node_docs,
)

PORTS = ControlPlanePorts(1, 2, 3, 4, 5, 6, 7, 8)


def test_root_comes_from_the_environment(tmp_path: Path) -> None:
    assert default_root({SANDBOX_DIR_ENV: str(tmp_path)}) == tmp_path
    assert default_root({}).parts[-3:] == (".cache", "kubedrill", "sandbox")
    paths = SandboxConfig(name="demo", root=tmp_path).paths
    assert paths.dir == tmp_path / "demo"
    assert paths.cluster == tmp_path / "demo" / "kwok" / "clusters" / "demo"
    assert paths.audit_log == paths.cluster / "logs" / "audit.log"


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"name": "Bad_Name"}, "--name"),
        ({"gpu_nodes": -1}, "--gpu-nodes"),
        ({"gpu_nodes": 0, "cpu_nodes": 0}, "--gpu-nodes/--cpu-nodes"),
        ({"gpus_per_node": 0}, "--gpus-per-node"),
        ({"gpu_product": "has space"}, "--gpu-product"),
        ({"heartbeat_factor": 0.0}, "--heartbeat-factor"),
        ({"addons": ("istio",)}, "--addons"),
        ({"gpu_node_memory": "lots"}, "gpu_node_memory"),
    ],
)
def test_bad_values_are_config_errors_naming_the_flag(kwargs: dict[str, object], flag: str) -> None:
    with pytest.raises(ConfigError) as e:
        SandboxConfig(root=Path("/nonexistent"), **kwargs)  # type: ignore[arg-type]
    assert e.value.source == flag


def test_config_round_trips_through_state(tmp_path: Path) -> None:
    cfg = SandboxConfig(name="x", root=tmp_path, gpu_nodes=3, addons=("keda",))
    assert SandboxConfig.from_dict(cfg.to_dict()) == cfg


def test_gpu_and_cpu_nodes() -> None:
    docs = node_docs(SandboxConfig(root=Path("/r"), gpu_nodes=2, cpu_nodes=1, gpus_per_node=4))
    assert [d["metadata"]["name"] for d in docs] == ["gpu-0", "gpu-1", "cpu-0"]
    gpu, cpu = docs[0], docs[2]
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert gpu["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "4"
    assert gpu["status"]["allocatable"] == gpu["status"]["capacity"]
    assert gpu["status"]["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}]
    path = gpu["metadata"]["annotations"]["metrics.k8s.io/resource-metrics-path"]
    assert path == "/metrics/nodes/gpu-0/metrics/resource"
    assert "nvidia.com/gpu" not in cpu["status"]["capacity"]
    assert cpu["spec"]["taints"] == []
    assert "nvidia.com/gpu.present" not in cpu["metadata"]["labels"]


def test_kwokctl_config_pins_local_binaries_and_the_patches(tmp_path: Path) -> None:
    bins = {b: tmp_path / b for b in (*BINARIES, "prometheus")}
    cfg = SandboxConfig(root=tmp_path)
    doc = yaml.safe_load(
        kwokctl_config(
            cfg,
            bins,
            PORTS,
            tmp_path / "audit.yaml",
            tmp_path / "ms",
            tmp_path / "ca",
            tmp_path / "tsdb",
        )
    )
    opts = doc["options"]
    assert opts["runtime"] == "binary"
    assert opts["bindAddress"] == "127.0.0.1"
    assert opts["kwokControllerBinary"] == str(tmp_path / "kwok")
    assert opts["kubeAuditPolicy"] == str(tmp_path / "audit.yaml")
    assert (opts["kubeApiserverPort"], opts["prometheusPort"]) == (3, 8)
    args = {p["name"]: {a["key"]: a for a in p["extraArgs"]} for p in doc["componentsPatches"]}
    assert args["kube-apiserver"]["endpoint-reconciler-type"]["value"] == "none"
    assert args["metrics-server"]["kubelet-preferred-address-types"]["override"] is True
    assert args["metrics-server"]["kubelet-preferred-address-types"]["value"].startswith("Hostname")
    kcm = args["kube-controller-manager"]
    assert kcm["horizontal-pod-autoscaler-downscale-stabilization"]["value"] == "15s"
    assert kcm["horizontal-pod-autoscaler-sync-period"]["value"] == "5s"
    # a TSDB of the sandbox's own, never Debian's shared /var/lib/prometheus
    assert args["prometheus"]["storage.tsdb.path"]["value"] == str(tmp_path / "tsdb")
    assert args["kwok-controller"]["disregard-status-with-label-selector"]["value"] == (
        "kubedrill.io/process=true"
    )


def test_audit_policy_logs_metadata_for_everything() -> None:
    doc = yaml.safe_load(audit_policy())
    assert doc["kind"] == "Policy"
    assert doc["rules"] == [{"level": "Metadata"}]


def test_aggregated_api_points_an_external_name_service_at_loopback() -> None:
    docs = aggregated_api("custom.metrics.k8s.io", ("v1beta1", "v1beta2"), "monitoring", "pa", 4443)
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "Service", "APIService", "APIService"]
    svc = docs[1]["spec"]
    assert (svc["type"], svc["externalName"]) == ("ExternalName", "127.0.0.1")
    api = docs[3]
    assert api["metadata"]["name"] == "v1beta2.custom.metrics.k8s.io"
    assert api["spec"]["service"] == {"name": "pa", "namespace": "monitoring", "port": 4443}


def test_prebuilt_bin_dir_without_binaries_is_a_precondition(tmp_path: Path) -> None:
    with pytest.raises(PreconditionUnmet) as e:
        resolve_binaries(print, environ={"KUBEDRILL_BIN_DIR": str(tmp_path), "PATH": ""})
    assert "kube-apiserver" in str(e.value)
    assert "make sandbox-build" in e.value.how_to_fix


def test_cli_bad_flag_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SANDBOX_DIR_ENV, str(tmp_path))
    with pytest.raises(SystemExit) as e:
        main(["sandbox", "up", "--gpus-per-node", "0"])
    assert e.value.code == 2
    assert not (tmp_path / "kubedrill").exists()


def test_cli_status_and_env_of_a_sandbox_that_is_not_up_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SANDBOX_DIR_ENV, str(tmp_path))
    for cmd in ("status", "env"):
        with pytest.raises(SystemExit) as e:
            main(["sandbox", cmd])
        assert e.value.code == 1
        assert "is not up" in capsys.readouterr().err
    main(["sandbox", "down"])
    assert "nothing to do" in capsys.readouterr().err
