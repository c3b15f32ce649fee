"""gpu_bench results as checks on the timeline, and the Prometheus GPU reader's fallbacks."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gpu_bench import peaks
from kubedrill.adapters.prom import Series
from kubedrill.core.types import Verdict
from kubedrill.gpujobs import (
    GpuBenchResultError,
    GpuMetricReader,
    checks_for,
    parse_logs,
    parse_result,
    record_result,
)
from kubedrill.timeline import MetricSample, Timeline


def _doc(device: str, name: str, bf16: float, copy: float, cv: float = 1.0) -> dict[str, Any]:
    suites = {
        "gemm": {"results": [{"name": "gemm_bf16_8192", "tflops": bf16, "cv_pct": cv}]},
        "copy": {"results": [{"name": "copy_d2d", "gbps": copy, "cv_pct": cv}]},
    }
    j = peaks.judge(device, name, suites)
    return {
        "schema": "gpu_bench.result/1", "device": device, "device_name": name,
        "cuda_run": device == "cuda", "note": None, "verdict": j["verdict"],
        "suites": suites, "judgement": j, "telemetry": {"available": False},
    }  # fmt: skip


def _verdicts(doc: dict[str, Any], node_type: str = "NVIDIA-H100-80GB-HBM3") -> dict[str, Any]:
    tl = Timeline()
    r = parse_result(doc, node_type)
    record_result(tl, r)
    return {c.test: c.evaluate(tl) for c in checks_for(r, node_type)}


def test_h100_figures_become_passing_and_failing_checks() -> None:
    res = _verdicts(_doc("cuda", "NVIDIA H100 80GB HBM3", 800.0, 2500.0))
    assert res["gemm_bf16"].verdict is Verdict.PASS
    assert res["gemm_bf16"].value == pytest.approx(800 / 989, abs=1e-4)
    assert res["copy"].verdict is Verdict.FAIL  # 2500 / 3350 = 75 % < 85 %
    assert res["gemm_fp16"].verdict is Verdict.INCONCLUSIVE  # not measured: never a pass
    noisy = _verdicts(_doc("cuda", "NVIDIA H100 80GB HBM3", 800.0, 3000.0, cv=6.0))
    assert noisy["gemm_bf16"].verdict is Verdict.INCONCLUSIVE
    assert "cv 6.0%" in noisy["gemm_bf16"].reason


def test_cpu_and_unknown_gpus_are_inconclusive_with_the_reason() -> None:
    cpu = _verdicts(_doc("cpu", "x86_64", 0.1, 40.0))
    assert set(cpu) == {"gemm_bf16", "copy"}
    assert all(c.verdict is Verdict.INCONCLUSIVE for c in cpu.values())
    assert "device: cpu" in cpu["gemm_bf16"].reason and "CUDA not run" in cpu["gemm_bf16"].reason
    odd = _verdicts(_doc("cuda", "NVIDIA GeForce RTX 4090", 150.0, 900.0))
    assert all(c.verdict is Verdict.INCONCLUSIVE for c in odd.values())
    assert "unknown GPU model" in odd["gemm_bf16"].reason


def test_samples_are_named_gpu_bench_and_labelled_by_node_type() -> None:
    tl = Timeline()
    record_result(tl, parse_result(_doc("cuda", "NVIDIA H200", 790.0, 4300.0), "h200"))
    names = {o.data.name for o in tl.select(MetricSample)}
    assert "gpu_bench.gemm_bf16.ratio" in names and "gpu_bench.copy_d2d.gbps" in names
    assert all(n.startswith("gpu_bench.") for n in names)
    assert {o.data.labels["node_type"] for o in tl.select(MetricSample)} == {"h200"}


def test_a_failed_job_is_error_naming_it() -> None:
    tl = Timeline()
    tl.record(MetricSample("unrelated", 1.0))
    (c, *_) = checks_for(None, "L4", failure="gpu_bench Job x: DeadlineExceeded")
    res = c.evaluate(tl)
    assert res.verdict is Verdict.ERROR and "DeadlineExceeded" in res.reason


def test_logs_need_the_marked_line_and_a_known_schema() -> None:
    doc = _doc("cpu", "x86_64", 0.1, 40.0)
    logs = "warming up\ngpu_bench.result " + json.dumps(doc) + "\nsummary line\n"
    assert parse_logs(logs, "cpu", "pod p").device == "cpu"
    with pytest.raises(GpuBenchResultError, match=r"no 'gpu_bench\.result' line"):
        parse_logs("Traceback: boom", "cpu", "pod p")
    with pytest.raises(GpuBenchResultError, match="schema"):
        parse_result({**doc, "schema": "other"}, "cpu")
    bad = {**doc, "judgement": {"tests": [{"test": "gemm_bf16", "value": "fast"}]}}
    with pytest.raises(GpuBenchResultError, match=r"judgement.tests\[0\]: value"):
        parse_result(bad, "cpu")


class FakeProm:
    def __init__(self, have: dict[str, list[Series]]) -> None:
        self.have, self.asked = have, []  # type: ignore[var-annotated]

    def range_query(
        self, query: str, start: float, end: float, step_s: float | None = None
    ) -> list[Series]:
        self.asked.append(query)
        return self.have.get(query.split("{")[0], [])


def test_gpu_busy_falls_back_from_gr_engine_to_gpu_util_as_a_ratio() -> None:
    now = time.time()
    util = Series({"gpu": "0", "Hostname": "gpu-0"}, [(now - 2, 80.0), (now - 1, 90.0)])
    prom = FakeProm({"DCGM_FI_DEV_GPU_UTIL": [util]})
    got = GpuMetricReader(prom).read("gpu_busy", now - 10, now, {"Hostname": "gpu-0"})
    assert got.source == "DCGM_FI_DEV_GPU_UTIL"
    assert [v for _, v in got.series[0].points] == [0.8, 0.9]
    assert prom.asked[0] == 'DCGM_FI_PROF_GR_ENGINE_ACTIVE{Hostname="gpu-0"}'
    assert "fallback after DCGM_FI_PROF_GR_ENGINE_ACTIVE" in got.describe()
    tl = Timeline()
    assert GpuMetricReader(prom).record(tl, got) == 2
    assert {o.data.name for o in tl.select(MetricSample)} == {"gpu.gpu_busy"}


def test_renamed_profiling_fields_are_found_and_none_is_said() -> None:
    now = time.time()
    sm = Series({"gpu": "0"}, [(now, 0.42)])
    got = GpuMetricReader(FakeProm({"DCGM_FI_PROF_SM_UTIL_RATIO": [sm]})).read(
        "sm_active", now - 5, now
    )
    assert got.source == "DCGM_FI_PROF_SM_UTIL_RATIO" and got.series[0].points[0][1] == 0.42
    none = GpuMetricReader(FakeProm({})).read("tensor_active", now - 5, now)
    assert none.source is None and "no series of DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" in none.describe()
