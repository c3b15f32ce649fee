"""What a GPU benchmark on the service's node costs the service's p95 (capacity suite).

The reference service is deployed (experiments/profiles/reference-service.yaml) and held
under a steady open-model load. The client p95 is measured alone, then while a gpu_bench
Job pinned to the node of one of its replicas runs there (the phase spans the bench pod's
Running time as the Job runner sees it). Both p95s are claims against the runbook's SLO,
and both, with their difference, are recorded in the run as ``contention.*`` metrics.

What the cost means depends on where it runs. On a GPU cluster the benchmark has a GPU of
its own (the device plugin never shares one), so the cost is what the node shares: PCIe,
host CPU and memory, power and clocks. The sandbox's virtual GPU ledger slows a service
only by the entries of *its own* device (the burner's), and the bench pod gets another
device, so on the sandbox the figure is the host CPU the CPU-only benchmark takes from
the service's process, nothing more.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from kubedrill import Drill
from kubedrill.gpujobs import JobRunner, JobSpec, gpu_node_types
from kubedrill.timeline import MetricSample

RATE = 120.0  # requests/s: about 30 % of two replicas' capacity
SLO_P95_MS = 150.0
ALONE, BESIDE = "alone", "beside-bench"


@pytest.mark.capacity
@pytest.mark.cluster
def test_a_gpu_benchmark_on_the_services_node_and_its_cost_to_p95(
    drill: Drill, reference_on_cluster: Any
) -> None:
    svc = reference_on_cluster  # a DeployedService (scenarios/conftest.py)
    alone = drill.expect(f"p95_ms <= {SLO_P95_MS:g}", phase=ALONE, name="client p95, alone")
    beside = drill.expect(
        f"p95_ms <= {SLO_P95_MS:g}", phase=BESIDE, name="client p95, gpu_bench on its node"
    )
    drill.expect("error_rate < 1%")
    if drill.dry_run:
        return
    kube = svc.adapter
    pods, _ = kube.list("Pod", svc.namespace, label_selector=f"app={svc.name}")
    nodes = sorted({str(p["spec"]["nodeName"]) for p in pods if p["spec"].get("nodeName")})
    all_nodes, _ = kube.list("Node", None)
    types = [t for t in gpu_node_types(all_nodes) if nodes and nodes[0] in t.nodes]
    if not types:
        pytest.skip(f"the service's pods are on no GPU node ({nodes or 'unscheduled'})")
    node = nodes[0]
    spec = JobSpec(
        owner=drill.scenario_id.rsplit("::", 1)[-1][:40],
        namespace=svc.namespace,
        suites=("gemm", "copy", "inference"),
        deadline_s=600,
        extra_args=("--threads", "1", "--size", "small"),  # a burst that fits the budget
        node=node,
    )
    alone_s, budget_s = drill.seconds(15), drill.seconds(30)
    stack, opened = contextlib.ExitStack(), [False]

    def progress(msg: str) -> None:  # the phase opens when the bench pod runs
        drill.note(msg)
        if " Running on " in msg and not opened[0]:
            stack.enter_context(drill.phase(BESIDE))
            opened[0] = True

    with drill.load(svc.url, 2 + alone_s + budget_s + 2, rate=RATE) as load:
        time.sleep(2)
        with drill.phase(ALONE):
            time.sleep(alone_s)
        with stack:
            outs = JobRunner(kube, drill.timeline, progress, poll_s=0.5).run(
                types[:1], spec, timeout_s=budget_s
            )
        load.wait()
    out = outs[0]
    if out.result is None:  # no benchmark ran beside the service: the cost means nothing
        for check in out.checks(phase=BESIDE):
            drill.add(check)
    drill.timeline.ingest()
    floor = drill.settings.run.coverage_floor
    p95 = {
        phase: c.evaluate(drill.timeline, floor).value
        for phase, c in ((ALONE, alone), (BESIDE, beside))
    }
    for phase, value in p95.items():
        if value is not None:
            drill.record(MetricSample("contention.p95_ms", value, {"phase": phase, "node": node}))
    a, b = p95[ALONE], p95[BESIDE]
    if a is not None and b is not None:
        drill.record(MetricSample("contention.p95_cost_ms", b - a, {"node": node}))
        drill.note(
            f"gpu_bench Job on {node}: client p95 {a:.1f} ms alone, "
            f"{b:.1f} ms beside it ({b - a:+.1f} ms)"
        )
