"""Chaos against the sandbox's real API server and controllers: a drain the PDB protects,
under load, completes without breaking the PDB (and a forced one is seen as a bypass); a
selector that matches nothing is an error; rollback runs after a failing check and after
an exception; a cordon, a burner and a silenced node left by a SIGKILLed runner are undone
at the next start; a container crash restarts the pod in place; GPU saturation shows in
the DCGM-named metric; a rollback the cluster does not let finish is a FAIL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubedrill.adapters.kube import KubeAdapter
from kubedrill.chaos import Chaos, ChaosRefused, GpuSaturation, NodeDrain, PodKill
from kubedrill.chaos.undo import OWNER, find_leftovers
from kubedrill.checks import expect
from kubedrill.core.settings import ChaosSettings, ClusterSettings, Settings, TargetSettings
from kubedrill.core.types import Verdict
from kubedrill.load import LoadRun, LoadSpec
from kubedrill.observe import ClusterWatcher
from kubedrill.sandbox.state import State
from kubedrill.timeline import ChaosMarker, Timeline
from tests.integration.kit import (
    audit_events,
    local_url,
    pdb,
    process_deployment,
    service,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapter(sandbox: State) -> Iterator[KubeAdapter]:
    a = KubeAdapter.from_settings(ClusterSettings(kubeconfig=sandbox.paths.kubeconfig))
    yield a
    a.close()


def drill_settings(ns: str, tmp_path: Path, **chaos: Any) -> Settings:
    base: dict[str, Any] = {
        "contexts": ("kwok-*",),
        "nodes": ("gpu-*", "cpu-*"),
        "journal": tmp_path / "journal.jsonl",
    }
    base.update(chaos)
    return Settings(target=TargetSettings(namespace=ns), chaos=ChaosSettings(**base))


def schedulable_and_clean(adapter: KubeAdapter) -> None:
    """What the bench calls zero leftovers, from the API: every node schedulable and
    unmarked, every Lease held by kwok, every node Ready, no burner Job."""
    nodes, _ = adapter.list("Node", None)
    for n in nodes:
        assert not (n.get("spec") or {}).get("unschedulable"), n["metadata"]["name"]
        assert OWNER not in (n["metadata"].get("annotations") or {}), n["metadata"]["name"]
    assert find_leftovers(adapter) == []


def _ready(adapter: KubeAdapter, ns: str, name: str, n: int) -> bool:
    d = adapter.get("Deployment", ns, name) or {}
    return int((d.get("status") or {}).get("readyReplicas") or 0) >= n


def test_a_drain_under_load_keeps_the_pdb_and_a_forced_one_is_a_bypass(
    sandbox: State, adapter: KubeAdapter, ns: str, tmp_path: Path
) -> None:
    web = process_deployment("web", 3, ["--slots", "4", "--service-time-ms", "5"])
    web["spec"]["template"]["spec"]["nodeSelector"] = {"kubedrill.io/node-pool": "cpu"}
    adapter.apply(web, ns)  # spread over cpu-0 and cpu-1: the drained node holds 2 or 1
    adapter.apply(service("web"), ns)
    adapter.apply(pdb("web", "web", minAvailable=2), ns)
    wait_for(lambda: _ready(adapter, ns, "web", 3), 60, "3 ready replicas of web")
    url = local_url(adapter.api_client, ns, "web")  # type: ignore[arg-type]
    tl = Timeline()
    chaos = Chaos(adapter, drill_settings(ns, tmp_path), tl, say=print)
    node = NodeDrain(pods_of="app=web", deadline_s=60).plan(chaos.context()).targets[0]
    with ClusterWatcher(adapter, tl, ns) as w:
        w.wait_synced(30)
        with LoadRun(LoadSpec(url=url, duration=12, rate=40), tl):
            time.sleep(2)
            with tl.phase("drain"), chaos.fault(NodeDrain(pods_of="app=web", deadline_s=60)) as f:
                assert f.result["blocked"] == {}, f.result
            time.sleep(3)
    judged = {
        e: expect(e, phase="drain", pdb="web").evaluate(tl)
        for e in ("pdb_below_s == 0", "pdb_bypasses == 0")
    }
    for e, r in judged.items():
        assert r.verdict is Verdict.PASS, (e, r.reason)
    drained = expect("drain_within: 60s", phase="drain", node=node).evaluate(tl)
    assert drained.verdict is Verdict.PASS, drained.reason
    errors = expect("error_rate < 1%").evaluate(tl)
    assert errors.verdict is Verdict.PASS, errors.reason
    assert expect("faults_not_rolled_back == 0").evaluate(tl).verdict is Verdict.PASS
    schedulable_and_clean(adapter)

    # break it: a forced drain deletes around the PDB, and the checks see it
    wait_for(lambda: _ready(adapter, ns, "web", 3), 60, "web back to 3")
    forced = Chaos(adapter, drill_settings(ns, tmp_path, allow_force=True), Timeline(), print)
    with ClusterWatcher(adapter, forced.timeline, ns) as w:
        w.wait_synced(30)
        with (
            forced.timeline.phase("force"),
            forced.fault(NodeDrain(pods_of="app=web", deadline_s=30, force=True, grace_s=0)),
        ):
            pass
        time.sleep(2)
    bypass = expect("pdb_bypasses == 0", phase="force", pdb="web").evaluate(forced.timeline)
    assert bypass.verdict is Verdict.FAIL, bypass.reason
    schedulable_and_clean(adapter)


def test_a_selector_that_matches_nothing_is_an_error_and_writes_nothing(
    sandbox: State, adapter: KubeAdapter, ns: str, tmp_path: Path
) -> None:
    before = len(audit_events(sandbox.paths.audit_log))
    chaos = Chaos(adapter, drill_settings(ns, tmp_path), Timeline(), say=print)
    nothing = PodKill(selector="app=nothing-here", count=1)
    with pytest.raises(ChaosRefused, match="matches no Running pod"), chaos.fault(nothing):
        pass
    writes = [
        e
        for e in audit_events(sandbox.paths.audit_log)[before:]
        if e.get("verb") in ("create", "update", "patch", "delete", "deletecollection")
        and (e.get("objectRef") or {}).get("namespace") == ns
    ]
    assert writes == []


def test_a_container_crash_restarts_the_pod_in_place(
    adapter: KubeAdapter, ns: str, tmp_path: Path
) -> None:
    adapter.apply(process_deployment("crashy", 2, ["--slots", "1"]), ns)
    wait_for(lambda: _ready(adapter, ns, "crashy", 2), 60, "2 ready replicas")
    chaos = Chaos(adapter, drill_settings(ns, tmp_path), Timeline(), say=print)
    with chaos.fault(PodKill(selector="app=crashy", count=1, crash=True)) as f:
        assert f.plan is not None
        name = f.plan.targets[0].split("/", 1)[1]

    def restarted() -> bool:
        pod = adapter.get("Pod", ns, name) or {}
        cs = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
        return int(cs.get("restartCount") or 0) >= 1 and bool(cs.get("ready"))

    wait_for(restarted, 30, f"{name} restarted in place and Ready")
    pod = adapter.get("Pod", ns, name) or {}
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137


def test_rollback_runs_after_an_exception_and_after_a_failing_check(
    sandbox: State, adapter: KubeAdapter, ns: str, tmp_path: Path
) -> None:
    adapter.apply(process_deployment("rb", 1, ["--slots", "1"]), ns)
    wait_for(lambda: _ready(adapter, ns, "rb", 1), 60, "rb ready")
    chaos = Chaos(adapter, drill_settings(ns, tmp_path), Timeline(), say=print)
    cordoned: list[bool] = []

    def scenario() -> None:
        with chaos.fault(NodeDrain(node="cpu-1", deadline_s=20)):
            cordoned.append((adapter.get("Node", None, "cpu-1") or {})["spec"]["unschedulable"])
            raise RuntimeError("the scenario broke")

    with pytest.raises(RuntimeError, match="scenario broke"):
        scenario()
    assert cordoned == [True]
    schedulable_and_clean(adapter)

    # a scenario whose check fails, run by pytest with the kubedrill plugin as a user would
    scenario = tmp_path / "test_failing.py"
    scenario.write_text(
        textwrap.dedent("""
        from kubedrill.chaos import NodeDrain
        def test_drain_with_an_impossible_claim(drill, cluster_watch):
            drill.expect("replicas >= 99", object_name="rb")
            with drill.chaos(NodeDrain(node="cpu-1", deadline_s=20)) as f:
                f.hold(1)
    """)
    )
    env = {
        **os.environ,
        "KUBEDRILL_CHAOS_CONTEXTS": "kwok-*",
        "KUBEDRILL_CHAOS_NODES": "cpu-*",
        "KUBEDRILL_CHAOS_JOURNAL": str(tmp_path / "journal.jsonl"),
    }
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(scenario),
            f"--drill-kubeconfig={sandbox.paths.kubeconfig}",
            f"--drill-namespace={ns}",
            f"--drill-report-dir={tmp_path / 'reports'}",
            "--rootdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode != 0, p.stdout
    run = json.loads(next((tmp_path / "reports").glob("*/run.json")).read_text())
    checks = {c["name"]: c for s in run["scenarios"] for c in s["checks"]}
    assert checks["every fault rolled back"]["verdict"] == "PASS", checks
    assert any(c["verdict"] == "FAIL" for c in checks.values()), checks
    schedulable_and_clean(adapter)


KILLED_RUNNER = """
import sys, time
from pathlib import Path
from kubedrill.adapters.kube import KubeAdapter
from kubedrill.chaos import Chaos, GpuSaturation, NodeDrain, NodeFailure
from kubedrill.core.settings import ClusterSettings
from tests.integration.test_chaos_sandbox import drill_settings
kubeconfig, ns, tmp, what = sys.argv[1:5]
a = KubeAdapter.from_settings(ClusterSettings(kubeconfig=Path(kubeconfig)))
c = Chaos(a, drill_settings(ns, Path(tmp)), say=lambda m: None)
action = {
    "drain": NodeDrain(node="cpu-1", deadline_s=30),
    "fail": NodeFailure(node="cpu-1", duration_s=120),
    "burn": GpuSaturation(node="gpu-0", level=0.5, duration_s=120, namespace=ns),
}[what]
with c.fault(action):
    print("injected", flush=True)
    time.sleep(300)
