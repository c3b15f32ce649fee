"""Chaos benchmark (``make bench-chaos``): writes reports/bench/chaos.json.

Bars (issue 10), each checked against the sandbox's API server — never our journal alone:

* ``sigkill_trials`` ≥ 20 and ``sigkill_leftovers`` = 0: a runner process injects a
  drain, a GPU saturation or a node failure and is SIGKILLed at a random point (from
  planning to the hold); then the next start (a new session's ``reconcile()``) or
  ``kubedrill chaos cleanup`` runs, alternately. A leftover is anything the API still
  shows afterwards: a node unschedulable or marked by chaos, a Lease not held by kwok, a
  node not Ready (after 30 s), a Job or pod with chaos' owner label.
* ``blast_radius_violations`` = 0 over ``blast_radius_runs`` ≥ 50 Hypothesis runs: random
  actions, selectors, targets and allow-lists (namespaces, nodes); every write the audit
  log shows from the chaos session's user agent must be to an object the allow-list
  covers (pods and Jobs in allowed namespaces, allowed nodes and their Leases).
* ``pdb_violations_during_drain`` = 0 over ≥ 10 drains of a PDB-protected, process-backed
  service under Locust load: ``pdb_below_s == 0`` and ``pdb_bypasses == 0`` per drain.
* ``gpu_saturation_level_error_pts`` ≤ 10 at 50 % and 90 %: mean DCGM_FI_DEV_GPU_UTIL
  (sandbox ledger, via Prometheus) over the held window against the level. No NVML GPU
  here: the real-GPU figure is "not run" unless a CUDA device is present.
* ``rollback_p95_s``: from the end of a fault (the rollback's start) until the cluster is
  restored as the undo checks it (uncordoned; burner pods gone; silenced node Ready).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubedrill.adapters.kube import KubeAdapter  # noqa: E402
from kubedrill.chaos import (  # noqa: E402
    Chaos,
    ChaosRefused,
    GpuSaturation,
    NodeDrain,
    NodeFailure,
    PodKill,
)
from kubedrill.chaos.undo import LEASE_HOLDER_PREFIX, OWNER, find_leftovers  # noqa: E402
from kubedrill.checks import expect  # noqa: E402
from kubedrill.core.errors import KubedrillError  # noqa: E402
from kubedrill.core.settings import (  # noqa: E402
    ChaosSettings,
    ClusterSettings,
    Settings,
    TargetSettings,
)
from kubedrill.core.types import Verdict  # noqa: E402
from kubedrill.load import LoadRun, LoadSpec  # noqa: E402
from kubedrill.observe import ClusterWatcher  # noqa: E402
from kubedrill.sandbox.config import SandboxConfig  # noqa: E402
from kubedrill.sandbox.lifecycle import down, up  # noqa: E402
from kubedrill.sandbox.state import State  # noqa: E402
from kubedrill.timeline import Timeline  # noqa: E402

OUT = ROOT / "reports" / "bench" / "chaos.json"
NODES = ("gpu-0", "gpu-1", "cpu-0", "cpu-1")
UA = "kubedrill-chaos-bench"


def quiet(_line: str) -> None:
    pass


def settings(ns: str, journal: Path, **chaos: Any) -> Settings:
    base: dict[str, Any] = {
        "contexts": ("kwok-*",),
        "nodes": ("gpu-*", "cpu-*"),
        "journal": journal,
    }
    base.update(chaos)
    return Settings(target=TargetSettings(namespace=ns), chaos=ChaosSettings(**base))


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))], 3)


def ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def leftovers(adapter: KubeAdapter, wait_ready_s: float = 30.0) -> list[str]:
    """What the API shows that chaos left: the bar's definition of a leftover."""
    deadline = time.monotonic() + wait_ready_s
    while True:
        found: list[str] = []
        nodes, _ = adapter.list("Node", None)
        for n in nodes:
            name = n["metadata"]["name"]
            if (n.get("spec") or {}).get("unschedulable"):
                found.append(f"node {name} unschedulable")
            if any(
                k.startswith("chaos.kubedrill.io/") for k in n["metadata"].get("annotations") or {}
            ):
                found.append(f"node {name} carries chaos marks")
            if not ready(n):
                found.append(f"node {name} not Ready")
            taints = [t["key"] for t in (n.get("spec") or {}).get("taints") or []]
            if "node.kubernetes.io/unreachable" in taints:
                found.append(f"node {name} tainted unreachable")
        leases, _ = adapter.list("Lease", "kube-node-lease")
        for lease in leases:
            holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
            if holder.startswith(LEASE_HOLDER_PREFIX):
                found.append(f"lease {lease['metadata']['name']} held by {holder}")
        jobs, _ = adapter.list("Job", None, label_selector=OWNER)
        pods, _ = adapter.list("Pod", None, label_selector=OWNER)
        found += [f"job {j['metadata']['name']}" for j in jobs]
        found += [f"pod {p['metadata']['name']}" for p in pods]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(1)


