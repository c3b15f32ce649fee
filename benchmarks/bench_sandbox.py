"""Sandbox benchmark (``make bench-sandbox``): prints figures, writes reports/bench/sandbox.json.

Bars (issue 3):

* ``warm_up_s`` ≤ 45: binaries cached, ``sandbox up`` (default: 2 GPU + 2 CPU nodes,
  metrics-server, Prometheus, prometheus-adapter, KEDA) until every component is ready.
  Median of ``--warm-runs`` fresh starts.
* ``scale_1000_pods_s`` ≤ 120: on a running sandbox, 100 GPU nodes and a Deployment of
  1,000 plain pods (tolerating the GPU taint, no GPU request) created, until all 1,000
  are Running. The upstream controllers keep their default client QPS limits.
* ``idle_cpu_pct`` ≤ 25: CPU time of every sandbox process (utime + stime from
  /proc/<pid>/stat) over ``--idle-s`` seconds with the default sandbox up and idle, as
  % of one core.
* ``cold_build_s``: not re-measured here (a cold build takes 17 to 27 min and 12 GB): the
  wall seconds of the last cold build (every component built, none reused) as that build
  recorded them in ``<bin_dir>/build-record.json``, with the cores, go version and date
  beside it. Without such a record the figure is null, with the reason; it is never taken
  from a doc.

The machine may be shared: load averages are recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kubedrill.adapters.kube import ApiFailed
from kubedrill.sandbox.binaries import resolve_binaries
from kubedrill.sandbox.build import (
    VERSIONS_FILE,
    default_bin_dir,
    default_cache_dir,
    is_full_cold,
    prebuilt_bin_dir,
    read_record,
    record_path,
)
from kubedrill.sandbox.config import NodePool, SandboxConfig
from kubedrill.sandbox.lifecycle import down, up
from kubedrill.sandbox.manifests import node_doc
from kubedrill.sandbox.procs import read_pid
from kubedrill.sandbox.state import State

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench" / "sandbox.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def quiet(_line: str) -> None:
    pass


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def sandbox_pids(state: State) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, managed in state.components():
        pid = read_pid(state.paths.pid_file(name, managed))
        if pid is not None:
            out[name] = pid
    return out


def measure_idle(state: State, seconds: float) -> dict[str, Any]:
    pids = sandbox_pids(state)
    before = {n: proc_cpu_s(p) for n, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    per = {n: round(100 * (proc_cpu_s(p) - before[n]) / wall, 2) for n, p in pids.items()}
    return {
        "idle_cpu_pct": round(sum(per.values()), 2),
        "per_component_pct": per,
        "window_s": round(wall, 1),
    }


def warm_up(root: Path, runs: int) -> dict[str, Any]:
    times: list[float] = []
    for i in range(runs):
        cfg = SandboxConfig(name=f"warm{i}", root=root)
        t0 = time.monotonic()
        up(cfg, quiet, allow_build=False)
        times.append(round(time.monotonic() - t0, 2))
        t1 = time.monotonic()
        down(cfg.paths, quiet)
        times_down = round(time.monotonic() - t1, 2)
        print(f"  warm-up run {i + 1}: up {times[-1]:.1f}s, down {times_down:.1f}s", flush=True)
    return {"warm_up_s": statistics.median(times), "warm_up_runs_s": times}


def _count_running(state: State, ns: str) -> int:
    try:
        items, _ = state.api().list("Pod", ns, field_selector="status.phase=Running")
    except ApiFailed:
        return 0
    return len(items)


def _ready_nodes(state: State, pool: str) -> int:
    items, _ = state.api().list("Node", None, label_selector=f"kubedrill.io/node-pool={pool}")
    return sum(
        1
        for n in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n["status"].get("conditions", [])
        )
    )


def scale(state: State, nodes: int, pods: int, timeout_s: float) -> dict[str, Any]:
    kubectl = state.kubectl()
    pool = NodePool(prefix="scale", count=nodes, cpu="96", memory="1Ti", gpus=8,
                    gpu_product=state.config.gpu_product)  # fmt: skip
    ns = "bench-scale"
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "plain", "namespace": ns},
        "spec": {
            "replicas": pods,
            "selector": {"matchLabels": {"app": "plain"}},
            "template": {
                "metadata": {"labels": {"app": "plain"}},
                "spec": {
                    "nodeSelector": {"kubedrill.io/node-pool": "scale"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                    "containers": [{"name": "c", "image": "example.invalid/plain",
                                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
                },
            },
        },
    }  # fmt: skip
    kubectl.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}])
    t0 = time.monotonic()
    kubectl.apply([node_doc(pool, i, state.config.name) for i in range(nodes)])
    nodes_created = time.monotonic() - t0
    kubectl.apply([deploy])
    marks: dict[str, float] = {}
    while time.monotonic() - t0 < timeout_s:
        if "nodes_ready_s" not in marks and _ready_nodes(state, "scale") == nodes:
            marks["nodes_ready_s"] = round(time.monotonic() - t0, 1)
        running = _count_running(state, ns)
        if running >= pods:
            break
        time.sleep(1)
    total = time.monotonic() - t0
    return {
        "scale_1000_pods_s": round(total, 1) if running >= pods else None,
        "scale_nodes_created_s": round(nodes_created, 1),
        "scale_nodes_ready_s": marks.get("nodes_ready_s"),
        "scale_pods_running": running,
        "scale_nodes": nodes,
        "scale_pods": pods,
    }


def cold_build() -> dict[str, Any]:
    """``cold_build_s`` from the build record the last cold build wrote beside the binaries."""
    bin_dir = prebuilt_bin_dir(os.environ) or default_bin_dir(VERSIONS_FILE.read_text())
    path = record_path(bin_dir)
    record = read_record(bin_dir)
    cold = record.get("cold") if record else None
    logs = sorted((default_cache_dir() / "logs").glob("*.log"))
    per_binary = [
        float(x)
        for log in logs
        for x in re.findall(r"^# built \S+ in ([0-9.]+)s", log.read_text(), re.M)
    ]
    out: dict[str, Any] = {
        "cold_build_s": None,
        "cold_build_cores": None,
        "cold_build_recorded_at": None,
        "cold_build_source": f"build record at {path}",
    }
    last = (record or {}).get("last_run") or {}
    if record is None:
        out["cold_build_null_reason"] = (
            f"no build record at {path}: no build has run there since builds record their "
            "times; a cold build (empty bin dir) writes one"
        )
    elif cold is None or not is_full_cold(cold):
        out["cold_build_null_reason"] = (
            f"{path} holds no completed cold build of every component (last run: "
            f"{last.get('outcome')}, {'cold' if last.get('cold') else 'warm'}, "
            f"components {last.get('selected')})"
        )
    else:
        out.update(
            cold_build_s=cold["wall_s"],
            cold_build_cores=cold["cpu_count"],
            cold_build_recorded_at=cold["recorded_at"],
            cold_build_go=cold["go_version"],
            cold_build_machine=cold["machine"],
            cold_build_go_cache_was_empty=cold["go_build_cache_was_empty"],
        )
    # cross-check only: the per-binary times in the logs of the *latest* build of each component
    out["build_logs_sum_s"] = round(sum(per_binary), 1) if per_binary else None
    out["build_logs_binaries"] = len(per_binary)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--warm-runs", type=int, default=3)
    ap.add_argument("--idle-s", type=float, default=30.0)
    ap.add_argument(
        "--settle-s", type=float, default=15.0, help="wait after up before the idle window"
    )
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    started = time.time()
    resolve_binaries(print, allow_build=False)  # "binaries cached" is a precondition
    doc: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kubedrill-bench-sandbox-") as tmp:
        root = Path(tmp)
        print(f"warm-up: {a.warm_runs} fresh `sandbox up` runs", flush=True)
        figures.update(warm_up(root, a.warm_runs))
        cfg = SandboxConfig(name="bench", root=root)
        state, _ = up(cfg, quiet, allow_build=False)
        try:
            print(f"idle: settle {a.settle_s:g}s, then {a.idle_s:g}s of CPU accounting", flush=True)
            time.sleep(a.settle_s)
            idle = measure_idle(state, a.idle_s)
            figures["idle_cpu_pct"] = idle["idle_cpu_pct"]
            doc["idle_per_component_pct"] = idle["per_component_pct"]
            print(f"scale: {a.nodes} GPU nodes + {a.pods} pods", flush=True)
            figures.update(scale(state, a.nodes, a.pods, timeout_s=300))
            scaled = measure_idle(state, 10)
            figures["cpu_pct_after_scale_10s"] = scaled["idle_cpu_pct"]
        finally:
            down(cfg.paths, quiet)
    figures.update(cold_build())
    doc["figures"] = figures
    f = figures
    scale_s = f["scale_1000_pods_s"]
    doc["bars"] = {
        "warm_up_s<=45": f["warm_up_s"] <= 45,
        "scale_1000_pods_s<=120": scale_s is not None and scale_s <= 120,
        "idle_cpu_pct<=25": f["idle_cpu_pct"] <= 25,
        "cold_build_s+10min_of_tests<=90min": f["cold_build_s"] is not None
        and f["cold_build_s"] + 600 <= 5400,
    }
    doc["loadavg_end"] = os.getloadavg()
    doc["elapsed_s"] = round(time.time() - started, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2) + "\n")
    width = max(len(k) for k in f)
    for k, v in f.items():
        print(f"{k:<{width}}  {v}")
    print(
        "idle per component (% of one core): "
        + ", ".join(f"{k} {v}" for k, v in doc["idle_per_component_pct"].items())
    )
    for k, ok in doc["bars"].items():
        print(f"bar {k}: {'PASS' if ok else 'FAIL'}")
    print(f"cpus {doc['cpus']}; loadavg start {doc['loadavg_start']} end {doc['loadavg_end']}; "
          f"elapsed {doc['elapsed_s']}s -> {a.out}")  # fmt: skip
    return 0 if all(doc["bars"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
