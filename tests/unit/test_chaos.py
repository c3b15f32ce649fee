"""The chaos engine's own logic, on a fake of our kube adapter: safety refusals, the
journal, rollback on every way out, reconciliation. The real API's part (evictions and
PDBs, leases, burners, the audit log) is in tests/integration/test_chaos_sandbox.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubedrill.chaos import (
    Chaos,
    ChaosRefused,
    GpuSaturation,
    Journal,
    NodeDrain,
    NodeFailure,
    Owner,
    PodKill,
)
from kubedrill.chaos.journal import Intent
from kubedrill.chaos.safety import looks_like_production
from kubedrill.chaos.undo import OWNER, find_leftovers
from kubedrill.checks import expect
from kubedrill.core.settings import ChaosSettings, Settings, TargetSettings
from kubedrill.core.types import Verdict
from kubedrill.timeline import ChaosMarker, Timeline
from tests.unit.chaos_fake import FakeKube


def settings(tmp_path: Path, **chaos: object) -> Settings:
    base = {
        "contexts": ("kwok-*",),
        "nodes": ("gpu-*", "cpu-*"),
        "journal": tmp_path / "journal.jsonl",
    }
    base.update(chaos)
    return Settings(target=TargetSettings(namespace="drill"), chaos=ChaosSettings(**base))  # type: ignore[arg-type]


def cluster() -> FakeKube:
    k = FakeKube()
    for n in ("gpu-0", "gpu-1", "cpu-0", "cpu-1"):
        k.node(n, gpus=8 if n.startswith("gpu") else 0)
    for i in range(4):
        k.pod("drill", f"web-{i}", "cpu-0" if i < 2 else "cpu-1", {"app": "web"})
    return k


def session(tmp_path: Path, k: FakeKube | None = None, **chaos: object) -> Chaos:
    return Chaos(k or cluster(), settings(tmp_path, **chaos), Timeline(), say=lambda _m: None)


def stages(c: Chaos) -> list[tuple[str, str]]:
    return [(o.data.stage, o.data.target) for o in c.timeline.select(ChaosMarker)]


# -- safety: refused before anything is written ------------------------------------------


@pytest.mark.parametrize(
    ("context", "chaos", "words"),
    [
        ("kwok-test", {"contexts": ()}, "no kubeconfig context is allowed"),
        ("staging", {}, "not in chaos.contexts"),
        ("kwok-prod", {}, "looks like production"),
    ],
)
def test_a_context_outside_the_allow_list_is_refused(
    tmp_path: Path, context: str, chaos: dict[str, object], words: str
) -> None:
    k = cluster()
    k.context = context
    with pytest.raises(ChaosRefused, match=words):
        session(tmp_path, k, **chaos)
    if "prod" in context:  # allowed when said so
        session(tmp_path, k, allow_production=True)


def test_production_names() -> None:
    assert looks_like_production("gke_acme_prod-eu"), "prod as a word"
    assert looks_like_production("https://api.prd.acme.io")
    assert not looks_like_production("kwok-kubedrill", "https://127.0.0.1:6443", "product-x")


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (PodKill(selector="app=nothing", count=1), "matches no Running pod"),
        (PodKill(selector="app=web", count=3), "over the cap chaos.max_pod_fraction"),
        (PodKill(selector="app=web", count=1, namespace="kube-system"), "outside chaos.namespaces"),
        (PodKill(selector="app=web", count=1, crash=True), "needs the sandbox's process-backed"),
        (NodeDrain(node="infra-0"), "not in chaos.nodes"),
        (NodeDrain(node="cpu-0", force=True), "refused unless chaos.allow_force"),
        (NodeDrain(node="cpu-0", deadline_s=500, hold_s=500), "over chaos.max_fault_s"),
        (NodeFailure(node="gpu-0", duration_s=10_000), "chaos.max_fault_s"),
        (GpuSaturation(level=1.5, duration_s=10, node="gpu-0"), "level must be in"),
        (GpuSaturation(level=0.5, duration_s=10, node="cpu-0"), "has no nvidia.com/gpu"),
    ],
)
def test_refusals_write_nothing(tmp_path: Path, action: object, words: str) -> None:
    k = cluster()
    c = session(tmp_path, k)
    with pytest.raises(ChaosRefused, match=words), c.fault(action):  # type: ignore[arg-type]
        pass
    assert k.writes == []
    assert not (tmp_path / "journal.jsonl").exists()
    assert stages(c) == [("refused", "-")]


def test_a_drain_refuses_a_node_with_pods_outside_the_allowed_namespaces(tmp_path: Path) -> None:
    k = cluster()
    k.pod("payments", "ledger-0", "cpu-1")
    c = session(tmp_path, k)
    with pytest.raises(ChaosRefused, match="payments/ledger-0"), c.fault(NodeDrain(node="cpu-1")):
        pass
    assert k.writes == []


def test_a_drain_refuses_someone_elses_cordon(tmp_path: Path) -> None:
    k = cluster()
    k.objects[("Node", "", "cpu-0")]["spec"]["unschedulable"] = True
    c = session(tmp_path, k)
    with pytest.raises(ChaosRefused, match="already cordoned"), c.fault(NodeDrain(node="cpu-0")):
        pass


def test_daemonset_pods_are_not_evicted_and_pods_outside_scope_with_them_are_fine(
    tmp_path: Path,
) -> None:
    k = cluster()
    k.pod("kube-system", "node-exporter-x", "cpu-0", owner="DaemonSet")
    c = session(tmp_path, k)
    with c.fault(NodeDrain(node="cpu-0", deadline_s=2)) as f:
        assert not f.result["blocked"]
    evicted = [w for w in k.writes if w[0] == "evict"]
    assert {w[3] for w in evicted} == {"web-0", "web-1"}
    assert ("Pod", "kube-system", "node-exporter-x") in k.objects


# -- the journal and rollback -------------------------------------------------------------


def test_the_undo_is_journaled_before_the_write_and_done_after_the_rollback(
    tmp_path: Path,
) -> None:
    k = cluster()
    c = session(tmp_path, k)
    journal = tmp_path / "journal.jsonl"
    seen: list[int] = []
    real_patch = k.patch

    def patch(*a: object, **kw: object) -> dict[str, object]:
        seen.append(len(Journal(journal).open_intents()))  # the intent is on disk already
        return real_patch(*a, **kw)  # type: ignore[arg-type]

    k.patch = patch  # type: ignore[method-assign]
    with c.fault(NodeDrain(node="cpu-0", deadline_s=2)):
        assert k.objects[("Node", "", "cpu-0")]["spec"]["unschedulable"] is True
        assert k.objects[("Node", "", "cpu-0")]["metadata"]["annotations"][OWNER] == c.owner.token
    assert seen[0] == 1
    node = k.objects[("Node", "", "cpu-0")]
    assert not node["spec"].get("unschedulable") and OWNER not in node["metadata"]["annotations"]
    assert Journal(journal).open_intents() == []
    kinds = [json.loads(line)["type"] for line in journal.read_text().splitlines()]
    assert kinds == ["intent", "done"]
    assert [s for s, _ in stages(c)] == ["journaled", "injected", "rolled_back"]


def test_rollback_runs_after_an_exception_in_the_scenario(tmp_path: Path) -> None:
    k = cluster()
    c = session(tmp_path, k)
    lease = ("Lease", "kube-node-lease", "cpu-1")
    held: list[str] = []

    def scenario() -> None:
        with c.fault(NodeFailure(node="cpu-1", duration_s=30)):
            held.append(k.objects[lease]["spec"]["holderIdentity"])
            raise RuntimeError("the scenario broke")

    with pytest.raises(RuntimeError):
        scenario()
    assert held[0] != "cpu-1" and k.objects[lease]["spec"]["holderIdentity"] == "cpu-1"
    assert stages(c)[-1] == ("rolled_back", "cpu-1")


def test_a_failed_rollback_is_a_failing_verdict_and_stays_in_the_journal(tmp_path: Path) -> None:
    k = cluster()
    c = session(tmp_path, k)
    with c.fault(NodeDrain(node="cpu-0", deadline_s=2)):
        k.fail_patch.add("Node")  # the API breaks while the fault is held
    check = expect("faults_not_rolled_back == 0")
    r = check.evaluate(c.timeline)
    assert r.verdict is Verdict.FAIL, r.reason
    assert "node_drain on cpu-0" in r.reason and "HTTP 500" in r.reason
    assert len(Journal(tmp_path / "journal.jsonl").open_intents()) == 1
    k.fail_patch.clear()  # cleanup (another session, --force: same host, this pid is alive)
    done = session(tmp_path, k).reconcile(force=True)
    assert [d.ok for d in done] == [True]
    assert not k.objects[("Node", "", "cpu-0")]["spec"].get("unschedulable")


def test_no_fault_at_all_is_inconclusive_not_pass() -> None:
    r = expect("faults_not_rolled_back == 0").evaluate(Timeline())
    assert r.verdict is Verdict.INCONCLUSIVE


def test_the_watchdog_rolls_back_a_fault_held_past_max_fault_s(tmp_path: Path) -> None:
    k = cluster()
    c = session(tmp_path, k, max_fault_s=0.5)
    with c.fault(NodeFailure(node="cpu-1", duration_s=0.4)):
        time.sleep(1.0)
        assert k.objects[("Lease", "kube-node-lease", "cpu-1")]["spec"]["holderIdentity"] == "cpu-1"


@pytest.mark.parametrize(
    "body", ["f.hold(30)", "time.sleep(30)"], ids=["during hold()", "anywhere in the block"]
)
def test_sigterm_inside_the_fault_rolls_back(tmp_path: Path, body: str) -> None:
    """A runner that gets SIGTERM mid-fault undoes it before it exits: during hold(), and
    in a scenario body that just sleeps."""
    script = f"""