RUNNER = """
import random, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from benchmarks.bench_chaos import settings
from kubedrill.adapters.kube import KubeAdapter
from kubedrill.chaos import Chaos, GpuSaturation, NodeDrain, NodeFailure
from kubedrill.core.settings import ClusterSettings
kubeconfig, ns, journal, what = sys.argv[2:6]
a = KubeAdapter.from_settings(ClusterSettings(kubeconfig=Path(kubeconfig)))
c = Chaos(a, settings(ns, Path(journal)), say=lambda m: None)
action = {
    "drain": NodeDrain(node=random.choice(["cpu-0", "cpu-1"]), deadline_s=30),
    "fail": NodeFailure(node=random.choice(["cpu-0", "cpu-1", "gpu-0"]), duration_s=120),
    "burn": GpuSaturation(node="gpu-1", level=0.5, duration_s=120, namespace=ns),
}[what]
print("start", flush=True)
with c.fault(action):
    print("injected", flush=True)
    time.sleep(300)
"""


def sigkill_trials(state: State, adapter: KubeAdapter, tmp: Path, trials: int) -> dict[str, Any]:
    ns = "bench-kill"
    adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    rng = random.Random(10)
    journal = tmp / "kill-journal.jsonl"
    rows, left_total, rollback = [], 0, []
    for i in range(trials):
        what = ("drain", "burn", "fail")[i % 3]
        # after the runner says "start": half of the kills land in planning, journaling or
        # the first write (it takes well under 0.1 s), half in the hold
        delay = rng.uniform(0.0, 0.08) if i % 4 < 2 else rng.uniform(0.1, 2.5)
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUNNER,
                str(ROOT),
                str(state.paths.kubeconfig),
                ns,
                str(journal),
                what,
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        ) as p:
            assert p.stdout is not None
            p.stdout.readline()
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        marked = [x.what for x in find_leftovers(adapter)]
        t0 = time.monotonic()
        how = "next start" if i % 2 == 0 else "kubedrill chaos cleanup"
        if how == "next start":
            done = Chaos(adapter, settings(ns, journal), Timeline(), quiet).reconcile()
            ok = all(d.ok for d in done)
        else:
            env = {**os.environ, "KUBEDRILL_CHAOS_JOURNAL": str(journal)}
            cp = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "kubedrill.cli",
                    "chaos",
                    "cleanup",
                    "--kubeconfig",
                    str(state.paths.kubeconfig),
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=180,
                check=False,
            )
            ok = cp.returncode == 0
        rollback.append(time.monotonic() - t0)
        found = leftovers(adapter)
        left_total += len(found)
        rows.append(
            {
                "trial": i,
                "action": what,
                "kill_after_s": round(delay, 2),
                "marked_when_killed": marked,
                "cleaned_by": how,
                "undo_ok": ok,
                "leftovers": found,
            }
        )
        print(
            f"  sigkill {i}: {what} killed after {delay:.2f}s, marked {marked}, "
            f"{how}: leftovers {found}",
            flush=True,
        )
    adapter.delete("Namespace", None, ns)
    return {
        "sigkill_trials": trials,
        "sigkill_leftovers": left_total,
        "sigkill_cleanup_s_p95": pct(rollback, 0.95),
        "sigkill_rows": rows,
    }


def _audit_writes(state: State, offset: int) -> tuple[list[dict[str, Any]], int]:
    raw = state.paths.audit_log.read_bytes()
    out = []
    for line in raw[offset:].splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("userAgent") != UA or e.get("stage") != "ResponseComplete":
            continue
        if e.get("verb") in ("create", "update", "patch", "delete", "deletecollection"):
            out.append(e)
    return out, len(raw)


def _allowed(e: dict[str, Any], namespaces: set[str], nodes: set[str]) -> bool:
    ref = e.get("objectRef") or {}
    res, ns, name = ref.get("resource"), ref.get("namespace"), ref.get("name")
    if res in ("pods", "jobs"):
        return ns in namespaces
    if res == "nodes":
        return name in nodes
    if res == "leases":
        return ns == "kube-node-lease" and name in nodes
    return False