"""


@pytest.mark.parametrize("what", ["drain", "fail", "burn"])
def test_what_a_sigkilled_runner_left_is_undone_at_the_next_start(
    sandbox: State, adapter: KubeAdapter, ns: str, tmp_path: Path, what: str
) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_RUNNER,
            str(sandbox.paths.kubeconfig),
            ns,
            str(tmp_path),
            what,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    ) as runner:
        assert runner.stdout is not None
        assert runner.stdout.readline().strip() == "injected"
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    left = find_leftovers(adapter)
    assert [x.what for x in left] == [{"drain": "cordon", "fail": "lease", "burn": "burner"}[what]]
    # the next start: a new session reconciles before it does anything else
    chaos = Chaos(adapter, drill_settings(ns, tmp_path), Timeline(), say=print)
    done = chaos.reconcile()
    assert done and all(d.ok for d in done), done
    schedulable_and_clean(adapter)
    if what == "fail":
        nodes, _ = adapter.list("Node", None)
        assert all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
            for n in nodes
        )
    stages = [o.data.stage for o in chaos.timeline.select(ChaosMarker)]
    assert "leftover" in stages and "rolled_back" in stages


def test_gpu_saturation_shows_in_the_dcgm_metric_and_a_stuck_rollback_fails(
    sandbox: State, adapter: KubeAdapter, ns: str, tmp_path: Path
) -> None:
    adapter.apply(process_deployment("gen", 1, ["--slots", "1"], gpus=1, node="gpu-1"), ns)
    wait_for(lambda: _ready(adapter, ns, "gen", 1), 60, "gen ready")
    pod = adapter.list("Pod", ns, label_selector="app=gen")[0][0]
    device = pod["metadata"]["annotations"]["kubedrill.io/gpu-devices"]
    query = f'max(DCGM_FI_DEV_GPU_UTIL{{Hostname="gpu-1",gpu="{device}"}})'

    def util() -> float:
        u = f"{sandbox.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(u, timeout=5) as r:
            res = json.load(r)["data"]["result"]
        return float(res[0]["value"][1]) if res else -1.0

    chaos = Chaos(adapter, drill_settings(ns, tmp_path, rollback_timeout_s=3), Timeline(), print)
    with chaos.fault(GpuSaturation(pods_of="app=gen", level=0.9, duration_s=40)) as f:
        wait_for(lambda: util() >= 80, 30, "DCGM_FI_DEV_GPU_UTIL >= 80 on the burned device")
        job = adapter.list("Job", ns, label_selector=OWNER)[0][0]
        # break the rollback for real: a finalizer keeps the Job from going
        adapter.patch(
            "Job",
            ns,
            job["metadata"]["name"],
            {"metadata": {"finalizers": ["kubedrill.test/hold"]}},
        )
    assert f.rollback_errors, "the rollback should have failed"
    r = expect("faults_not_rolled_back == 0").evaluate(chaos.timeline)
    assert r.verdict is Verdict.FAIL and "still exist" in r.reason, r.reason
    adapter.patch("Job", ns, job["metadata"]["name"], {"metadata": {"finalizers": None}})
    done = Chaos(adapter, drill_settings(ns, tmp_path), Timeline(), print).reconcile(force=True)
    assert all(d.ok for d in done), done
    wait_for(lambda: util() < 20, 30, "the device idle again")
    schedulable_and_clean(adapter)


def test_kubedrill_chaos_cleanup_finds_a_leftover_by_its_markers_alone(
    sandbox: State, adapter: KubeAdapter, tmp_path: Path
) -> None:
    """Another machine's runner died: no journal here, only the marks in the cluster."""
    adapter.patch(
        "Node",
        None,
        "gpu-1",
        {
            "spec": {"unschedulable": True},
            "metadata": {
                "annotations": {
                    OWNER: "kd-elsewhere",
                    "chaos.kubedrill.io/holder": "ci-7/1/1",
                    "chaos.kubedrill.io/expires": "2020-01-01T00:00:00Z",
                }
            },
        },
    )
    env = {**os.environ, "KUBEDRILL_CHAOS_JOURNAL": str(tmp_path / "none.jsonl")}
    cmd = [
        sys.executable,
        "-m",
        "kubedrill.cli",
        "chaos",
        "cleanup",
        "--kubeconfig",
        str(sandbox.paths.kubeconfig),
    ]
    dry = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, env=env, check=False)
    assert dry.returncode == 0 and "would undo" in dry.stdout, dry.stdout + dry.stderr
    assert (adapter.get("Node", None, "gpu-1") or {})["spec"].get("unschedulable") is True
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=60)
    assert p.returncode == 0 and "uncordoned gpu-1" in p.stdout, p.stdout + p.stderr
    schedulable_and_clean(adapter)
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=60)
    assert "nothing left behind" in again.stdout, again.stdout


