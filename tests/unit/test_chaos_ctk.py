"""The Chaos Toolkit side's own logic, on the fake of our kube adapter: argument checks,
settings from an experiment's configuration, the actions' always-rollback, the control's
journal and final rollback, and the runner (with a stand-in ``chaos`` command). The real
thing, ``chaos run`` against the sandbox, is tests/integration/test_chaos_toolkit.py."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chaoslib")

from chaoslib.exceptions import ActivityFailed

from kubedrill.chaos import Chaos, NodeDrain
from kubedrill.chaos.ctk import actions, control, probes, runner, session
from kubedrill.chaos.undo import OWNER
from kubedrill.core.errors import ConfigError
from kubedrill.core.settings import Settings, load_settings
from kubedrill.timeline import ChaosMarker, Note, Timeline
from tests.unit.chaos_fake import FakeKube


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeKube:
    k = FakeKube()
    for n in ("gpu-0", "gpu-1", "cpu-0", "cpu-1"):
        k.node(n, gpus=8 if n.startswith("gpu") else 0)
    for i in range(4):
        k.pod("drill", f"web-{i}", "cpu-0" if i < 2 else "cpu-1", {"app": "web"})
    k.add("Deployment", "web", "drill", spec={"replicas": 4}, status={"readyReplicas": 4})
    monkeypatch.setattr(session, "make_adapter", lambda _settings: k)
    for var in [v for v in os.environ if v.startswith("KUBEDRILL_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("KUBEDRILL_CHAOS_CONTEXTS", "kwok-*")
    monkeypatch.setenv("KUBEDRILL_CHAOS_NODES", "gpu-*,cpu-*")
    monkeypatch.setenv("KUBEDRILL_TARGET_NAMESPACE", "drill")
    monkeypatch.setenv("KUBEDRILL_CHAOS_JOURNAL", str(tmp_path / "journal.jsonl"))
    monkeypatch.chdir(tmp_path)  # no drill.yaml
    return k


# -- arguments and settings ---------------------------------------------------------------


def test_arguments_accept_strings_and_name_what_was_expected() -> None:
    assert session.integer("pod_kill", "count", "3", minimum=1) == 3
    assert session.duration("node_drain", "hold_s", "1m30s") == 90
    assert session.flag("f", "force", "true") is True
    assert session.names("f", "names", "gpu-*, cpu-0") == ("gpu-*", "cpu-0")
    assert session.text("f", "node", "") is None  # an empty ${...} counts as not given
    with pytest.raises(ConfigError, match=r"^pod_kill: count: expected an integer of at least 1"):
        session.integer("pod_kill", "count", 0, minimum=1)
    with pytest.raises(ConfigError, match=r"^f: force: expected true or false \(got 'maybe'\)"):
        session.flag("f", "force", "maybe")
    with pytest.raises(ConfigError, match=r"hold_s: expected a duration"):
        session.duration("f", "hold_s", "soon")


def test_configuration_keys_override_env_and_unknown_ones_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"KUBEDRILL_CHAOS_NODES": "cpu-*"}
    s = session.settings_from(
        {"kubedrill_chaos_nodes": "gpu-*,cpu-*", "kubedrill_kubeconfig": "/x/kc", "other": 1}, env
    )
    assert s.chaos.nodes == ("gpu-*", "cpu-*")
    assert str(s.cluster.kubeconfig) == "/x/kc"
    assert session.settings_from({}, env).chaos.nodes == ("cpu-*",)
    assert session.settings_from({"kubedrill_chaos_nodes": ["gpu-1"]}, env).chaos.nodes == (
        "gpu-1",
    )
    with pytest.raises(
        ConfigError,
        match=r"kubedrill_chaos_nodez: expected a setting of section chaos: .*_chaos_nodes",
    ):
        session.settings_from({"kubedrill_chaos_nodez": "x"}, env)
    with pytest.raises(ConfigError, match=r"kubedrill_nodes: expected kubedrill_config"):
        session.settings_from({"kubedrill_nodes": "x"}, env)


def test_settings_env_gives_the_child_the_same_settings(tmp_path: Path) -> None:
    s = load_settings(
        env={
            "KUBEDRILL_CHAOS_CONTEXTS": "kwok-*",
            "KUBEDRILL_CHAOS_NODES": "gpu-*,cpu-1",
            "KUBEDRILL_CHAOS_MAX_FAULT_S": "90",
            "KUBEDRILL_CHAOS_ALLOW_FORCE": "true",
            "KUBEDRILL_TARGET_NAMESPACE": "drill",
            "KUBEDRILL_CLUSTER_KUBECONFIG": str(tmp_path / "kc"),
        },
        cwd=tmp_path,
    )
    env = runner.settings_env(s)
    assert env["KUBECONFIG"] == str(tmp_path / "kc")
    again = load_settings(env=env, cwd=tmp_path)
    assert (again.chaos, again.target, again.cluster) == (s.chaos, s.target, s.cluster)


# -- actions ------------------------------------------------------------------------------


def test_node_drain_cordons_evicts_and_uncordons_before_it_returns(kube: FakeKube) -> None:
    out = actions.node_drain(pods_of="app=web", deadline_s="10s", hold_s="0.1")
    assert out["targets"] == ["cpu-0"]
    assert [m["stage"] for m in out["markers"] if "stage" in m] == [
        "journaled",
        "injected",
        "rolled_back",
    ]
    assert out["rollback_s"] is not None
    json.dumps(out)  # JSON-able, for CTK's journal
    node = kube.get("Node", None, "cpu-0")
    assert node is not None
    assert not node["spec"].get("unschedulable")
    assert OWNER not in node["metadata"]["annotations"]
    assert ("evict", "Pod", "drill", "web-0") in kube.writes


def test_a_drain_the_pdb_blocks_is_reported_and_fails_only_when_required(kube: FakeKube) -> None:
    kube.refuse_evictions = {"drill/web-0", "drill/web-1"}
    out = actions.node_drain(node="cpu-0", deadline_s="1s")
    assert sorted(out["result"]["blocked"]) == ["drill/web-0", "drill/web-1"]
    with pytest.raises(ActivityFailed, match=r"not drained, blocked by drill/web-0.*rolled back"):
        actions.node_drain(node="cpu-0", deadline_s="1s", require_drained="yes")
    node = kube.get("Node", None, "cpu-0")
    assert node is not None
    assert not node["spec"].get("unschedulable")


def test_a_refusal_fails_the_activity_and_writes_nothing(kube: FakeKube) -> None:
    with pytest.raises(ActivityFailed, match=r"^pod_kill: selector 'app=none' matches no Running"):
        actions.pod_kill(selector="app=none")
    with pytest.raises(ActivityFailed, match=r"node_drain: .*not in chaos.nodes"):
        actions.node_drain(node="db-0")
    assert kube.writes == []


def test_a_bad_argument_fails_before_the_cluster_is_touched(
    kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_cluster(_settings: Settings) -> Any:
        raise AssertionError("the cluster was reached")

    monkeypatch.setattr(session, "make_adapter", no_cluster)
    with pytest.raises(
        ActivityFailed, match=r"^pod_kill: count: expected an integer \(got 'two'\)"
    ):
        actions.pod_kill(selector="app=web", count="two")
    with pytest.raises(ActivityFailed, match=r"gpu_saturation: level: expected a number"):
        actions.gpu_saturation(level="lots", duration_s="5s", node="gpu-0")
    with pytest.raises(ActivityFailed, match=r"pod_kill: mode: expected 'all' or 'rolling'"):
        actions.pod_kill(selector="app=web", mode="sometimes")


def test_a_pod_kill_by_percent_and_a_dry_run(kube: FakeKube) -> None:
    dry = actions.node_drain(node="cpu-1", dry_run="true")
    assert dry["dry_run"] is True
    assert kube.writes == []
    out = actions.pod_kill(selector="app=web", percent="50", seed=1)
    assert len(out["targets"]) == 2
    assert sum(1 for w in kube.writes if w[0] == "delete") == 2


def test_cleanup_undoes_a_dead_runners_cordon(kube: FakeKube) -> None:
    kube.objects[("Node", "", "cpu-1")]["metadata"]["annotations"] = {
        OWNER: "kd-dead",
        "chaos.kubedrill.io/holder": f"{os.uname().nodename}/999999999/1",
    }
    kube.objects[("Node", "", "cpu-1")]["spec"]["unschedulable"] = True
    out = actions.cleanup()
    assert [u["target"] for u in out["undone"]] == [
        "cordon cpu-1 (owner kd-dead, " + (f"{os.uname().nodename}/999999999/1, no expiry)")
    ]
    assert out["remaining"] == []
    assert probes.nodes_schedulable() is True
    assert probes.no_leftovers() is True


def test_probes_read_and_wait(kube: FakeKube) -> None:
    assert probes.ready_replicas("web") is True
    assert probes.ready_replicas("web", at_least="5") is False
    kube.objects[("Node", "", "gpu-1")]["spec"]["unschedulable"] = True
    t0 = time.monotonic()
    assert probes.nodes_schedulable(names="gpu-*", within_s="0.6") is False
    assert time.monotonic() - t0 >= 0.5
    assert probes.nodes_schedulable(names=["cpu-*"]) is True
    with pytest.raises(ActivityFailed, match="match no node"):
        probes.nodes_schedulable(names="db-*")
    with pytest.raises(ActivityFailed, match="Deployment drill/api does not exist"):
        probes.ready_replicas("api")


# -- the control --------------------------------------------------------------------------


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_control_journals_activities_and_rolls_back_what_this_process_left(
    kube: FakeKube, tmp_path: Path
) -> None:
    timeline = Timeline()
    ctl = control.KubedrillControl(tmp_path / "acts.jsonl", {}, timeline=timeline)
    ctl.begin({"title": "t"})
    # a fault of this process that nothing rolled back (an action whose rollback was cut off)
    settings = session.settings_from({})
    chaos = Chaos(kube, settings, Timeline(), say=lambda _m: None)
    fault = chaos.fault(NodeDrain(node="cpu-1", deadline_s=5)).__enter__()
    # and another run's cordon (alive elsewhere): not ours to undo
    kube.objects[("Node", "", "gpu-0")]["metadata"]["annotations"] = {
        OWNER: "kd-other",
        "chaos.kubedrill.io/holder": "elsewhere/1/1",
    }
    kube.objects[("Node", "", "gpu-0")]["spec"]["unschedulable"] = True
    activity = {"name": "drain", "type": "action", "provider": {"type": "python", "module": "m"}}
    ctl.start_activity(activity)
    ctl.activity_completed(
        activity,
        {
            "status": "failed",
            "start": "a",
            "end": "b",
            "exception": [
                "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.ActivityFailed: boom\n"
            ],
        },
    )
    ctl.finish({"status": "completed", "deviated": True})
    ctl.finish({"status": "completed"})  # once only
    fault.rollback()  # stop its watchdog; the cordon is gone already

    cpu1 = kube.get("Node", None, "cpu-1")
    assert cpu1 is not None
    assert not cpu1["spec"].get("unschedulable")
    gpu0 = kube.get("Node", None, "gpu-0")
    assert gpu0 is not None
    assert gpu0["spec"]["unschedulable"]
    lines = _lines(tmp_path / "acts.jsonl")
    assert [x["event"] for x in lines] == [
        "experiment-started",
        "reconciled",
        "activity-started",
        "activity",
        "experiment-finished",
    ]
    assert lines[3]["status"] == "failed"
    assert lines[3]["error"] == "boom"
    end = lines[-1]
    assert end["status"] == "deviated"
    assert [r["what"] for r in end["rolled_back"]] == ["journal"]
    assert all(r["ok"] for r in end["rolled_back"])
    assert ("rolled_back", "cpu-1") in [
        (o.data.stage, o.data.target) for o in timeline.select(ChaosMarker)
    ]
    assert any("ctk action drain: failed: boom" in o.data.text for o in timeline.select(Note))


def test_configure_control_never_raises_and_registers_on_the_event_registry(
    kube: FakeKube, tmp_path: Path
) -> None:
    class Registry:
        def __init__(self) -> None:
            self.handlers: list[Any] = []

        def register(self, h: Any) -> None:
            self.handlers.append(h)

    reg = Registry()
    control.configure_control(
        journal_path="${where}/a.jsonl",
        configuration={"where": str(tmp_path)},
        experiment={"title": "x"},
        event_registry=reg,
    )
    assert len(reg.handlers) == 1
    assert (tmp_path / "a.jsonl").exists()
    control.configure_control(journal_path="/proc/nope/a.jsonl", event_registry=Registry())
    control.configure_control(reconcile="maybe", event_registry=Registry())  # logged, no raise


# -- the runner ---------------------------------------------------------------------------

_FAKE_CHAOS = """\
import json, os, signal, sys, time
from pathlib import Path
from kubedrill.timeline import ChaosMarker, SpoolWriter
args = sys.argv[1:]
journal = Path(args[args.index("--journal-path") + 1])
mode = Path(args[-1]).read_text().strip()
w = SpoolWriter(Path(os.environ["KUBEDRILL_TIMELINE_SPOOL"]), "chaostoolkit")
w.write(ChaosMarker("node_drain", "cpu-0", "injected", "cordoned"))
def write(status):
    run = {"activity": {"name": "drain", "type": "action"}, "status": "failed",
           "exception": ["chaoslib.exceptions.ActivityFailed: refused\\n"]}
    journal.write_text(json.dumps({"status": status, "deviated": False,
        "experiment": {"title": "fake"}, "run": [run] if mode == "fail" else [],
        "steady_states": {"before": {"probes": []}}, "rollbacks": []}))