def blast_radius(state: State, adapter: KubeAdapter, tmp: Path, runs: int) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, seed
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    spaces = ("br-a", "br-b", "br-c")
    for ns in spaces:
        adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for app, node in (("a", "cpu-0"), ("b", "cpu-1"), ("c", "gpu-0")):
            adapter.apply(_sim_deployment(f"{app}", node), ns)
    time.sleep(5)
    ua_adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=state.paths.kubeconfig))
    ua_adapter.api_client.user_agent = UA
    offset = state.paths.audit_log.stat().st_size
    tally = {"runs": 0, "refused": 0, "injected": 0, "failed": 0, "violations": 0, "writes": 0}
    examples: list[dict[str, Any]] = []

    actions = st.one_of(
        st.builds(
            lambda ns, app, n: PodKill(selector=f"app={app}", namespace=ns, count=n),
            st.sampled_from(spaces),
            st.sampled_from(("a", "b", "c", "zz")),
            st.integers(1, 2),
        ),
        st.builds(lambda node: NodeDrain(node=node, deadline_s=10), st.sampled_from(NODES)),
        st.builds(lambda node: NodeFailure(node=node, duration_s=5), st.sampled_from(NODES)),
        st.builds(
            lambda node, ns: GpuSaturation(
                node=node, level=0.5, duration_s=5, namespace=ns, start_timeout_s=20
            ),
            st.sampled_from(("gpu-0", "gpu-1")),
            st.sampled_from(spaces),
        ),
    )

    @seed(20261202)
    @hsettings(
        max_examples=runs, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        allowed_ns=st.sets(st.sampled_from(spaces), min_size=1, max_size=3),
        allowed_nodes=st.sets(st.sampled_from(NODES), max_size=4),
        action=actions,
    )
    def one(allowed_ns: set[str], allowed_nodes: set[str], action: Any) -> None:
        nonlocal offset
        s = settings(
            sorted(allowed_ns)[0],
            tmp / "br-journal.jsonl",
            namespaces=tuple(sorted(allowed_ns)),
            nodes=tuple(sorted(allowed_nodes)),
            max_pod_fraction=1.0,
            max_node_fraction=0.5,
            rollback_timeout_s=30,
        )
        c = Chaos(ua_adapter, s, Timeline(), quiet)
        outcome = "injected"
        try:
            with c.fault(action):
                pass
        except ChaosRefused as e:
            outcome = f"refused: {str(e)[:100]}"
        except KubedrillError as e:  # an API error mid-fault: rolled back, and counted
            outcome = f"failed: {str(e)[:100]}"
            tally["failed"] += 1
        writes, offset = _audit_writes(state, offset)
        bad = [w for w in writes if not _allowed(w, allowed_ns, allowed_nodes)]
        tally["runs"] += 1
        tally["writes"] += len(writes)
        tally["violations"] += len(bad)
        if outcome == "injected" or outcome.startswith("refused"):
            tally["refused" if outcome != "injected" else "injected"] += 1
        if bad or len(examples) < 8:
            examples.append(
                {
                    "action": repr(action)[:160],
                    "namespaces": sorted(allowed_ns),
                    "nodes": sorted(allowed_nodes),
                    "outcome": outcome,
                    "writes": len(writes),
                    "outside": [w.get("objectRef") for w in bad],
                }
            )

    one()
    time.sleep(2)  # the audit log is written asynchronously: a last look
    late, offset = _audit_writes(state, offset)
    tally["late_writes_seen"] = len(late)
    # the API server writes its audit log before it answers (blocking mode): a write seen
    # only now could not be charged to its run, so the bar wants none
    # the negative control: one write outside any allow-list, from the same user agent,
    # must be caught by the same scan (else a zero above would prove nothing)
    ua_adapter.patch("Namespace", None, "br-a", {"metadata": {"annotations": {"kd/x": "1"}}})
    time.sleep(2)
    control, _ = _audit_writes(state, offset)
    caught = [w for w in control if not _allowed(w, set(spaces), set(NODES))]
    for ns in spaces:
        adapter.delete("Namespace", None, ns)
    return {
        "blast_radius_runs": tally["runs"],
        "blast_radius_injected": tally["injected"],
        "blast_radius_refused": tally["refused"],
        "blast_radius_failed": tally["failed"],
        "blast_radius_writes_checked": tally["writes"],
        "blast_radius_violations": tally["violations"],
        "blast_radius_control_caught": len(caught) == 1,
        "blast_radius_late_writes": tally["late_writes_seen"],
        "blast_radius_examples": examples,
    }


