"""The sandbox against its claims, with the real upstream controllers only: the eviction
API and the disruption controller behind PDBs, kubectl drain, the scheduler with GPU
capacity, node lifecycle and taint eviction, the HPA on metrics-server, and
chaostoolkit-kubernetes run unmodified. One sandbox for the module (~10 s to start).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubedrill.cli import main as kubedrill_main
from kubedrill.sandbox.config import SANDBOX_DIR_ENV
from kubedrill.sandbox.lifecycle import PROGRAMS, down, up
from kubedrill.sandbox.procs import pids_under
from kubedrill.sandbox.state import State, check_health
from tests.integration.kit import (
    GPU_TOLERATION,
    audit_events,
    deployment,
    kubectl,
    pdb,
    pdb_allows,
    pods,
    running,
    wait_for,
)

# ----------------------------------------------------------------------------- tests ---


def test_up_is_idempotent_and_every_component_is_ready(
    sandbox: State, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.monotonic()
    again, reused = up(sandbox.config, print)
    assert reused and again.ports == sandbox.ports
    assert time.monotonic() - t0 < 10
    health = check_health(sandbox)
    assert health.all_ready, health.down()
    assert {c.name for c in health.components} == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok-controller",
        "metrics-server",
        "prometheus",
        "pod-runner",
        "prometheus-adapter",
        "keda-operator",
        "keda-adapter",
    }
    assert (health.nodes_ready, health.gpus) == (4, 16)
    monkeypatch.setenv(SANDBOX_DIR_ENV, str(sandbox.config.root))
    kubedrill_main(["sandbox", "env", "--name", "itest"])
    out = capsys.readouterr().out
    assert f"export KUBECONFIG={sandbox.paths.kubeconfig}" in out
    assert f"# audit log:   {sandbox.paths.audit_log}" in out
    kubedrill_main(["sandbox", "status", "--name", "itest"])
    assert "sandbox itest: ready" in capsys.readouterr().out


def test_gpu_nodes_look_like_gpu_operator_nodes(api: client.ApiClient) -> None:
    node = client.CoreV1Api(api).read_node("gpu-0")
    assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
    assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert [(t.key, t.effect) for t in node.spec.taints] == [("nvidia.com/gpu", "NoSchedule")]
    assert node.status.allocatable["nvidia.com/gpu"] == "8"
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "127.0.0.1"


def test_pdb_refuses_eviction_with_429_and_drain_waits_on_it(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    core, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)
    on_gpu0 = {"kubernetes.io/hostname": "gpu-0"}
    apps.create_namespaced_deployment(
        ns, deployment("guarded", 2, node_selector=on_gpu0, tolerations=[GPU_TOLERATION])
    )
    policy.create_namespaced_pod_disruption_budget(ns, pdb("guarded", "guarded", minAvailable=2))
    victims = running(api, ns, "guarded", 2)
    wait_for(lambda: pdb_allows(api, ns, "guarded", 0, 2), 30, "PDB status: 0 disruptions allowed")

    name = victims[0].metadata.name
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=ns))
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod_eviction(name, ns, body)
    assert refused.value.status == 429
    assert "disruption budget" in str(refused.value.body)

    def audited() -> bool:  # the audit log is the evidence of what chaos touched
        return any(
            e.get("objectRef", {}).get("subresource") == "eviction"
            and e["objectRef"].get("name") == name
            and e.get("responseStatus", {}).get("code") == 429
            for e in audit_events(sandbox.paths.audit_log)
        )

    wait_for(audited, 10, "the refused eviction in the audit log")

    t0 = time.monotonic()
    try:
        drain = kubectl(sandbox, "drain", "gpu-0", "--ignore-daemonsets", "--timeout=8s")
    finally:
        kubectl(sandbox, "uncordon", "gpu-0")
    waited = time.monotonic() - t0
    assert drain.returncode != 0
    assert "disruption budget" in drain.stderr + drain.stdout
    assert waited >= 8, f"drain gave up after {waited:.1f}s instead of waiting on the PDB"
    assert {p.metadata.name for p in running(api, ns, "guarded", 2)} == {
        p.metadata.name for p in victims
    }


def test_drain_succeeds_when_the_pdb_allows_it(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    apps, policy = client.AppsV1Api(api), client.PolicyV1Api(api)
    assert kubectl(sandbox, "cordon", "cpu-0").returncode == 0
    try:
        apps.create_namespaced_deployment(
            ns, deployment("relaxed", 2, node_selector={"kubedrill.io/node-pool": "cpu"})
        )
        before = running(api, ns, "relaxed", 2)
        assert {p.spec.node_name for p in before} == {"cpu-1"}
    finally:
        kubectl(sandbox, "uncordon", "cpu-0")
    policy.create_namespaced_pod_disruption_budget(ns, pdb("relaxed", "relaxed", maxUnavailable=1))
    wait_for(lambda: pdb_allows(api, ns, "relaxed", 1, 2), 30, "PDB status: 1 disruption allowed")
    try:
        drain = kubectl(sandbox, "drain", "cpu-1", "--ignore-daemonsets", "--timeout=90s")
    finally:
        kubectl(sandbox, "uncordon", "cpu-1")
    assert drain.returncode == 0, drain.stderr
    after = running(api, ns, "relaxed", 2)
    assert {p.spec.node_name for p in after} == {"cpu-0"}


def test_pods_wanting_more_gpus_than_nodes_have_stay_pending(
    api: client.ApiClient, ns: str
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    # 3 x 8 GPUs on two 8-GPU nodes: two run, the third cannot be placed anywhere.
    apps.create_namespaced_deployment(
        ns, deployment("trainer", 3, gpus=8, tolerations=[GPU_TOLERATION])
    )
    placed = running(api, ns, "trainer", 2)
    assert sorted(p.spec.node_name for p in placed) == ["gpu-0", "gpu-1"]

    def failed_scheduling() -> list[client.CoreV1Event]:
        events = core.list_namespaced_event(ns, field_selector="reason=FailedScheduling").items
        return [e for e in events if "Insufficient nvidia.com/gpu" in (e.message or "")]

    events = wait_for(failed_scheduling, 30, "a FailedScheduling event naming nvidia.com/gpu")
    pending = [p for p in pods(api, ns, "trainer") if p.status.phase == "Pending"]
    assert len(pending) == 1
    assert events[0].involved_object.name == pending[0].metadata.name
    cond = {c.type: c for c in pending[0].status.conditions}["PodScheduled"]
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in cond.message
    time.sleep(3)
    assert len([p for p in pods(api, ns, "trainer") if p.status.phase == "Running"]) == 2


def _silence(api: client.ApiClient, node: str) -> None:
    """The node's kubelet (kwok) stops heartbeating: another holder takes its Lease, so
    kwok neither renews it nor updates the node's status any more."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {
        "spec": {
            "holderIdentity": "kubedrill-test-silenced",
            "leaseDurationSeconds": 3600,
            "renewTime": now,
        }
    }
    client.CoordinationV1Api(api).patch_namespaced_lease(node, "kube-node-lease", patch)


