"""GPU jobs: gpu_bench results as checks on the timeline, the Kubernetes Job that runs
gpu_bench on each GPU node type, and DCGM GPU metrics from Prometheus with fallbacks.

At the checks/observe/load layer: it uses core, adapters (through their shapes) and the
timeline, never torch, pynvml or gpu_bench (it reads gpu_bench's JSON only).
"""

from kubedrill.gpujobs.job import (
    GpuNodeType,
    JobApi,
    JobOutcome,
    JobRunner,
    JobSpec,
    gpu_node_types,
    render_job,
)
from kubedrill.gpujobs.promgpu import SIGNALS, GpuMetricReader, GpuSeries
from kubedrill.gpujobs.results import (
    BenchResult,
    BenchTest,
    GpuBenchCheck,
    GpuBenchResultError,
    checks_for,
    parse_logs,
    parse_result,
    record_result,
)

__all__ = [
    "SIGNALS",
    "BenchResult",
    "BenchTest",
    "GpuBenchCheck",
    "GpuBenchResultError",
    "GpuMetricReader",
    "GpuNodeType",
    "GpuSeries",
    "JobApi",
    "JobOutcome",
    "JobRunner",
    "JobSpec",
    "checks_for",
    "gpu_node_types",
    "parse_logs",
    "parse_result",
    "record_result",
    "render_job",
]
