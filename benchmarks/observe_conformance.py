"""Real controller runs judged for spec conformance (issue 9's ``conformance_false_positives``).

Six runs at once in one sandbox, each in its own namespace and thread: a Deployment of
kwok pods (100m CPU request) whose ``kwok.x-k8s.io/usage-cpu`` annotation drives
metrics-server, scaled by the real HPA controller (or KEDA and its HPA) up to 4 and back
down to 1 (KEDA: 0 → N → 0). Each run is judged by ``expect.hpa_conformant`` (KEDA:
``expect.keda_conformant``) over its whole ``run`` phase, with the sandbox's own
controller flags as the slack (sync period 5 s, downscale stabilization 15 s).

A run whose HPA did not step both up and down proves nothing: it is counted invalid, and
not as a real run. ``conformance_false_positives`` counts the valid runs whose check FAILED
(every step of a real controller is conformant by definition, so a FAIL is a checker bug
or a controller behaviour docs/conformance.md must describe).

``python benchmarks/observe_conformance.py`` starts a sandbox of its own and prints the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kubedrill.adapters.kube import KubeAdapter  # noqa: E402
from kubedrill.checks import Check, expect  # noqa: E402
from kubedrill.checks.conformance import Slack  # noqa: E402
from kubedrill.core.settings import ClusterSettings  # noqa: E402
from kubedrill.core.types import Verdict  # noqa: E402
from kubedrill.observe import ClusterWatcher  # noqa: E402
from kubedrill.sandbox.state import State  # noqa: E402
from kubedrill.timeline import ObjectTransition, Observation, Scalar, Timeline  # noqa: E402

__all__ = ["RUNS", "run_real_conformance"]

Log = Callable[[str], None]
KINDS = ("Deployment", "ReplicaSet", "HorizontalPodAutoscaler", "Pod", "ScaledObject", "Event")
#: the sandbox's kube-controller-manager flags (kubedrill/sandbox/config.py)
SLACK = Slack(sync_period_s=5.0, downscale_stabilization_s=15.0)
HOT, COLD = "90m", "5m"  # of a 100m request: 90 % and 5 % against a 50 % target
APP = "web"


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    behavior: str  # in words, for the report
    spec_behavior: dict[str, Any] | None = None  # the HPA's spec.behavior (None: legacy)
    keda: bool = False
    hold_s: float = 8.0  # seconds at the top before the load drops
    timeout_s: float = 240.0  # each wait


def _pods(value: int, period: int) -> dict[str, Any]:
    return {"type": "Pods", "value": value, "periodSeconds": period}


def _pct(value: int, period: int) -> dict[str, Any]:
    return {"type": "Percent", "value": value, "periodSeconds": period}


RUNS = (
    Run("default", "no spec.behavior: the legacy path (max(2c, 4) a sync, the 15 s flag window)"),
    Run(
        "percent",
        "Percent policies: up 100 %/10 s, down 50 %/10 s, down window 5 s",
        {
            "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [_pct(100, 10)]},
            "scaleDown": {"stabilizationWindowSeconds": 5, "policies": [_pct(50, 10)]},
        },
    ),
    Run(
        "pods-min",
        "Pods policies with selectPolicy Min: up min(1, 3)/10 s, down 1/5 s, window 0 s",
        {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Min",
                "policies": [_pods(1, 10), _pods(3, 10)],
            },
            "scaleDown": {"stabilizationWindowSeconds": 0, "policies": [_pods(1, 5)]},
        },
    ),
    Run(
        "long-window",
        "a 60 s scaleDown stabilization window (Percent 100 %/5 s), outlasted",
        {"scaleDown": {"stabilizationWindowSeconds": 60, "policies": [_pct(100, 5)]}},
        hold_s=5.0,
    ),
    Run(
        "up-window",
        "a 15 s scaleUp stabilization window, Pods 2/5 s up, default scaleDown policies",
        {
            "scaleUp": {"stabilizationWindowSeconds": 15, "policies": [_pods(2, 5)]},
            "scaleDown": {"stabilizationWindowSeconds": 10},
        },
    ),
    Run(
        "keda",
        "KEDA ScaledObject 0 ↔ 4 (Prometheus trigger, threshold 2, cooldownPeriod 30 s: "
        "its HPA steps down to 1 first, then KEDA to 0)",
        keda=True,
    ),
)


def _deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": APP}
    container = {"name": "main", "image": "example.invalid/app",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}  # fmt: skip
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels,
                                           "annotations": {"kwok.x-k8s.io/usage-cpu": HOT}},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [container]}}},
    }  # fmt: skip


def _hpa(behavior: dict[str, Any] | None) -> dict[str, Any]:
    metric = {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 50}}}  # fmt: skip
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
        "minReplicas": 1, "maxReplicas": 4, "metrics": [metric],
    }  # fmt: skip
    if behavior is not None:
        spec["behavior"] = behavior
    meta = {"name": APP}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": meta, "spec": spec}  # fmt: skip


def _scaledobject(prometheus_url: str, until_epoch: int) -> dict[str, Any]:
    # 8 (four pods' worth at threshold 2) until ``until_epoch``, then 0: not active
    query = f"vector(8 * (time() < bool {until_epoch}))"
    trigger = {"serverAddress": prometheus_url, "query": query, "threshold": "2"}
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": APP},
        "spec": {"scaleTargetRef": {"name": APP}, "pollingInterval": 5, "cooldownPeriod": 30,
                 "minReplicaCount": 0, "maxReplicaCount": 4,
                 "triggers": [{"type": "prometheus", "metadata": trigger}]},
    }  # fmt: skip


def _wait(fn: Callable[[], bool], timeout_s: float, what: str, every_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not fn():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


@dataclass(slots=True)
class _Outcome:
    run: Run
    namespace: str
    timeline: Timeline = field(default_factory=Timeline)
    error: str | None = None
    seconds: float = 0.0
    dropped_at: float | None = None  # monotonic: when the load (or the trigger) went to 0


def _replicas(adapter: KubeAdapter, ns: str) -> tuple[int | None, int | None]:
    dep = adapter.get("Deployment", ns, APP) or {}
    return (dep.get("spec") or {}).get("replicas"), (dep.get("status") or {}).get("readyReplicas")


def _drive(adapter: KubeAdapter, state: State, out: _Outcome, log: Log) -> None:
    run, ns, tl = out.run, out.namespace, out.timeline
    adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    _wait(lambda: adapter.get("ServiceAccount", ns, "default") is not None, 30, "default SA")
    adapter.apply(_deployment(0 if run.keda else 1), ns)
    with ClusterWatcher(adapter, tl, ns, kinds=KINDS) as w:
        w.wait_synced(30)
        if not run.keda:
            _wait(lambda: _replicas(adapter, ns)[1] == 1, 60, f"{ns}: 1 pod ready")
        with tl.phase("run"):
            if run.keda:
                _keda(adapter, state, out, log)
            else:
                _hpa_run(adapter, out, log)


def _hpa_run(adapter: KubeAdapter, out: _Outcome, log: Log) -> None:
    run, ns = out.run, out.namespace
    adapter.apply(_hpa(run.spec_behavior), ns)
    _wait(lambda: _replicas(adapter, ns) == (4, 4), run.timeout_s, f"{ns}: 4 ready")
    log(f"{ns}: at 4 ready; holding {run.hold_s:g} s, then the load drops")
    time.sleep(run.hold_s)
    out.dropped_at = time.monotonic()
    for pod in adapter.list("Pod", ns, label_selector=f"app={APP}")[0]:
        adapter.patch("Pod", ns, pod["metadata"]["name"], {"metadata": {
            "annotations": {"kwok.x-k8s.io/usage-cpu": COLD}}})  # fmt: skip
    _wait(lambda: _replicas(adapter, ns)[0] == 1, run.timeout_s, f"{ns}: back to 1")
    log(f"{ns}: back to 1")
    time.sleep(8)  # a sync or two at the bottom: nothing more may happen


def _keda(adapter: KubeAdapter, state: State, out: _Outcome, log: Log) -> None:
    run, ns = out.run, out.namespace
    until = int(time.time()) + 75
    adapter.apply(_scaledobject(state.prometheus_url, until), ns)
    _wait(lambda: _replicas(adapter, ns) == (4, 4), run.timeout_s, f"{ns}: 4 ready")
    log(f"{ns}: at 4 ready; the trigger goes to 0 in {until - time.time():.0f} s")
    out.dropped_at = time.monotonic() + max(0.0, until - time.time())
    _wait(lambda: _replicas(adapter, ns)[0] == 0, run.timeout_s + 60, f"{ns}: back to 0")
    log(f"{ns}: back to 0")
    time.sleep(8)


def _one(adapter: KubeAdapter, state: State, out: _Outcome, log: Log) -> None:
    t0 = time.monotonic()
    try:
        _drive(adapter, state, out, log)
    except Exception as e:  # noqa: BLE001 - one run's failure is its verdict, not the others'
        out.error = f"{type(e).__name__}: {e}"
        log(f"{out.namespace}: {out.error}\n{traceback.format_exc(limit=3)}")
    finally:
        out.seconds = time.monotonic() - t0
        try:
            adapter.delete("Namespace", None, out.namespace)
        except Exception as e:  # noqa: BLE001 - cleanup must not hide the run's result
            log(f"{out.namespace}: namespace not deleted: {e}")


def _hpa_obs(tl: Timeline, hpa: str, ns: str) -> list[Observation[ObjectTransition]]:
    return [
        o
        for o in tl.select(ObjectTransition)
        if o.data.api_kind == "HorizontalPodAutoscaler"
        and o.data.name == hpa
        and o.data.namespace == ns
        and o.data.event != "DELETED"
    ]


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _steps(obs: list[Observation[ObjectTransition]]) -> tuple[list[int], list[tuple[int, int]]]:
    """desiredReplicas once per change, and the controller's decisions: distinct status
    writes with 0 < current != desired from a sync that could scale (ScalingActive and
    AbleToScale not False: a fresh HPA's first write, before metrics-server has figures,
    says current 1, desired 0; at 0 the HPA does nothing, those moves are KEDA's)."""
    seq: list[int] = []
    decisions: list[tuple[int, int]] = []
    last: tuple[int, int] | None = None
    for o in obs:
        f = o.data.fields
        c, d = _int(f.get("current_replicas")), _int(f.get("desired_replicas"))
        if d is not None and (not seq or seq[-1] != d):
            seq.append(d)
        healthy = f.get("scaling_active") is not False and f.get("able_to_scale") is not False
        if c is not None and d is not None and 0 < c != d and (c, d) != last and healthy:
            decisions.append((c, d))
        if c is not None and d is not None:
            last = (c, d)
    return seq, decisions


def _is_down(f: Mapping[str, Scalar]) -> bool:
    c, d = _int(f.get("current_replicas")), _int(f.get("desired_replicas"))
    return c is not None and d is not None and 0 < d < c and f.get("scaling_active") is True


def _target_moves(tl: Timeline, ns: str) -> list[int]:
    seq: list[int] = []
    for o in tl.select(ObjectTransition):
        if o.data.api_kind == "Deployment" and o.data.name == APP and o.data.namespace == ns:
            r = _int(o.data.fields.get("replicas"))
            if r is not None and (not seq or seq[-1] != r):
                seq.append(r)
    return seq


#: a spec the recorded steps break (one pod per 30 s up, a 600 s scale-down window): the
#: same record judged against it must FAIL, or the check could not have fired at all
STRICT = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [_pods(1, 30)]},
    "scaleDown": {"stabilizationWindowSeconds": 600, "policies": [_pct(100, 15)]},
}


