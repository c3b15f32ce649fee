"""The Chaos Toolkit experiments in experiments/, run as users run them — ``chaos run`` in
its own process (through kubedrill.chaos.ctk.runner) — against the sandbox: the real API
server, Eviction API, disruption controller and scheduler. What chaos wrote is checked in
the API server's audit log and against the API, not only in our own journals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from kubedrill.chaos.ctk import CtkRun, run_experiment
from kubedrill.chaos.ctk.runner import find_chaos
from kubedrill.chaos.undo import MARKS
from kubedrill.sandbox.state import State
from kubedrill.timeline import ChaosMarker, Timeline
from tests.integration.kit import (
    audit_events,
    deployment,
    pdb,
    pdb_allows,
    pods,
    process_deployment,
    running,
    wait_for,
)

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
ON_CPU = {"kubedrill.io/node-pool": "cpu"}
CHAOS_WRITES = {("nodes", None), ("pods", "eviction"), ("pods", None), ("jobs", None)}


def _env(sandbox: State, ns: str, tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),  # no ~/.chaostoolkit/settings.yaml of the user's
        "KUBECONFIG": str(sandbox.paths.kubeconfig),
        "KUBEDRILL_CHAOS_CONTEXTS": "kwok-*",
        "KUBEDRILL_CHAOS_NODES": "gpu-*,cpu-*",
        "KUBEDRILL_CHAOS_NAMESPACES": ns,
        "KUBEDRILL_TARGET_NAMESPACE": ns,
        "KUBEDRILL_CHAOS_JOURNAL": str(tmp_path / "chaos-journal.jsonl"),
        **more,
    }


def _run(name: str, env: dict[str, str], tmp_path: Path, timeline: Timeline) -> CtkRun:
    return run_experiment(EXPERIMENTS / name, env, timeline, tmp_path / "ctk", timeout_s=150)


def _why(run: CtkRun) -> str:
    return f"{run.reason}\n{run.log_path.read_text()[-3000:]}"


def _writes_by_us(sandbox: State, since: int, where: Callable[[dict[str, Any]], bool]) -> list:
    """Writes from the Python kube client (kubedrill's, not the controllers') after line
    ``since`` of the audit log that ``where`` keeps."""
    out = []
    for e in audit_events(sandbox.paths.audit_log)[since:]:
        ref = e.get("objectRef") or {}
        if (
            e.get("stage") == "ResponseComplete"
            and e.get("verb") in ("create", "patch", "update", "delete")
            and "python" in e.get("userAgent", "")
            and (ref.get("resource"), ref.get("subresource")) in CHAOS_WRITES
            and where(e)
        ):
            out.append(e)
    return out


def _flush_audit(sandbox: State, api: client.ApiClient, ns: str, name: str) -> None:
    """Write a sentinel and wait for it in the audit log: everything before it is there."""
    client.CoreV1Api(api).create_namespaced_config_map(ns, {"metadata": {"name": name}})

    def seen() -> bool:
        return any(
            (e.get("objectRef") or {}).get("name") == name
            for e in audit_events(sandbox.paths.audit_log)
        )

    wait_for(seen, 20, f"the sentinel {name} in the audit log")


def _activities(run: CtkRun) -> list[dict[str, Any]]:
    return [json.loads(x) for x in run.activities_path.read_text().splitlines() if x.strip()]


def _markers(timeline: Timeline) -> list[tuple[str, str, str]]:
    return [(o.data.action, o.data.target, o.data.stage) for o in timeline.select(ChaosMarker)]


def _web(api: client.ApiClient, ns: str, replicas: int = 2) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(
        ns, deployment("web", replicas, node_selector=ON_CPU)
    )
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        ns, pdb("web", "web", minAvailable=1)
    )
    running(api, ns, "web", replicas)
    wait_for(lambda: pdb_allows(api, ns, "web", 1, replicas), 30, "PDB: 1 disruption allowed")


def test_node_drain_experiment_cordons_evicts_and_uncordons(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    _web(api, ns)
    since = len(audit_events(sandbox.paths.audit_log))
    timeline = Timeline()
    env = _env(sandbox, ns, tmp_path, KD_SELECTOR="app=web", KD_DEPLOYMENT="web", KD_HOLD_S="2s")
    run = _run("node-drain.json", env, tmp_path, timeline)
    assert run.ok, _why(run)

    node = run.journal["run"][0]["output"]["targets"][0]
    assert node.startswith("cpu-")
    # the API server saw: a patch of the node (the cordon), evictions of our pods, a patch
    # of the node (the uncordon), in that order
    _flush_audit(sandbox, api, ns, "after-drain")

    def on_node_or_ns(e: dict[str, Any]) -> bool:
        ref = e["objectRef"]
        return ref.get("name") == node or ref.get("namespace") == ns

    seq = [
        (e["objectRef"]["resource"], e["objectRef"].get("subresource"), e["responseStatus"]["code"])
        for e in _writes_by_us(sandbox, since, on_node_or_ns)
    ]
    assert seq[0] == ("nodes", None, 200), seq
    assert seq[-1] == ("nodes", None, 200), seq
    assert ("pods", "eviction", 201) in seq[1:-1], seq
    assert len([s for s in seq if s[0] == "nodes"]) == 2, seq
    # and afterwards, checked against the API: schedulable, unmarked, the pods moved away
    obj = client.CoreV1Api(api).read_node(node)
    assert not obj.spec.unschedulable
    assert not set(obj.metadata.annotations or {}) & set(MARKS)
    wait_for(lambda: len(running(api, ns, "web", 2)) == 2, 30, "web back to 2 Running")
    assert all(p.spec.node_name != node for p in pods(api, ns, "web"))

    assert [m for m in _markers(timeline) if m[1] == node] == [
        ("node_drain", node, "journaled"),
        ("node_drain", node, "injected"),
        ("node_drain", node, "rolled_back"),
    ]
    lines = _activities(run)
    done = [x for x in lines if x["event"] == "activity"]
    assert [x["name"] for x in done] == [
        "deployment-back-to-desired",
        "nodes-schedulable",
        "no-chaos-leftovers",
        "drain-the-node-of-the-target",
        "deployment-back-to-desired",
        "nodes-schedulable",
        "no-chaos-leftovers",
        "undo-chaos-leftovers",
    ]
    assert {x["status"] for x in done} == {"succeeded"}
    assert all(x["start"] and x["end"] for x in done)
    assert lines[0]["event"] == "experiment-started"
    assert lines[-1]["event"] == "experiment-finished"
    assert lines[-1]["status"] == "completed"


def test_a_refused_action_fails_its_activity_and_writes_nothing(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    _web(api, ns)
    since = len(audit_events(sandbox.paths.audit_log))
    timeline = Timeline()
    env = _env(sandbox, ns, tmp_path, KD_SELECTOR="app=nothing", KD_DEPLOYMENT="web")
    run = _run("node-drain.json", env, tmp_path, timeline)
    # the trap: chaos run says completed and exits 0, the hypothesis held; the action failed
    assert (run.status, run.returncode, run.deviated) == ("completed", 0, False), _why(run)
    assert not run.ok
    assert len(run.failed) == 1
    assert run.failed[0].startswith("drain-the-node-of-the-target (action): node_drain: ")
    assert "'app=nothing' matches no scheduled pod" in run.failed[0]

    _flush_audit(sandbox, api, ns, "after-refusal")

    def nodes_or_ns(e: dict[str, Any]) -> bool:
        return e["objectRef"]["resource"] == "nodes" or e["objectRef"].get("namespace") == ns

    assert _writes_by_us(sandbox, since, nodes_or_ns) == []
    assert [m[2] for m in _markers(timeline)] == ["refused"]
    assert not (tmp_path / "chaos-journal.jsonl").exists()  # no intent was ever journaled
    nodes = client.CoreV1Api(api).list_node().items
    assert not [n.metadata.name for n in nodes if n.spec.unschedulable]
    action = next(x for x in _activities(run) if x["event"] == "activity" and x["type"] == "action")
    assert action["status"] == "failed"
    assert "matches no scheduled pod" in action["error"]


def _chaos_run_until_cordoned(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], str, Path, Path]:
    """``chaos run experiments/node-drain.json`` as a user types it, held 90 s; returns
    once the node is cordoned (per the API)."""
    spool, acts = tmp_path / "spool.jsonl", tmp_path / "acts.jsonl"
    env = _env(sandbox, ns, tmp_path, KD_SELECTOR="app=web", KD_DEPLOYMENT="web", KD_HOLD_S="90s")
    env.update({"KUBEDRILL_TIMELINE_SPOOL": str(spool), "KUBEDRILL_CTK_ACTIVITIES": str(acts)})
    spool.touch()
    cmd = [str(find_chaos()), "--no-version-check", "--no-log-file", "run"]
    with (tmp_path / "out.txt").open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, str(EXPERIMENTS / "node-drain.json")],
            cwd=tmp_path,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def cordoned() -> str:
        for line in spool.read_text().splitlines():
            data = json.loads(line)["data"]
            if data.get("stage") == "injected":
                return str(data["target"])
        return ""

    try:
        node = wait_for(cordoned, 60, "the cordon (an injected marker on the spool)")
        assert client.CoreV1Api(api).read_node(node).spec.unschedulable  # held, per the API
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, node, spool, acts


def test_sigterm_during_the_hold_of_a_plain_chaos_run_still_uncordons(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    """SIGTERM (a CI runner cancelled) while the node is held cordoned."""
    _web(api, ns)
    proc, node, spool, acts = _chaos_run_until_cordoned(sandbox, api, ns, tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not client.CoreV1Api(api).read_node(node).spec.unschedulable
    lines = [json.loads(x) for x in acts.read_text().splitlines()]
    drain = next(x for x in lines if x["event"] == "activity" and x["type"] == "action")
    assert drain["status"] == "failed"
    assert "SIGTERM" in drain["error"]
    assert lines[-1]["event"] == "experiment-finished"
    stages = [json.loads(x)["data"].get("stage") for x in spool.read_text().splitlines()]
    assert stages.count("rolled_back") == 1


def test_a_sigkilled_chaos_run_is_undone_by_the_next_experiments_control(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    """SIGKILL leaves the cordon (nothing in that process runs again); the control of the
    next experiment finds it in the cluster and the journal and undoes it first."""
    _web(api, ns)
    proc, node, _, _ = _chaos_run_until_cordoned(sandbox, api, ns, tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    assert client.CoreV1Api(api).read_node(node).spec.unschedulable  # left behind
    env = _env(sandbox, ns, tmp_path, KD_SELECTOR="app=web", KD_DEPLOYMENT="web")
    run = _run("pod-kill.json", env, tmp_path, Timeline())
    assert run.ok, _why(run)
    assert not client.CoreV1Api(api).read_node(node).spec.unschedulable
    reconciled = next(x for x in _activities(run) if x["event"] == "reconciled")
    assert [(r["what"], r["ok"]) for r in reconciled["undone"]] == [("journal", True)]
    assert reconciled["undone"][0]["target"] == node


def test_pod_kill_experiment_kills_one_and_the_deployment_recovers(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    _web(api, ns)
    before = {p.metadata.name for p in pods(api, ns, "web")}
    timeline = Timeline()
    env = _env(sandbox, ns, tmp_path, KD_SELECTOR="app=web", KD_DEPLOYMENT="web")
    run = _run("pod-kill.json", env, tmp_path, timeline)
    assert run.ok, _why(run)
    (killed,) = run.journal["run"][0]["output"]["targets"]
    assert killed.split("/")[1] in before
    after = {p.metadata.name for p in running(api, ns, "web", 2)}
    assert killed.split("/")[1] not in after


def test_gpu_saturation_experiment_starts_a_burner_and_deletes_it(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        ns, process_deployment("gpuapp", 1, command=["sleep", "600"], gpus=1, probe={})
    )
    running(api, ns, "gpuapp", 1)

    def has_devices() -> bool:
        return all(
            (p.metadata.annotations or {}).get("kubedrill.io/gpu-devices")
            for p in pods(api, ns, "gpuapp")
        )

    wait_for(has_devices, 30, "the pod runner to assign a GPU device")
    wait_for(
        lambda: (apps.read_namespaced_deployment("gpuapp", ns).status.ready_replicas or 0) == 1,
        30,
        "gpuapp ready",
    )
    since = len(audit_events(sandbox.paths.audit_log))
    timeline = Timeline()
    env = _env(
        sandbox, ns, tmp_path, KD_SELECTOR="app=gpuapp", KD_DEPLOYMENT="gpuapp", KD_DURATION_S="3s"
    )
    run = _run("gpu-saturation.json", env, tmp_path, timeline)
    assert run.ok, _why(run)
    stages = [m[2] for m in _markers(timeline) if m[0] == "gpu_saturation"]
    assert stages == ["journaled", "injected", "rolled_back"]
    _flush_audit(sandbox, api, ns, "after-burn")
    jobs = [
        (e["verb"], e["objectRef"]["name"])
        for e in _writes_by_us(sandbox, since, lambda e: e["objectRef"]["resource"] == "jobs")
    ]
    assert [v for v, _ in jobs] == ["create", "delete"], jobs
    assert client.BatchV1Api(api).list_namespaced_job(ns).items == []


def test_an_experiment_from_a_scenario_while_load_runs_is_judged_and_attached(
    sandbox: State, api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    """drill.chaos_toolkit(): the experiment runs while Locust load runs; its markers land
    on the scenario's timeline, its journal is attached to the HTML report, and its
    outcome and the rollback are claims of the scenario."""
    from kubedrill.adapters.kube import KubeAdapter
    from kubedrill.core.settings import (
        ChaosSettings,
        ClusterSettings,
        Settings,
        TargetSettings,
    )
    from kubedrill.core.types import Verdict
    from kubedrill.report.html import render_html
    from kubedrill.run import Drill, RunRecord, ScenarioResult
    from tests.integration.kit import local_url, service

    adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
    web = process_deployment("web", 2, ["--slots", "4", "--service-time-ms", "5"])
    web["spec"]["template"]["spec"]["nodeSelector"] = ON_CPU
    adapter.apply(web, ns)
    adapter.apply(service("web"), ns)
    adapter.apply(pdb("web", "web", minAvailable=1), ns)
    wait_for(lambda: len(running(api, ns, "web", 2)) == 2, 60, "web Running")
    url = local_url(api, ns, "web")
    settings = Settings(
        target=TargetSettings(namespace=ns),
        cluster=ClusterSettings(kubeconfig=sandbox.paths.kubeconfig),
        chaos=ChaosSettings(
            contexts=("kwok-*",), nodes=("cpu-*",), journal=tmp_path / "journal.jsonl"
        ),
    )
    drill = Drill("scenarios/x.py::test_drain_by_experiment", settings)
    started = time.time()
    with drill.load(url, 30, rate=40) as load:
        load.wait_flowing()
        run = drill.chaos_toolkit(
            EXPERIMENTS / "node-drain.json",
            var={"selector": "app=web", "deployment": "web", "hold_s": "2s"},
            timeout_s=120,
        )
        load.stop()
    assert run.ok, _why(run)
    results = {r.name: r for r in drill.evaluate()}
    assert results["Chaos Toolkit experiment node-drain.json succeeded"].verdict is Verdict.PASS
    assert results["every fault rolled back"].verdict is Verdict.PASS, results
    stages = [m[2] for m in _markers(drill.timeline)]
    assert "injected" in stages and "rolled_back" in stages
    record = RunRecord(settings)
    record.scenarios.append(
        ScenarioResult(
            drill.scenario_id,
            "test_drain_by_experiment",
            ["ci"],
            started,
            time.time(),
            "ran",
            list(results.values()),
            timeline=drill.timeline,
        )
    )
    record.ended = time.time()
    html = render_html(record.to_dict())
    assert "attached: Chaos Toolkit journal: node-drain.json" in html