def term(*_):
    write("interrupted")
    sys.exit(1)
signal.signal(signal.SIGTERM, term)
if mode == "hang":
    time.sleep(60)
write("completed")
"""


def _fake_chaos(tmp_path: Path) -> Path:
    script = tmp_path / "chaos"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(_FAKE_CHAOS))
    script.chmod(0o755)
    return script


def test_the_runner_fails_a_completed_run_whose_action_failed(tmp_path: Path) -> None:
    exp = tmp_path / "exp.json"
    exp.write_text("fail")
    timeline = Timeline()
    run = runner.run_experiment(exp, {}, timeline, tmp_path / "w", chaos=_fake_chaos(tmp_path))
    assert (run.returncode, run.status) == (0, "completed")
    assert not run.ok
    assert run.failed == ("drain (action): refused",)
    assert "failed: drain (action): refused" in run.reason
    assert [o.data.stage for o in timeline.select(ChaosMarker)] == ["injected"]
    exp.write_text("ok")
    assert runner.run_experiment(exp, {}, None, tmp_path / "w", chaos=_fake_chaos(tmp_path)).ok


def test_the_runner_stops_a_run_past_its_timeout(tmp_path: Path) -> None:
    exp = tmp_path / "exp.json"
    exp.write_text("hang")
    t0 = time.monotonic()
    run = runner.run_experiment(
        exp, {}, None, tmp_path / "w", timeout_s=1.5, grace_s=10, chaos=_fake_chaos(tmp_path)
    )
    assert time.monotonic() - t0 < 15
    assert run.timed_out
    assert run.status == "interrupted"  # it got SIGTERM and wrote its journal
    assert not run.ok
    assert "timed out" in run.reason


def test_the_runner_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run_experiment: path: expected an existing"):
        runner.run_experiment(tmp_path / "none.json", {}, None, tmp_path)
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(ConfigError, match="timeout_s"):
        runner.run_experiment(tmp_path / "e.json", {}, None, tmp_path, timeout_s=0)