def _tampered(tl: Timeline, hpa: str) -> Timeline:
    """The same record with the HPA's behavior replaced by :data:`STRICT` (and a
    ScaledObject's cooldownPeriod by 600 s)."""
    out = Timeline()
    out.mono0, out.wall0 = tl.mono0, tl.wall0
    for o in tl.observations():
        data = o.data
        if isinstance(data, ObjectTransition) and isinstance(data.fields.get("spec"), str):
            spec = json.loads(str(data.fields["spec"]))
            if data.api_kind == "HorizontalPodAutoscaler" and data.name == hpa:
                spec["behavior"] = STRICT
            elif data.api_kind == "ScaledObject" and data.name == APP:
                spec["cooldownPeriod"] = 600
            data = dataclasses.replace(data, fields={**data.fields, "spec": json.dumps(spec)})
        out.record(data, o.source, t=o.t, wall=o.wall)
    return out


def _check(run: Run, ns: str) -> Check:
    if run.keda:
        return expect.keda_conformant(APP, ns, phase="run", slack=SLACK)
    return expect.hpa_conformant(APP, ns, phase="run", slack=SLACK)


def _judge(out: _Outcome) -> dict[str, Any]:
    run, ns, tl = out.run, out.namespace, out.timeline
    hpa = f"keda-hpa-{APP}" if run.keda else APP
    obs = _hpa_obs(tl, hpa, ns)
    seq, decisions = _steps(obs)
    ups = sum(1 for c, d in decisions if d > c)
    downs = sum(1 for c, d in decisions if d < c)
    row: dict[str, Any] = {
        "name": run.name, "behavior": run.behavior, "namespace": ns,
        "steps": sum(1 for _ in itertools.pairwise(seq)), "desired": seq,
        "decisions": [f"{c}→{d}" for c, d in decisions], "up_steps": ups, "down_steps": downs,
        "target_replicas": _target_moves(tl, ns), "seconds": round(out.seconds, 1),
    }  # fmt: skip
    first_down = next((o.t for o in obs if _is_down(o.data.fields)), None)
    if out.dropped_at is not None and first_down is not None:
        row["first_down_after_drop_s"] = round(first_down - out.dropped_at, 1)
    result = _check(run, ns).evaluate(tl)
    row["verdict"] = result.verdict.value
    row["reason"] = result.reason
    # the same record judged with kubedrill's defaults (15 s sync, the 300 s downscale
    # flag) instead of the sandbox's flags: what a user who does not pass them would get
    untold = (expect.keda_conformant if run.keda else expect.hpa_conformant)(APP, ns, "run")
    row["verdict_default_slack"] = untold.evaluate(tl).verdict.value
    control = _check(run, ns).evaluate(_tampered(tl, hpa))
    row["tampered_control"] = f"{control.verdict.value}: {control.reason[:300]}"
    problems = []
    if out.error:
        problems.append(f"the run did not complete: {out.error}")
    if ups < 1 or downs < 1:
        problems.append(f"{ups} up and {downs} down decision(s) of {hpa}: proves nothing")
    if run.keda and not {0, 4} <= set(row["target_replicas"][1:]):
        problems.append(f"KEDA did not go 0 → 4 → 0: {row['target_replicas']}")
    if control.verdict is not Verdict.FAIL:
        problems.append("the tampered control did not FAIL: the check may be unable to fire")
    row["valid"] = not problems
    if problems:
        row["invalid"] = "; ".join(problems)
    row["false_positive"] = row["valid"] and result.verdict is Verdict.FAIL
    return row