def _taints(api: client.ApiClient, node: str) -> set[tuple[str, str]]:
    return {(t.key, t.effect) for t in client.CoreV1Api(api).read_node(node).spec.taints or []}


def _node_ready(api: client.ApiClient, node: str) -> str:
    conds = client.CoreV1Api(api).read_node(node).status.conditions or []
    return next((c.status for c in conds if c.type == "Ready"), "Unknown")


def test_silent_node_goes_notready_and_its_pods_are_evicted_per_toleration(
    api: client.ApiClient, ns: str
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    on_gpu1 = {"kubernetes.io/hostname": "gpu-1"}

    def tolerating(seconds: int) -> list[dict[str, Any]]:
        return [GPU_TOLERATION] + [
            {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
            for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
        ]

    apps.create_namespaced_deployment(
        ns, deployment("impatient", 1, node_selector=on_gpu1, tolerations=tolerating(2))
    )
    apps.create_namespaced_deployment(
        ns, deployment("patient", 1, node_selector=on_gpu1, tolerations=tolerating(600))
    )
    impatient = running(api, ns, "impatient", 1)[0].metadata.name
    patient = running(api, ns, "patient", 1)[0].metadata.name

    t0 = time.monotonic()
    _silence(api, "gpu-1")
    try:
        wait_for(lambda: _node_ready(api, "gpu-1") != "True", 45, "gpu-1 NotReady")
        notready_s = time.monotonic() - t0
        unreachable = ("node.kubernetes.io/unreachable", "NoExecute")
        wait_for(lambda: unreachable in _taints(api, "gpu-1"), 15, "the NoExecute taint")

        def evicted() -> bool:  # being deleted, or already gone
            try:
                pod = core.read_namespaced_pod(impatient, ns)
            except ApiException as e:
                return e.status == 404
            return pod.metadata.deletion_timestamp is not None

        wait_for(evicted, 20, "the pod tolerating 2 s to be evicted")
        evicted_s = time.monotonic() - t0
        assert core.read_namespaced_pod(patient, ns).metadata.deletion_timestamp is None
    finally:  # the kubelet comes back: kwok takes a fresh lease and heartbeats again
        client.CoordinationV1Api(api).delete_namespaced_lease("gpu-1", "kube-node-lease")
    assert notready_s < 40, f"NotReady only after {notready_s:.0f}s"
    assert evicted_s - notready_s < 15
    wait_for(lambda: _node_ready(api, "gpu-1") == "True", 30, "gpu-1 Ready again")
    wait_for(
        lambda: (
            not any(
                t.key.startswith("node.kubernetes.io/")
                for t in core.read_node("gpu-1").spec.taints or []
            )
        ),
        30,
        "taints lifted",
    )


def _activity(kind: str, title: str, target: str, **arguments: Any) -> dict[str, Any]:
    """A chaostoolkit activity calling target ("module:func") with arguments."""
    module, func = target.split(":")
    provider = {"type": "python", "module": module, "func": func, "arguments": arguments}
    return {"type": kind, "name": title, "provider": provider}


def test_chaostoolkit_kubernetes_runs_unmodified(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    """`chaos run` (its own process, as users run it) with chaosk8s's terminate_pods and
    drain_nodes, a steady-state probe before and after, and uncordon as the rollback."""
    apps = client.AppsV1Api(api)
    on_cpu = {"kubedrill.io/node-pool": "cpu"}
    apps.create_namespaced_deployment(ns, deployment("victim", 3, node_selector=on_cpu))
    before = {p.metadata.name for p in running(api, ns, "victim", 3)}
    healthy = _activity(
        "probe",
        "victim-healthy",
        "chaosk8s.deployment.probes:deployment_available_and_healthy",
        name="victim",
        ns=ns,
    )
    experiment = {
        "title": "kubedrill sandbox runs chaostoolkit-kubernetes unmodified",
        "description": "terminate a pod, drain a node; the Deployment recovers",
        "steady-state-hypothesis": {
            "title": "victim is healthy",
            "probes": [{**healthy, "tolerance": True}],
        },
        "method": [
            {
                **_activity(
                    "action",
                    "terminate-one",
                    "chaosk8s.pod.actions:terminate_pods",
                    label_selector="app=victim",
                    ns=ns,
                    qty=1,
                ),
                "pauses": {"after": 3},
            },
            {
                **_activity(
                    "action",
                    "drain-cpu-0",
                    "chaosk8s.node.actions:drain_nodes",
                    name="cpu-0",
                    timeout=60,
                ),
                "pauses": {"after": 3},
            },
        ],
        "rollbacks": [
            _activity(
                "action", "uncordon-cpu-0", "chaosk8s.node.actions:uncordon_node", name="cpu-0"
            )
        ],
    }
    (tmp_path / "experiment.json").write_text(json.dumps(experiment))
    (tmp_path / "settings.yaml").write_text("{}\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECONFIG": str(sandbox.paths.kubeconfig),
        "KUBERNETES_VERIFY_SSL": "true",
    }
    chaos = Path(sys.executable).parent / "chaos"
    proc = subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "--no-log-file",
            f"--settings={tmp_path / 'settings.yaml'}",
            "run",
            "--journal-path=journal.json",
            "--rollback-strategy=always",
            "experiment.json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    journal = json.loads((tmp_path / "journal.json").read_text())
    runs = journal["run"] + journal["rollbacks"]
    ran = {r["activity"]["name"]: r["status"] for r in runs}
    why = ["".join(r["exception"][-2:]) for r in runs if r.get("exception")]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert ran == {
        "terminate-one": "succeeded",
        "drain-cpu-0": "succeeded",
        "uncordon-cpu-0": "succeeded",
    }, why
    after = {p.metadata.name: p.spec.node_name for p in running(api, ns, "victim", 3)}
    assert set(after.values()) == {"cpu-1"}, after
    assert len(before - set(after)) >= 1
    assert not client.CoreV1Api(api).read_node("cpu-0").spec.unschedulable


def test_keda_scaledobject_with_a_prometheus_trigger_scales(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    """KEDA's operator, its gRPC metrics service, keda-adapter behind external.metrics.k8s.io,
    Prometheus and the HPA controller, end to end: `vector(8)` against a threshold of 2
    asks for 4 replicas."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        ns, deployment("worker", 1, node_selector={"kubedrill.io/node-pool": "cpu"})
    )
    trigger = {"serverAddress": sandbox.prometheus_url, "query": "vector(8)", "threshold": "2"}
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "keda.sh", "v1alpha1", ns, "scaledobjects",
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker"},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "pollingInterval": 5,
                "minReplicaCount": 1,
                "maxReplicaCount": 6,
                "triggers": [{"type": "prometheus", "metadata": trigger}],
            },
        },
    )  # fmt: skip
    replicas = lambda: apps.read_namespaced_deployment("worker", ns).spec.replicas  # noqa: E731
    wait_for(lambda: replicas() == 4, 60, "KEDA to scale worker to 4")
    running(api, ns, "worker", 4)
    path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/s0-prometheus"
    doc = json.loads(
        kubectl(
            sandbox, "get", "--raw", f"{path}?labelSelector=scaledobject.keda.sh%2Fname%3Dworker"
        ).stdout
    )
    assert [i["value"] for i in doc["items"]] == ["8"]


def test_down_leaves_no_process_and_no_state(sandbox: State) -> None:
    paths = sandbox.paths
    assert pids_under(paths.dir, PROGRAMS)
    down(paths, print)
    assert pids_under(paths.dir, PROGRAMS) == []
    assert not paths.dir.exists()
    out = subprocess.run(
        ["pgrep", "-f", str(paths.dir)], capture_output=True, text=True, check=False
    )
    assert out.stdout.strip() == "", out.stdout
