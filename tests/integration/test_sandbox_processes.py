"""Process-backed pods in the sandbox: real local processes behind real controllers.

The reference service runs as the pods of Deployments; its real CPU use drives the HPA
through metrics-server, its real queue depth drives an HPA on a Pods metric
(prometheus-adapter) and a KEDA ScaledObject (Prometheus), and the Service-like proxy
sends traffic to ready pods only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from kubedrill.sandbox.state import State
from tests.integration.kit import (
    Load,
    kubectl,
    local_url,
    pod_port,
    pods,
    process_deployment,
    service,
    wait_for,
)


def _pid(pod: client.V1Pod) -> int:
    cid = pod.status.container_statuses[0].container_id  # process://<pid>
    return int(cid.rsplit("/", 1)[1])


def _ready_pods(api: client.ApiClient, ns: str, app: str, count: int) -> list[client.V1Pod]:
    def check() -> list[client.V1Pod]:
        ps = [
            p
            for p in pods(api, ns, app)
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return ps if len(ps) == count else []

    return wait_for(check, 60, f"{count} Ready pods of {app}")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _try_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def _prom(sandbox: State, query: str) -> list[dict[str, Any]]:
    q = urllib.parse.quote(query)
    return list(_get_json(f"{sandbox.prometheus_url}/api/v1/query?query={q}")["data"]["result"])


def _exists(core: client.CoreV1Api, ns: str, name: str) -> bool:
    return any(p.metadata.name == name for p in core.list_namespaced_pod(ns).items)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_process_backed_pod_is_run_probed_restarted_and_stopped_like_a_kubelet_would(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, process_deployment("svc", 1, ["--startup-delay-s", "3"]))
    pod = wait_for(lambda: [p for p in pods(api, ns, "svc") if p.status.pod_ip], 30, "a pod IP")[0]
    # running, but not Ready until the service's /ready answers (3 s model load)
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip.startswith("10.244.")
    ready = {c.type: c.status for c in pod.status.conditions}
    assert ready["Ready"] == "False", ready
    pid = _pid(pod)
    with open(f"/proc/{pid}/environ") as f:
        env = dict(e.split("=", 1) for e in f.read().split("\0") if "=" in e)
    assert env["POD_NAME"] == pod.metadata.name and env["POD_NAMESPACE"] == ns
    assert int(env["PORT"]) == pod_port(pod)
    pod = _ready_pods(api, ns, "svc", 1)[0]
    t_ready = pod.status.conditions[-1].last_transition_time
    assert (t_ready - pod.status.start_time).total_seconds() >= 2

    # Prometheus scrapes the process with the pod's namespace and name as labels
    query = f'refservice_ready{{namespace="{ns}",pod="{pod.metadata.name}"}}'
    series = wait_for(lambda: _prom(sandbox, query), 30, "the pod's series in Prometheus")
    assert series[0]["metric"]["job"] == "kubedrill-pods"

    # a crash is restarted per restartPolicy: Always
    os.kill(pid, signal.SIGKILL)

    def restarted() -> client.V1Pod | None:
        p = core.read_namespaced_pod(pod.metadata.name, ns)
        cs = p.status.container_statuses[0]
        return p if cs.restart_count == 1 and cs.ready else None

    pod = wait_for(restarted, 30, "a restart after SIGKILL")
    cs = pod.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 137
    new_pid = _pid(pod)
    assert new_pid != pid and _alive(new_pid)

    # deletion: SIGTERM, the service drains and exits, then the pod object goes away
    t0 = time.monotonic()
    core.delete_namespaced_pod(pod.metadata.name, ns)
    wait_for(lambda: not _alive(new_pid), 10, "the process to exit on SIGTERM", every_s=0.1)
    wait_for(lambda: not _exists(core, ns, pod.metadata.name), 15, "the pod object removed")
    assert time.monotonic() - t0 < 5  # well inside the 5 s grace: it honoured SIGTERM
    log = (sandbox.paths.dir / "pods" / ns / pod.metadata.name / "app.log").read_text()
    assert "signal received: draining" in log, log[-800:]


def test_grace_period_is_honoured_then_sigkill(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    """A process that ignores SIGTERM keeps running for terminationGracePeriodSeconds, then
    is killed, and only then is the pod removed."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    stubborn = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    dep = process_deployment(
        "stubborn", 1, ["-c", stubborn], command=["python"], grace_s=3, probe={}
    )
    apps.create_namespaced_deployment(ns, dep)
    pod = _ready_pods(api, ns, "stubborn", 1)[0]
    pid = _pid(pod)
    apps.delete_namespaced_deployment("stubborn", ns)  # pods go with it (background GC)
    t0 = time.monotonic()
    wait_for(lambda: pods(api, ns, "stubborn") == [], 10, "the pod to be terminating")
    time.sleep(1.5)
    assert _alive(pid), "SIGKILLed before the grace period was over"
    assert _exists(core, ns, pod.metadata.name), "pod removed while its process still ran"
    wait_for(lambda: not _alive(pid), 10, "SIGKILL after the grace period", every_s=0.1)
    assert 2.5 <= time.monotonic() - t0 <= 8
    wait_for(lambda: not _exists(core, ns, pod.metadata.name), 10, "the pod object removed")