def test_the_janitor_undoes_expired_marks_and_leaves_live_ones(
    sandbox: State, adapter: KubeAdapter, tmp_path: Path
) -> None:
    far = "2099-01-01T00:00:00Z"
    for node, expires in (("gpu-0", "2020-01-01T00:00:00Z"), ("gpu-1", far)):
        ann = {
            OWNER: f"kd-{node}",
            "chaos.kubedrill.io/holder": "ci-9/1/1",
            "chaos.kubedrill.io/expires": expires,
        }
        adapter.patch(
            "Node", None, node, {"spec": {"unschedulable": True}, "metadata": {"annotations": ann}}
        )
    env = {**os.environ, "KUBEDRILL_CHAOS_JOURNAL": str(tmp_path / "none.jsonl")}
    kube = ["--kubeconfig", str(sandbox.paths.kubeconfig)]
    p = subprocess.run(
        [sys.executable, "-m", "kubedrill.cli", "chaos", "janitor", *kube],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert p.returncode == 0 and "uncordoned gpu-0" in p.stdout, p.stdout + p.stderr
    assert (adapter.get("Node", None, "gpu-1") or {})["spec"].get("unschedulable") is True
    forced = subprocess.run(
        [sys.executable, "-m", "kubedrill.cli", "chaos", "cleanup", "--force", *kube],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert forced.returncode == 0 and "uncordoned gpu-1" in forced.stdout, forced.stdout
    schedulable_and_clean(adapter)