import sys, time
sys.path.insert(0, {str(Path.cwd())!r})
from pathlib import Path
from tests.unit.test_chaos import cluster, session
from kubedrill.chaos import NodeDrain
k = cluster()
c = session(Path({str(tmp_path)!r}), k)
try:
    with c.fault(NodeDrain(node="cpu-0", deadline_s=2)) as f:
        print("held", flush=True)
        {body}
finally:
    n = k.objects[("Node", "", "cpu-0")]
    print("unschedulable", bool(n["spec"].get("unschedulable")), flush=True)
"""
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "held"
        p.terminate()
        out = p.stdout.read()
        assert p.wait(10) == 143
    assert "unschedulable False" in out


def test_orphans_are_intents_of_dead_owners_or_past_expiry(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = Owner.me()
    gone = Owner(me.token + "x", me.host, dead.pid, "1")
    far = time.time() + 3600
    j.intend(Intent("a", me, "node_drain", "cpu-0", {"kind": "none"}, far))
    j.intend(Intent("b", gone, "node_drain", "cpu-1", {"kind": "none"}, far))
    j.intend(Intent("c", me, "node_drain", "gpu-0", {"kind": "none"}, time.time() - 1))
    j.done("a", "rolled_back")
    with open(j.path, "ab") as f:
        f.write(b'{"type": "intent", "id": "torn')  # the runner died mid-write
    assert sorted(i.id for i in j.open_intents()) == ["b", "c"]
    assert sorted(i.id for i in j.orphans()) == ["b", "c"]
    j.compact()
    assert sorted(i.id for i in j.open_intents()) == ["b", "c"]
    assert os.stat(j.path).st_mode & 0o777 == 0o600


def test_reconcile_undoes_a_dead_runners_cordon_from_the_cluster_alone(tmp_path: Path) -> None:
    """No journal on this machine (another runner's, or lost): the markers suffice."""
    k = cluster()
    k.objects[("Node", "", "gpu-1")]["spec"]["unschedulable"] = True
    k.objects[("Node", "", "gpu-1")]["metadata"]["annotations"].update(
        {OWNER: "kd-dead", "chaos.kubedrill.io/expires": "2020-01-01T00:00:00Z"}
    )
    k.objects[("Node", "", "gpu-0")]["spec"]["unschedulable"] = True  # a human's cordon
    left = find_leftovers(k)
    assert [(x.what, x.target) for x in left] == [("cordon", "gpu-1")]
    c = session(tmp_path, k)
    done = c.reconcile()
    assert [(d.what, d.ok) for d in done] == [("cluster", True)]
    assert not k.objects[("Node", "", "gpu-1")]["spec"].get("unschedulable")
    assert k.objects[("Node", "", "gpu-0")]["spec"]["unschedulable"] is True  # not ours
    assert ("leftover", "gpu-1") in stages(c)


def test_an_orphan_of_another_cluster_is_left_for_that_cluster(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    gone = Owner("kd-gone", Owner.me().host, 999_999, "1")
    undo = {"kind": "uncordon", "node": "cpu-0", "token": "kd-gone"}
    journal.intend(
        Intent(
            "x",
            gone,
            "node_drain",
            "cpu-0",
            undo,
            time.time() + 60,
            cluster="https://elsewhere:6443",
        )
    )
    c = session(tmp_path)
    assert c.reconcile() == []
    assert [i.id for i in journal.open_intents()] == ["x"]


def test_a_live_runners_markers_are_left_alone_until_they_expire(tmp_path: Path) -> None:
    k = cluster()
    a = session(tmp_path, k)
    with a.fault(NodeFailure(node="cpu-1", duration_s=30)):
        b = Chaos(k, settings(tmp_path / "b"), Timeline(), say=lambda _m: None)
        assert b.reconcile() == []  # same host, a's pid is alive, not expired
        assert k.objects[("Lease", "kube-node-lease", "cpu-1")]["spec"]["holderIdentity"] != "cpu-1"


def test_gpu_saturation_burns_the_target_pods_devices_in_the_sandbox(tmp_path: Path) -> None:
    k = cluster()
    k.pod("drill", "gen-0", "gpu-1", {"app": "gen"})
    ann = k.objects[("Pod", "drill", "gen-0")]["metadata"]["annotations"]
    ann["kubedrill.io/gpu-devices"] = "2,3"
    c = session(tmp_path, k)
    with c.fault(GpuSaturation(level=0.9, duration_s=20, pods_of="app=gen")) as f:
        jobs = [o for (kind, _, _), o in k.objects.items() if kind == "Job"]
        assert len(jobs) == 1
        job = jobs[0]
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--devices") + 1] == "2,3" and "--busy" in args
        assert job["spec"]["activeDeadlineSeconds"] == 80
        pinned = job["spec"]["template"]["spec"]["nodeSelector"]
        assert pinned == {"kubernetes.io/hostname": "gpu-1"} and f.result["burner_pod"]
    assert not [key for key in k.objects if key[0] == "Job" or "burn" in key[2]]
    assert ("Pod", "drill", "gen-0") in k.objects


def test_gpu_saturation_with_node_and_pods_of_burns_those_pods_devices_there(
    tmp_path: Path,
) -> None:
    k = cluster()
    for name, node, dev in (("gen-0", "gpu-0", "1"), ("gen-1", "gpu-1", "5")):
        k.pod("drill", name, node, {"app": "gen"})
        k.objects[("Pod", "drill", name)]["metadata"]["annotations"]["kubedrill.io/gpu-devices"] = (
            dev
        )
    c = session(tmp_path, k)
    with c.fault(GpuSaturation(level=0.5, duration_s=10, node="gpu-1", pods_of="app=gen")) as f:
        assert f.plan is not None and f.plan.targets == ("gpu-1",)
        assert f.plan.data["devices"] == ["5"]


def test_pod_kill_picks_within_the_selector_and_journals_each_kill(tmp_path: Path) -> None:
    k = cluster()
    c = session(tmp_path, k)
    with c.fault(PodKill(selector="app=web", percent=50, seed=1)) as f:
        assert f.plan is not None and len(f.plan.targets) == 2
    deleted = [w for w in k.writes if w[:2] == ("delete", "Pod")]
    assert len(deleted) == 2 and all(w[2] == "drill" for w in deleted)
    assert [s for s, _ in stages(c)].count("rolled_back") == 2


def test_a_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    k = cluster()
    said: list[str] = []
    c = Chaos(k, settings(tmp_path), Timeline(), say=said.append)
    with c.fault(NodeDrain(node="cpu-0"), dry_run=True) as f:
        assert f.plan is not None
    assert k.writes == [] and "chaos plan: node_drain on cpu-0" in said[0] and "dry run" in said[0]


def test_the_janitor_manifest_is_a_serviceaccount_rbac_and_a_cronjob() -> None:
    import yaml
    from click.testing import CliRunner

    from kubedrill.chaos.cli import chaos

    out = CliRunner().invoke(chaos, ["janitor", "--print-manifest", "ops", "--image", "kd:1"])
    assert out.exit_code == 0, out.output
    docs = [d for d in yaml.safe_load_all(out.output) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "CronJob"]
    cron = docs[-1]
    assert cron["metadata"]["namespace"] == "ops"
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "kd:1" and container["command"] == [
        "kubedrill",
        "chaos",
        "janitor",
    ]