def test_the_service_proxy_sends_traffic_to_ready_pods_only(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    """Through the Service's local URL: a deleted pod stops getting connections at once
    (no failed request), and its replacement starts getting them once Ready."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, process_deployment("web", 2, ["--startup-delay-s", "1"]))
    core.create_namespaced_service(ns, service("web"))
    first = _ready_pods(api, ns, "web", 2)
    url = local_url(api, ns, "web")
    wait_for(lambda: _try_get(f"{url}/health"), 20, "the proxy to have ready backends")
    with Load(url, 4, keep_alive=False, max_s=60) as load:
        time.sleep(2)
        victim = first[0]
        core.delete_namespaced_pod(victim.metadata.name, ns)
        time.sleep(2)
        errors_at_deletion = load.errors
        before = {p.metadata.name for p in first}
        new = wait_for(
            lambda: [p for p in _ready_pods(api, ns, "web", 2) if p.metadata.name not in before],
            60,
            "a Ready replacement",
        )[0]
        port = pod_port(new)

        def served() -> float:
            text = _try_get(f"http://127.0.0.1:{port}/metrics") or ""
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("refservice_requests_total{")
            )

        wait_for(served, 20, "the replacement pod to receive proxied requests")
    assert load.ok > 100
    # at most a request caught mid-connection at the deletion; none afterwards
    assert errors_at_deletion <= 2, f"{errors_at_deletion} failed around the deletion"
    assert load.errors == errors_at_deletion, f"{load.errors} failed of {load.ok + load.errors}"


def _hpa(name: str, metrics: list[dict[str, Any]], max_replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": metrics,
        },
    }


def test_hpa_on_cpu_scales_process_pods_up_under_real_work_and_back_down(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    """Issue test 1: the HPA reads CPU that the service's processes really burn (measured
    from /proc by the pod runner, served by kwok, scraped by metrics-server)."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    auto = client.AutoscalingV2Api(api)
    apps.create_namespaced_deployment(ns, process_deployment("cpu", 1, cpu="50m"))
    core.create_namespaced_service(ns, service("cpu"))
    cpu_target = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}
    auto.create_namespaced_horizontal_pod_autoscaler(
        ns, _hpa("cpu", [{"type": "Resource", "resource": cpu_target}])
    )
    _ready_pods(api, ns, "cpu", 1)
    url = local_url(api, ns, "cpu")

    def utilization() -> int | None:
        st = auto.read_namespaced_horizontal_pod_autoscaler("cpu", ns).status
        for m in st.current_metrics or []:
            if m.resource and m.resource.current.average_utilization is not None:
                return int(m.resource.current.average_utilization) + 1  # 0 % is a reading
        return None

    wait_for(utilization, 60, "the HPA to read CPU from metrics.k8s.io")
    replicas = lambda: apps.read_namespaced_deployment("cpu", ns).spec.replicas  # noqa: E731
    with Load(url, 6, max_s=150):
        wait_for(lambda: replicas() >= 2, 120, "scale-up under load", every_s=1)
        notes = [p.metadata.annotations or {} for p in pods(api, ns, "cpu")]
        busy = max(int(n.get("kwok.x-k8s.io/usage-cpu", "0m").removesuffix("m")) for n in notes)
        assert busy > 30, notes  # millicores really burnt by a pod, well above idle
    wait_for(lambda: replicas() == 1, 150, "scale-down once the load stops", every_s=1)


