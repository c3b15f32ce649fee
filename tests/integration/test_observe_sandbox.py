"""The cluster watcher against the sandbox's real API server and controllers: what the
Deployment controller, the disruption controller and a cordon do lands on the timeline,
and scaling checks judge it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.adapters.kube import KubeAdapter
from kubedrill.checks import expect
from kubedrill.core.errors import PreconditionUnmet
from kubedrill.core.settings import ClusterSettings
from kubedrill.core.types import Verdict
from kubedrill.observe import ClusterWatcher
from kubedrill.sandbox.config import SandboxConfig
from kubedrill.sandbox.lifecycle import down, up
from kubedrill.sandbox.state import State
from kubedrill.timeline import ObjectTransition, Timeline, WatchStatus

NS = "observe"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    cfg = SandboxConfig(name="observe", root=tmp_path_factory.mktemp("sb"), addons=())
    try:
        state, _ = up(cfg, print)
    except PreconditionUnmet as e:
        pytest.skip(str(e))
    yield state
    down(cfg.paths, print)


def _deployment(replicas: int) -> dict[str, object]:
    labels = {"app": "svc"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "svc", "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "fake"}]}}},
    }  # fmt: skip


def test_watcher_sees_scaling_pdb_and_cordon(sandbox: State) -> None:
    from kubernetes import client

    adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
    apps = client.AppsV1Api(adapter.api_client)
    core = client.CoreV1Api(adapter.api_client)
    policy = client.PolicyV1Api(adapter.api_client)
    core.create_namespace({"metadata": {"name": NS}})
    apps.create_namespaced_deployment(NS, _deployment(1))
    policy.create_namespaced_pod_disruption_budget(NS, {
        "metadata": {"name": "svc"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "svc"}}}})  # fmt: skip
    node = core.list_node().items[0].metadata.name
    tl = Timeline()
    with ClusterWatcher(
        adapter, tl, NS, kinds=("Deployment", "PodDisruptionBudget", "Node", "Pod")
    ) as w:
        assert w.synced.wait(30)
        with tl.phase("scale"):
            apps.patch_namespaced_deployment_scale("svc", NS, {"spec": {"replicas": 3}})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                dep = apps.read_namespaced_deployment("svc", NS)
                if (dep.status.ready_replicas or 0) >= 3:
                    break
                time.sleep(0.5)
            time.sleep(2)
        core.patch_node(node, {"spec": {"unschedulable": True}})
        time.sleep(2)
        core.patch_node(node, {"spec": {"unschedulable": False}})
        time.sleep(2)
    ok = expect("scale_up_within: 60s", phase="scale", object_name="svc", target=3).evaluate(tl)
    assert ok.verdict is Verdict.PASS, ok.reason
    too_fast = expect("scale_up_within: 1ms", phase="scale", object_name="svc", target=3).evaluate(
        tl
    )
    assert too_fast.verdict is Verdict.FAIL, too_fast.reason
    pdb = [
        o.data.fields
        for o in tl.select(ObjectTransition)
        if o.data.api_kind == "PodDisruptionBudget"
    ]
    assert any(f["disruptions_allowed"] == 2 for f in pdb), pdb
    cordon = [o.data.fields["unschedulable"] for o in tl.select(ObjectTransition)
              if o.data.api_kind == "Node" and o.data.name == node]  # fmt: skip
    assert True in cordon and cordon[-1] is False
    pods = {o.data.name for o in tl.select(ObjectTransition) if o.data.api_kind == "Pod"}
    assert len(pods) >= 3


SCENARIO = """
import time
from kubernetes import client, config

def test_scale(drill, cluster_watch):
    drill.expect("scale_up_within: 60s", phase="scale", object_name="web", target=2)
    drill.expect("replicas >= 1", phase="scale", object_name="web")
    api = config.new_client_from_config(config_file=str(drill.settings.cluster.kubeconfig))
    apps = client.AppsV1Api(api)
    with drill.phase("scale"):
        apps.patch_namespaced_deployment_scale("web", "{ns}", {{"spec": {{"replicas": 2}}}})
        deadline = time.monotonic() + 60
        while (apps.read_namespaced_deployment("web", "{ns}").status.ready_replicas or 0) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(1)
"""


def test_cluster_watch_fixture_feeds_scenario_checks(
    sandbox: State, pytester: pytest.Pytester
) -> None:
    from kubernetes import client

    ns = "fixture"
    adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
    client.CoreV1Api(adapter.api_client).create_namespace({"metadata": {"name": ns}})
    dep = _deployment(1)
    dep["metadata"] = {"name": "web", "namespace": ns}
    client.AppsV1Api(adapter.api_client).create_namespaced_deployment(ns, dep)
    pytester.makepyfile(test_s=SCENARIO.format(ns=ns))
    result = pytester.runpytest_subprocess(
        "--drill-kubeconfig",
        str(sandbox.paths.kubeconfig),
        "--drill-namespace",
        ns,
        "--drill-report-dir",
        "reports",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*verdict: PASS (2 PASS)*"])


def test_a_first_list_the_api_server_forbids_names_the_verb_and_resource(
    sandbox: State, tmp_path: Path
) -> None:
    """A ServiceAccount with no RBAC at all, through a real token: the API server's 403 on
    the first LIST is an error naming the verb and the resource, not a silent no-sync."""
    import yaml
    from kubernetes import client

    admin = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
    core = client.CoreV1Api(admin.api_client)
    ns = "rbac-probe"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        core.create_namespaced_service_account(ns, {"metadata": {"name": "nobody"}})
        token = core.create_namespaced_service_account_token(
            "nobody", ns, {"spec": {"expirationSeconds": 600}}
        ).status.token
        doc = yaml.safe_load(sandbox.paths.kubeconfig.read_text())
        doc["users"] = [{"name": "nobody", "user": {"token": token}}]
        for ctx in doc["contexts"]:
            ctx["context"]["user"] = "nobody"
        limited = tmp_path / "nobody.kubeconfig"
        limited.write_text(yaml.safe_dump(doc))
        adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=limited))
        tl = Timeline()
        w = ClusterWatcher(adapter, tl, ns, kinds=("Deployment", "Pod"))
        with w, pytest.raises(PreconditionUnmet) as e:
            w.wait_synced(20)
        text = str(e.value)
        assert "forbidden (HTTP 403)" in text
        assert "cannot list deployments in namespace rbac-probe" in text or (
            "cannot list pods in namespace rbac-probe" in text
        )
        assert "`list` and `watch`" in text
        assert "synced" not in [o.data.state for o in tl.select(WatchStatus)]
    finally:
        core.delete_namespace(ns)
