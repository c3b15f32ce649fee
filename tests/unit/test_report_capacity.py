"""The capacity report on a recorded real sweep (the reference service, real Locust), and
on hand-made steps where the knee's placement is known exactly."""

from __future__ import annotations

from pathlib import Path

from kubedrill.core import latency
from kubedrill.report.capacity import capacity_report, gpu_bench_results
from kubedrill.report.document import load_run_document, scenario_timeline
from kubedrill.timeline import Timeline
from kubedrill.timeline.payloads import LoadWindow, MetricSample, PhaseMark

DATA = Path(__file__).parent / "report_data"


def test_the_recorded_sweep_knee_lands_on_the_configured_capacity() -> None:
    doc = load_run_document(DATA / "capacity_sweep.run.json")
    tl = scenario_timeline(doc["scenarios"][0])
    assert tl is not None
    cap = capacity_report(tl)
    assert cap is not None
    assert cap["configured_rps"] == 100.0  # 2 slots / 20 ms
    assert cap["knee_error_pct"] is not None and cap["knee_error_pct"] <= 10.0
    offered = [s["offered_rps"] for s in cap["steps"]]
    assert offered == sorted(offered) and offered[0] < cap["knee_rps"] < offered[-1]
    assert cap["rps_per_replica"] == cap["knee_rps"] / cap["replicas"]
    assert cap["gpu_s_per_1k_requests"] == round(cap["gpus"] / cap["knee_rps"] * 1000, 4)


def _window(tl: Timeline, start: float, n: int, ms: float) -> None:
    h = latency.new_histogram()
    h.record_value(int(ms * 1000), n)
    enc = h.encode().decode()
    tl.record(LoadWindow("/", start, start + 1, n, {}, enc, n, 0, "w", n), t=start + 1)


def _sweep(steps: list[tuple[float, float, float]]) -> Timeline:
    """(offered, answered, p95 ms) per 2-s step."""
    tl = Timeline()
    tl.record(MetricSample("capacity.slo_p95_ms", 50.0), t=0.0)
    tl.record(MetricSample("capacity.replicas", 2.0), t=0.0)
    tl.record(MetricSample("capacity.gpus", 4.0), t=0.0)
    tl.record(MetricSample("capacity.configured_rps", 200.0), t=0.0)
    for i, (offered, answered, ms) in enumerate(steps):
        t = 10.0 + 10 * i
        name = f"rate-{offered:g}"
        tl.record(MetricSample("capacity.offered_rps", offered, {"phase": name}), t=t - 1)
        tl.record(PhaseMark(name, "start"), t=t)
        for k in range(2):
            _window(tl, t + k, int(answered), ms)
        tl.record(PhaseMark(name, "end"), t=t + 2)
    return tl


def test_the_knee_is_bounded_by_the_steps_around_the_break() -> None:
    cap = capacity_report(_sweep([(150, 150, 20), (180, 180, 25), (220, 198, 400)]))
    assert cap is not None
    assert [s["meets_slo"] for s in cap["steps"]] == [True, True, False]
    assert cap["knee_rps"] == 198.0  # the saturated step answers at capacity
    assert cap["knee_error_pct"] == 1.0
    assert cap["rps_per_replica"] == 99.0 and cap["rps_per_gpu"] == 49.5
    cap = capacity_report(_sweep([(150, 150, 20), (180, 120, 400)]))
    assert cap is not None and cap["knee_rps"] == 150.0  # never below the last good step


def test_a_sweep_that_never_breaks_says_so_and_no_sweep_is_none() -> None:
    cap = capacity_report(_sweep([(50, 50, 20), (60, 60, 20)]))
    assert cap is not None and cap["knee_rps"] is None
    assert "above the sweep" in cap["knee_how"]
    assert capacity_report(Timeline()) is None


def test_gpu_bench_results_are_read_with_their_peaks_where_given() -> None:
    tl = Timeline()
    tl.record(MetricSample("gpu_bench.gemm_tflops", 600.0, {"peak": "989"}))
    tl.record(MetricSample("gpu_bench.hbm_gbps", 3000.0))
    tl.record(MetricSample("gpu_bench.hbm_gbps_peak", 4800.0))
    tl.record(MetricSample("other", 1.0))
    rows = gpu_bench_results([{"id": "s", "checks": []}], [tl])
    by = {r["name"]: r for r in rows}
    assert set(by) == {"gpu_bench.gemm_tflops", "gpu_bench.hbm_gbps"}
    assert by["gpu_bench.gemm_tflops"]["ratio"] == round(600 / 989, 4)
    assert by["gpu_bench.hbm_gbps"]["ratio"] == 0.625


def test_gpu_bench_value_and_ratio_pairs_give_the_peak() -> None:
    """As kubedrill.gpujobs records them: gpu_bench.<test>.value and .ratio per node type."""
    tl = Timeline()
    labels = {"node_type": "h200", "device": "cuda"}
    tl.record(MetricSample("gpu_bench.gemm_bf16.value", 700.0, labels))
    tl.record(MetricSample("gpu_bench.gemm_bf16.ratio", 0.7, labels))
    tl.record(MetricSample("gpu_bench.gemm_bf16.cv_pct", 1.2, labels))
    rows = gpu_bench_results([{"id": "s", "checks": []}], [tl])
    assert len(rows) == 1
    assert rows[0]["name"] == "gpu_bench.gemm_bf16" and rows[0]["ratio"] == 0.7
    assert rows[0]["peak"] == 1000.0 and rows[0]["node_type"] == "h200"
