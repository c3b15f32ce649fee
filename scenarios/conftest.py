"""Fixtures of the demo suite: the reference inference service as a real local process,
scraped by a real Prometheus, and the same service deployed on a cluster (the sandbox's
process-backed pods, by `kubedrill run --sandbox`). Scenarios drive real Locust load."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubedrill import Drill
from kubedrill.adapters.kube import KubeAdapter
from kubedrill.adapters.localprom import LocalPrometheus, run_prometheus, wait_for_series
from kubedrill.observe import ClusterWatcher
from kubedrill.refservice.testing import RunningService, run_service

# The reference service as its runbook describes one replica: 4 concurrent GPU streams,
# 10 ms per request, so about 400 requests/s of capacity.
SLOTS = 4
SERVICE_TIME_MS = 10


@pytest.fixture(scope="module")
def reference_service() -> Iterator[RunningService]:
    with run_service(mode="emulated", slots=SLOTS, service_time_ms=SERVICE_TIME_MS) as svc:
        yield svc


@pytest.fixture(scope="module")
def prometheus(reference_service: RunningService) -> Iterator[LocalPrometheus]:
    target = f"127.0.0.1:{reference_service.port}"
    labels = {"refservice": {"namespace": "local", "pod": "reference-inference-0"}}
    with run_prometheus({"refservice": [target]}, interval_s=1.0, labels=labels) as prom:
        wait_for_series(prom.url, 'up{job="refservice"} == 1')
        yield prom


# --- the same service deployed on a cluster (the sandbox, or one you point at) ----------

PROFILE = Path(__file__).resolve().parents[1] / "experiments/profiles/reference-service.yaml"


@dataclass(frozen=True)
class DeployedService:
    name: str
    namespace: str
    url: str  # how load reaches it: the Service's local URL in the sandbox, or --target-url
    adapter: KubeAdapter


def _wait(what: str, timeout_s: float, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.5)
    return value


@pytest.fixture
def reference_on_cluster(drill: Drill, cluster_watch: ClusterWatcher) -> Iterator[DeployedService]:
    """Deploys experiments/profiles/reference-service.yaml into the run's namespace, waits
    for its replicas, yields where to send load, and removes what it deployed."""
    settings = drill.settings
    ns = settings.target.namespace
    adapter = KubeAdapter.from_settings(settings.cluster)
    docs = [d for d in yaml.safe_load_all(PROFILE.read_text()) if d]
    name = next(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment")
    if drill.dry_run:
        yield DeployedService(name, ns, settings.target.url or "", adapter)
        return
    if ns != "default":
        ns_doc = adapter.get("Namespace", None, ns)
        if ns_doc and ns_doc.get("metadata", {}).get("deletionTimestamp"):
            _wait(f"namespace {ns} left over from an earlier run to go", 90,
                  lambda: adapter.get("Namespace", None, ns) is None)  # fmt: skip
        adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for doc in docs:
        adapter.apply(doc, namespace=ns)
    try:
        want = next(d["spec"]["replicas"] for d in docs if d["kind"] == "Deployment")
        _wait(f"{want} ready replicas of {name}", 150, lambda: (
            (adapter.get("Deployment", ns, name) or {}).get("status", {}).get("readyReplicas", 0)
            >= want
        ))  # fmt: skip
        url = settings.target.url or _wait(
            f"Service {ns}/{name} to get a local URL (kubedrill.io/local-url; on a real "
            "cluster pass --target-url)",
            30,
            lambda: (
                (adapter.get("Service", ns, name) or {})
                .get("metadata", {})
                .get("annotations", {})
                .get("kubedrill.io/local-url")
            ),
        )
        yield DeployedService(name, ns, str(url), adapter)
    finally:
        for doc in reversed(docs):
            adapter.delete(doc["kind"], ns, doc["metadata"]["name"])