def run_real_conformance(
    state: State, log: Log = print, save_dir: Path | None = None
) -> dict[str, Any]:
    """Run :data:`RUNS` concurrently on ``state``'s sandbox and judge each (see module doc).
    ``save_dir``: write each run's timeline there as ``<name>.json`` (to re-judge offline)."""
    adapter = KubeAdapter.from_settings(ClusterSettings(kubeconfig=state.paths.kubeconfig))
    # the dynamic client's discovery is not safe for concurrent first look-ups (KeyError
    # 'resources' from kubernetes.dynamic): resolve every kind once, before the threads
    for kind in (*KINDS, "Namespace", "ServiceAccount"):
        adapter.has_kind(kind)
    stamp = time.strftime("%H%M%S")
    outs = [_Outcome(r, f"conf-{r.name}-{stamp}") for r in RUNS]
    threads = [
        threading.Thread(target=_one, args=(adapter, state, o, log), name=o.namespace) for o in outs
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = [_judge(o) for o in outs]
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        for o in outs:
            (save_dir / f"{o.run.name}.json").write_text(json.dumps(o.timeline.to_json()))
    valid = [r for r in rows if r["valid"] and r["verdict"] in ("PASS", "FAIL")]
    return {
        "conformance_real_runs": len(valid),
        "conformance_false_positives": sum(1 for r in valid if r["verdict"] == "FAIL"),
        "conformance_real_invalid": len(rows) - len(valid),
        "conformance_real_wall_s": round(time.monotonic() - t0, 1),
        "runs": rows,
    }


def main() -> int:
    from kubedrill.sandbox.config import SandboxConfig
    from kubedrill.sandbox.lifecycle import down, up

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--save-timelines", type=Path, help="write each run's timeline here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kd-conf-") as tmp:
        cfg = SandboxConfig(name="conf", root=Path(tmp))
        state, _ = up(cfg, lambda line: print(line, file=sys.stderr))
        try:
            result = run_real_conformance(
                state, lambda line: print(line, file=sys.stderr), args.save_timelines
            )
        finally:
            down(cfg.paths, lambda line: print(line, file=sys.stderr))
    print(json.dumps(result, indent=2))
    return 0 if result["conformance_false_positives"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