def _sim_deployment(app: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "c",
                            "image": "example.invalid/x",
                            "resources": {"requests": {"cpu": "10m"}},
                        }
                    ],
                },
            },
        },
    }


def drains_under_load(state: State, adapter: KubeAdapter, tmp: Path, n: int) -> dict[str, Any]:
    from tests.integration.kit import pdb, process_deployment, service

    ns = "bench-drain"
    adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    time.sleep(2)
    web = process_deployment("web", 3, ["--slots", "4", "--service-time-ms", "5"])
    web["spec"]["template"]["spec"]["nodeSelector"] = {"kubedrill.io/node-pool": "cpu"}
    adapter.apply(web, ns)
    adapter.apply(service("web"), ns)
    adapter.apply(pdb("web", "web", minAvailable=2), ns)
    wait(lambda: ready_replicas(adapter, ns, "web") >= 3, 90)
    url = wait(
        lambda: (
            (adapter.get("Service", ns, "web") or {})
            .get("metadata", {})
            .get("annotations", {})
            .get("kubedrill.io/local-url")
        ),
        30,
    )
    tl = Timeline()
    chaos = Chaos(adapter, settings(ns, tmp / "drain-journal.jsonl"), tl, quiet)
    violations, inconclusive, rollbacks, drain_s, refused = 0, 0, [], [], 0
    with ClusterWatcher(adapter, tl, ns) as w:
        w.wait_synced(30)
        with LoadRun(LoadSpec(url=str(url), duration=n * 12 + 10, rate=60), tl):
            time.sleep(2)
            for i in range(n):
                phase = f"drain-{i}"
                with tl.phase(phase), chaos.fault(NodeDrain(pods_of="app=web", deadline_s=60)) as f:
                    f.hold(1)
                rollbacks.append(f.result["rollback_s"])
                drain_s.append(f.result["drain_s"])
                refused += f.result["refused"]
                for e in ("pdb_below_s == 0", "pdb_bypasses == 0"):
                    r = expect(e, phase=phase, pdb="web").evaluate(tl)
                    violations += r.verdict is Verdict.FAIL
                    inconclusive += r.verdict is Verdict.INCONCLUSIVE
                    if r.verdict is not Verdict.PASS:
                        print(f"  {phase}: {e}: {r.verdict.value}: {r.reason}", flush=True)
                wait(lambda: ready_replicas(adapter, ns, "web") >= 3, 60)
                time.sleep(2)
                print(
                    f"  drain {i}: {f.plan.targets if f.plan else '?'} "
                    f"in {f.result['drain_s']:.1f}s, "
                    f"{f.result['refused']} refused",
                    flush=True,
                )
    errors = expect("error_rate < 1%").evaluate(tl)
    adapter.delete("Namespace", None, ns)
    return {
        "drains_under_load": n,
        "pdb_violations_during_drain": violations,
        "pdb_checks_inconclusive": inconclusive,
        "drain_evictions_refused_total": refused,
        "drain_s_p50": pct(drain_s, 0.5),
        "drain_s_max": pct(drain_s, 1.0),
        "drain_load_error_rate": errors.value,
        "drain_load_verdict": errors.verdict.value,
        "_rollback_drain": rollbacks,
    }


def ready_replicas(adapter: KubeAdapter, ns: str, name: str) -> int:
    d = adapter.get("Deployment", ns, name) or {}
    return int((d.get("status") or {}).get("readyReplicas") or 0)


def wait(fn: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (v := fn()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s")
        time.sleep(0.5)
    return v


def saturation_levels(state: State, adapter: KubeAdapter, tmp: Path) -> dict[str, Any]:
    ns = "bench-burn"
    adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    time.sleep(2)
    chaos = Chaos(adapter, settings(ns, tmp / "burn-journal.jsonl"), Timeline(), quiet)
    out: dict[str, Any] = {}
    rollbacks = []
    for level in (0.5, 0.9):
        with chaos.fault(GpuSaturation(node="gpu-1", level=level, duration_s=40)) as f:
            time.sleep(6)  # ledger → exporter → a 2 s scrape
            t0 = time.time()
            time.sleep(20)
            t1 = time.time()
        rollbacks.append(f.result["rollback_s"])
        q = 'avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-1"}[20s]))'
        u = f"{state.prometheus_url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": q, "time": t1}
        )
        with urllib.request.urlopen(u, timeout=10) as r:
            res = json.load(r)["data"]["result"]
        mean = float(res[0]["value"][1]) if res else None
        err = None if mean is None else round(abs(mean - 100 * level), 2)
        out[f"gpu_saturation_mean_util_at_{int(level * 100)}"] = mean
        out[f"gpu_saturation_level_error_pts_at_{int(level * 100)}"] = err
        print(f"  burn {level:.0%}: mean DCGM util {mean} over {t1 - t0:.0f}s -> error {err} pts")
    errs = [
        v for k, v in out.items() if k.startswith("gpu_saturation_level_error") and v is not None
    ]
    out["gpu_saturation_level_error_pts"] = max(errs) if len(errs) == 2 else None
    out["gpu_saturation_source"] = "sandbox busy ledger via DCGM-named exporter and Prometheus"
    out["gpu_saturation_nvml"] = "not run: no CUDA device on this machine"
    adapter.delete("Namespace", None, ns)
    out["_rollback_burn"] = rollbacks
    return out


