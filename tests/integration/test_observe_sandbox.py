"""The cluster watcher against the sandbox's real API server and controllers: what the
Deployment controller, the disruption controller and a cordon do lands on the timeline,
and scaling checks judge it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.adapters.kube import KubeAdapter
from kubedrill.checks import CheckResult, expect
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
import os
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


# ------------------------------------------------ scaling and disruption, judged for real


def _hpa(name: str, metrics: list[dict[str, object]], **behavior: object) -> dict[str, object]:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "minReplicas": 1, "maxReplicas": 4, "metrics": metrics,
                 **({"behavior": behavior} if behavior else {})},
    }  # fmt: skip


CPU_50 = [{"type": "Resource", "resource": {"name": "cpu",
           "target": {"type": "Utilization", "averageUtilization": 50}}}]  # fmt: skip
NO_SUCH_METRIC = [{"type": "External", "external": {"metric": {"name": "queue_depth"},
                   "target": {"type": "AverageValue", "averageValue": "5"}}}]  # fmt: skip


def _judge(tl: Timeline, expression: str, phase: str | None = None, **kw: object) -> CheckResult:
    return expect(expression, phase=phase, **kw).evaluate(tl)


def test_a_real_hpa_scales_up_and_down_conformant_and_a_broken_metric_source_fails(
    sandbox: State,
) -> None:
    """The real HPA controller on metrics-server's figures (kwok pod usage): every timing,
    bounds and health check PASSes and the steps conform to the spec; an HPA on an
    external metric nothing serves is a FAIL quoting the controller."""
    from tests.integration.kit import deployment, wait_for

    ns = "scaling"
    adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
    adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    wait_for(lambda: adapter.get("ServiceAccount", ns, "default"), 30, "default SA")
    hot = deployment("web", 1, usage_cpu="90m")  # 90 % of its 100m request
    adapter.apply(hot, ns)
    adapter.apply(deployment("broken", 1), ns)
    tl = Timeline()
    try:
        with ClusterWatcher(adapter, tl, ns) as w:
            w.wait_synced(30)
            wait_for(lambda: (adapter.get("Deployment", ns, "web") or {}).get("status", {})
                     .get("readyReplicas"), 60, "web ready")  # fmt: skip
            with tl.phase("up"):
                down = {
                    "stabilizationWindowSeconds": 10,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}],
                }
                adapter.apply(_hpa("web", CPU_50, scaleDown=down), ns)  # fmt: skip
                adapter.apply(_hpa("broken", NO_SUCH_METRIC), ns)
                wait_for(lambda: (adapter.get("Deployment", ns, "web") or {}).get("status", {})
                         .get("readyReplicas") == 4, 150, "web at 4 Ready")  # fmt: skip
                time.sleep(8)
            with tl.phase("down"):
                for pod in adapter.list("Pod", ns, label_selector="app=web")[0]:
                    adapter.patch("Pod", ns, pod["metadata"]["name"], {"metadata": {
                        "annotations": {"kwok.x-k8s.io/usage-cpu": "5m"}}})  # fmt: skip
                wait_for(lambda: (adapter.get("Deployment", ns, "web") or {}).get("spec", {})
                         .get("replicas") == 1, 150, "web back to 1")  # fmt: skip
                time.sleep(5)
    finally:
        adapter.delete("Namespace", None, ns)
    checks = [
        ("first_scale_up_within: 60s", "up"), ("desired_within: 120s", "up"),
        ("ready_within: 150s", "up"), ("reversals <= 0", "up"), ("pending_within: 30s", "up"),
        ("scale_down_start_within: 120s", "down"), ("scale_down_done_within: 150s", "down"),
        *[(c, p) for c in ("hpa_bounds_violations == 0", "autoscaler_failures == 0")
          for p in ("up", "down")],
    ]  # fmt: skip
    for expression, phase in checks:  # metrics-server needs ~25 s for a new HPA here
        grace = {"grace_s": 40} if expression.startswith("autoscaler") else {}
        r = _judge(tl, expression, phase, object_name="web", **grace)
        assert r.verdict is Verdict.PASS, (expression, r.reason)
    conformant = expect.hpa_conformant("web", ns, phase="up").evaluate(tl)
    assert conformant.verdict is Verdict.PASS, conformant.reason
    conformant = expect.hpa_conformant("web", ns, phase="down").evaluate(tl)
    assert conformant.verdict is Verdict.PASS, conformant.reason
    # the same real run broken by its claim: the scale-up took seconds, never 1 ms
    r = _judge(tl, "ready_within: 1s", "up", object_name="web")
    assert r.verdict is Verdict.FAIL, r.reason
    broken = _judge(tl, "autoscaler_failures == 0", "up", object_name="broken", grace_s=40)
    assert broken.verdict is Verdict.FAIL, broken.reason
    assert "FailedGetExternalMetric" in broken.reason, broken.reason


def test_a_drain_the_pdb_blocks_counts_refusals_and_a_forced_delete_is_a_bypass(
    sandbox: State,
) -> None:
    from kubedrill.observe import evict
    from tests.integration.kit import deployment, pdb, wait_for

    ns = "disrupt"
    adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
    adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    wait_for(lambda: adapter.get("ServiceAccount", ns, "default"), 30, "default SA")
    adapter.apply(deployment("db", 3), ns)
    adapter.apply(pdb("db", "db", minAvailable=3), ns)
    tl = Timeline()
    try:
        with ClusterWatcher(adapter, tl, ns) as w:
            w.wait_synced(30)
            wait_for(lambda: (adapter.get("PodDisruptionBudget", ns, "db") or {})
                     .get("status", {}).get("currentHealthy") == 3, 60, "db healthy")  # fmt: skip
            pods = adapter.list("Pod", ns, label_selector="app=db")[0]
            node = pods[0]["spec"]["nodeName"]
            with tl.phase("drain"):
                adapter.patch("Node", None, node, {"spec": {"unschedulable": True}})
                victims = [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == node]
                for _ in range(3):
                    for name in victims:
                        evict(adapter, tl, ns, name, by="test-drain")
                    time.sleep(1)
                adapter.patch("Node", None, node, {"spec": {"unschedulable": False}})
                time.sleep(2)
            with tl.phase("force"):
                adapter.delete("Pod", ns, victims[0], grace_period_s=0)
                wait_for(lambda: (adapter.get("PodDisruptionBudget", ns, "db") or {})
                         .get("status", {}).get("currentHealthy") == 3, 60, "db back")  # fmt: skip
                time.sleep(2)
    finally:
        adapter.delete("Namespace", None, ns)
    refused = _judge(tl, "evictions_refused >= 1", "drain", pdb="db")
    assert refused.verdict is Verdict.PASS, refused.reason
    assert "disruption budget" in refused.reason.lower(), refused.reason
    for expression in ("pdb_below_s == 0", "pdb_bypasses == 0"):
        r = _judge(tl, expression, "drain", pdb="db")
        assert r.verdict is Verdict.PASS, (expression, r.reason)
    bypass = _judge(tl, "pdb_bypasses == 0", "force", pdb="db")
    assert bypass.verdict is Verdict.FAIL, bypass.reason
    assert f"{victims[0]} deleted" in bypass.reason and "forced" in bypass.reason, bypass.reason
    below = _judge(tl, "pdb_below_s == 0", "force", pdb="db")
    assert below.verdict is Verdict.FAIL and "lowest 2 healthy" in below.reason, below.reason
    back = _judge(tl, "replicas_recover_within: 60s", "force", object_name="db")
    assert back.verdict is Verdict.PASS, back.reason


def test_a_watch_cut_mid_run_loses_no_transition(sandbox: State, tmp_path: Path) -> None:
    """Three cuts of the line between the watcher and the API server while pods churn:
    the cut watch resumes from its resourceVersion and records every pod a direct watch
    saw come and go, with the gaps marked."""
    import signal

    from tests.integration.evidence_cases import cluster_target
    from tests.integration.kit import wait_for

    ns = "cut"
    with cluster_target(sandbox.paths.kubeconfig, tmp_path, ns) as target:
        direct = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
        via = KubeAdapter.from_settings(ClusterSettings(kubeconfig=target.kubeconfig))
        seen, cut = Timeline(), Timeline()
        with (
            ClusterWatcher(direct, seen, ns, kinds=("Pod", "Deployment")) as a,
            ClusterWatcher(via, cut, ns, kinds=("Pod", "Deployment")) as b,
        ):
            a.wait_synced(30)
            b.wait_synced(30)
            for replicas in (4, 1, 3, 1):
                direct.set_replicas("Deployment", ns, "web", replicas)
                time.sleep(0.5)
                os.kill(target.proxy_pid, signal.SIGUSR1)
                time.sleep(1.5)
                os.kill(target.proxy_pid, signal.SIGUSR2)
                wait_for(lambda r=replicas: len(direct.list("Pod", ns)[0]) == r, 60, "pods settle")  # type: ignore[misc]
            time.sleep(5)

    def life(tl: Timeline) -> set[tuple[str, str]]:
        return {(o.data.name, o.data.event if o.data.event == "DELETED" else "seen")
                for o in tl.select(ObjectTransition) if o.data.api_kind == "Pod"}  # fmt: skip

    assert life(cut) == life(seen), life(seen) ^ life(cut)
    states = [o.data.state for o in cut.select(WatchStatus) if o.data.api_kind == "Pod"]
    # cuts that fall inside the watcher's back-off make one longer gap: at least one, and
    # the watch is live again (synced) before it stops
    assert states.count("lost") >= 1 and states[-2:] == ["synced", "stopped"], states
