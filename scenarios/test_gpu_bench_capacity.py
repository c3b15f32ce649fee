"""GPU benchmark on each GPU node type (capacity suite).

One gpu_bench Job per GPU node type (nodes grouped by ``nvidia.com/gpu.product``), each
asking for one ``nvidia.com/gpu``; the JSON from each pod's logs lands on the run's
timeline as ``gpu_bench.*`` samples, and every test gpu_bench has a pass level for is a
check (GEMM ≥ 75 % of dense bf16 peak on H100/H200, copy ≥ 85 % of HBM peak, …). On the
sandbox the pods are processes on this machine's CPU: every suite runs with small sizes,
says ``device: cpu``, and the checks are INCONCLUSIVE (no GPU peak claims), never PASS.
"""

from __future__ import annotations

import pytest

from kubedrill import Drill
from kubedrill.adapters.kube import KubeAdapter
from kubedrill.gpujobs import JobRunner, JobSpec, gpu_node_types

PHASE = "gpu-bench"
DEADLINE_S = 900


@pytest.mark.capacity
@pytest.mark.cluster
def test_gpu_benchmark_on_each_gpu_node_type(drill: Drill) -> None:
    settings = drill.settings
    adapter = KubeAdapter.from_settings(settings.cluster)
    nodes, _ = adapter.list("Node", None)
    types = gpu_node_types(nodes)
    if not types:
        pytest.skip("no node has allocatable nvidia.com/gpu: nothing to benchmark")
    ns = settings.target.namespace
    if adapter.get("Namespace", None, ns) is None:
        adapter.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    spec = JobSpec(
        owner=drill.scenario_id.rsplit("::", 1)[-1][:40],
        namespace=ns,
        deadline_s=DEADLINE_S,
        extra_args=("--threads", "1"),  # CPU fallback on the sandbox: one core per pod
    )
    runner = JobRunner(adapter, drill.timeline, progress=drill.note, poll_s=2.0)
    with drill.phase(PHASE):
        outcomes = runner.run(types, spec, timeout_s=drill.seconds(DEADLINE_S) + 60)
    for out in outcomes:
        for check in out.checks(phase=PHASE):
            drill.add(check)