def test_pods_metric_hpa_and_keda_scale_the_service_on_queue_depth(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    """Issue test 2: the service's own queue-depth gauge, scraped per pod, drives an HPA
    on a Pods metric through prometheus-adapter and a KEDA ScaledObject through its
    Prometheus trigger."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    slow = ["--slots", "1", "--service-time-ms", "100", "--max-queue", "64"]
    for name in ("hpa", "keda"):
        apps.create_namespaced_deployment(ns, process_deployment(name, 1, slow, cpu="20m"))
        core.create_namespaced_service(ns, service(name))
    queue = {"name": "refservice_queue_depth"}
    pods_metric = {"metric": queue, "target": {"type": "AverageValue", "averageValue": "2"}}
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        ns, _hpa("hpa", [{"type": "Pods", "pods": pods_metric}], max_replicas=4)
    )
    trigger = {
        "serverAddress": sandbox.prometheus_url,
        "query": f'sum(refservice_queue_depth{{namespace="{ns}",pod=~"keda-.*"}})',
        "threshold": "2",
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "keda.sh", "v1alpha1", ns, "scaledobjects",
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "keda"},
            "spec": {
                "scaleTargetRef": {"name": "keda"},
                "pollingInterval": 2,
                "cooldownPeriod": 10,
                "minReplicaCount": 1,
                "maxReplicaCount": 4,
                "triggers": [{"type": "prometheus", "metadata": trigger}],
            },
        },
    )  # fmt: skip
    _ready_pods(api, ns, "hpa", 1)
    _ready_pods(api, ns, "keda", 1)
    replicas = lambda n: apps.read_namespaced_deployment(n, ns).spec.replicas  # noqa: E731
    with Load(local_url(api, ns, "hpa"), 8, max_s=150), Load(local_url(api, ns, "keda"), 8):
        wait_for(lambda: replicas("hpa") >= 2, 120, "the Pods-metric HPA to scale up", 1)
        wait_for(lambda: replicas("keda") >= 2, 120, "KEDA to scale up", 1)
        raw = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/pods/*/refservice_queue_depth"
        doc = json.loads(kubectl(sandbox, "get", "--raw", raw).stdout)
        assert doc["items"], doc


def _service_ms(port: int) -> float:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/infer",
        data=b"{}",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return float(json.loads(resp.read())["timings"]["service_ms"])


def test_virtual_gpus_contention_and_dcgm_metrics(
    sandbox: State, api: client.ApiClient, ns: str
) -> None:
    """Pods get distinct device ids on their node; the GPU saturation burner's ledger entry
    slows exactly the pod on that device; DCGM-named series carry Hostname/namespace/pod."""
    apps = client.AppsV1Api(api)
    args = ["--slots", "1", "--service-time-ms", "20", "--service-time-jitter-ms", "0",
            "--busy-ledger", "$(KUBEDRILL_GPU_LEDGER)"]  # fmt: skip
    apps.create_namespaced_deployment(
        ns, process_deployment("gpu", 2, args, gpus=1, node="gpu-1", cpu="10m")
    )
    pair = _ready_pods(api, ns, "gpu", 2)
    devices = {p.metadata.name: p.metadata.annotations["kubedrill.io/gpu-devices"] for p in pair}
    assert sorted(devices.values()) == ["0", "1"], devices
    ledger = sandbox.paths.dir / "gpus" / "gpu-1"
    assigned = json.loads((ledger / "assignments.json").read_text())
    assert {assigned[d]["pod"] for d in devices.values()} == set(devices)

    victim, bystander = pair
    dev = devices[victim.metadata.name]
    util = f'DCGM_FI_DEV_GPU_UTIL{{Hostname="gpu-1",gpu="{dev}",namespace="{ns}"}}'
    series = wait_for(lambda: _prom(sandbox, util), 30, "DCGM series for the pod's GPU")
    assert series[0]["metric"]["pod"] == victim.metadata.name
    assert _service_ms(pod_port(victim)) == pytest.approx(20, abs=2)

    burner = subprocess.Popen(
        [sys.executable, "-m", "gpu_bench", "burn", "--busy", "0.8", "--duration", "20",
         "--devices", dev, "--ledger", str(ledger), "--cuda", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        slow = wait_for(
            lambda: (ms := _service_ms(pod_port(victim))) > 80 and ms, 15, "the burner to bite"
        )
        assert slow == pytest.approx(100, rel=0.1)  # 20 ms / (1 - 0.8)
        assert _service_ms(pod_port(bystander)) == pytest.approx(20, abs=2)  # other device
        busy = f"{util} >= 80"
        wait_for(lambda: _prom(sandbox, busy), 20, "DCGM_FI_DEV_GPU_UTIL >= 80 for that GPU")
        engine = f'DCGM_FI_PROF_GR_ENGINE_ACTIVE{{Hostname="gpu-1",gpu="{dev}"}}'
        assert float(_prom(sandbox, engine)[0]["value"][1]) >= 0.8
    finally:
        burner.send_signal(signal.SIGTERM)
        _, err = burner.communicate(timeout=15)
    assert burner.returncode == 0, err.decode()[-1000:]
    assert not (ledger / dev).exists()  # the burner removed its entry
    wait_for(lambda: _service_ms(pod_port(victim)) < 25, 10, "the service to recover")