def node_failures(state: State, adapter: KubeAdapter, tmp: Path, n: int) -> dict[str, Any]:
    chaos = Chaos(adapter, settings("default", tmp / "fail-journal.jsonl"), Timeline(), quiet)
    rollbacks, notready = [], []
    for i in range(n):
        node = ("cpu-0", "cpu-1")[i % 2]
        with chaos.fault(NodeFailure(node=node, duration_s=40)) as f:
            t0 = time.monotonic()
            wait(lambda n=node: not ready(adapter.get("Node", None, n) or {}), 60)
            notready.append(time.monotonic() - t0)
        rollbacks.append(f.result["rollback_s"])
        print(
            f"  node failure {i}: {node} NotReady after {notready[-1]:.1f}s, "
            f"back in {f.result['rollback_s']:.1f}s",
            flush=True,
        )
    return {
        "node_failures": n,
        "node_notready_after_s_p50": pct(notready, 0.5),
        "_rollback_fail": rollbacks,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trials", type=int, default=21)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--drains", type=int, default=10)
    ap.add_argument("--failures", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    started = time.time()
    doc: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    f: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kubedrill-bench-chaos-") as tmp_s:
        tmp = Path(tmp_s)
        cfg = SandboxConfig(name="bchaos", root=tmp / "sb")
        state, _ = up(cfg, quiet, allow_build=False)
        try:
            adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=state.paths.kubeconfig))
            print(f"sigkill: {a.trials} runners killed mid-fault", flush=True)
            f.update(sigkill_trials(state, adapter, tmp, a.trials))
            print(f"blast radius: {a.runs} Hypothesis runs against the audit log", flush=True)
            f.update(blast_radius(state, adapter, tmp, a.runs))
            print(f"drains: {a.drains} drains under load of a PDB-protected service", flush=True)
            f.update(drains_under_load(state, adapter, tmp, a.drains))
            print("saturation: 50 % and 90 % on gpu-1", flush=True)
            f.update(saturation_levels(state, adapter, tmp))
            print(f"node failures: {a.failures}", flush=True)
            f.update(node_failures(state, adapter, tmp, a.failures))
        finally:
            down(cfg.paths, quiet)
    for what in ("drain", "burn", "fail"):
        vals = f.pop(f"_rollback_{what}", [])
        f[f"rollback_{what}_s_p95"] = pct(vals, 0.95)
        f.setdefault("_all", []).extend(vals)
    everything = f.pop("_all")
    f["rollback_p50_s"], f["rollback_p95_s"] = pct(everything, 0.5), pct(everything, 0.95)
    f["rollback_samples"] = len(everything)
    doc["figures"] = f
    doc["bars"] = {
        "sigkill_trials>=20 and sigkill_leftovers==0": f["sigkill_trials"] >= 20
        and f["sigkill_leftovers"] == 0,
        "blast_radius_violations==0 over >=50 runs": f["blast_radius_runs"] >= 50
        and f["blast_radius_violations"] == 0
        and f["blast_radius_writes_checked"] > 0,
        "pdb_violations_during_drain==0 over >=10 drains": f["drains_under_load"] >= 10
        and f["pdb_violations_during_drain"] == 0
        and f["pdb_checks_inconclusive"] == 0,
        "gpu_saturation_level_error_pts<=10 at 50 and 90 %": f["gpu_saturation_level_error_pts"]
        is not None
        and f["gpu_saturation_level_error_pts"] <= 10,
        "rollback_p95_s measured": f["rollback_p95_s"] is not None,
    }
    doc["all_bars_met"] = all(doc["bars"].values())
    doc["loadavg_end"] = os.getloadavg()
    doc["wall_s"] = round(time.time() - started, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "figures"}, indent=1))
    print(f"wrote {a.out}")
    return 0 if doc["all_bars_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
