"""gpu_bench's suites as the GPU Job runs them (its own process, ``run --json``): on this
CPU-only machine every suite runs with small sizes, says ``device: cpu`` and claims no
GPU peak. The judgement is tested on given figures; the CUDA path only where one exists."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpu_bench import peaks, refmodel
from gpu_bench.inference import knee

RUN = [sys.executable, "-m", "gpu_bench", "run"]


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.fixture(scope="module")
def cpu_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("gb") / "r.json"
    proc = subprocess.run(
        [*RUN, "--device", "cpu", "--threads", "1", "--runs", "4", "--warmup", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "CUDA paths were not run" in proc.stdout
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def test_every_suite_runs_on_the_cpu_and_says_so(cpu_result: dict[str, Any]) -> None:
    doc = cpu_result
    assert doc["device"] == "cpu" and doc["cuda_run"] is False
    assert doc["note"].startswith("CUDA paths were not run")
    assert set(doc["suites"]) == {"gemm", "copy", "h2d", "inference"} and not doc["errors"]
    for suite in doc["suites"].values():
        assert suite["results"]
        for r in suite["results"]:
            assert r["timer"] == "perf_counter" and r["runs"] == 4 and r["warmup"] == 1
            assert r["median_ms"] > 0 and math.isfinite(r["cv_pct"])
    gemm = {r["name"]: r for r in doc["suites"]["gemm"]["results"]}
    assert {"gemm_bf16_256", "gemm_fp16_256", "gemm_fp32_256", "gemm_fp32_ref_fc1_b64"} <= set(gemm)
    assert all(r["tflops"] > 0 for r in gemm.values())
    assert doc["suites"]["gemm"]["skipped"] == [
        {"name": "gemm_tf32", "reason": "TF32 is a CUDA mode; not on cpu"}
    ]
    assert doc["suites"]["gemm"]["tf32_mode"]["api"] in ("fp32_precision", "allow_tf32")
    assert doc["suites"]["copy"]["results"][0]["bytes_moved"] == 2 * 16 * 2**20
    names = {r["name"] for r in doc["suites"]["h2d"]["results"]}
    assert names == {"h2d_pageable", "d2h_pageable"}  # pinned needs CUDA: skipped, said
    assert len(doc["suites"]["h2d"]["skipped"]) == 2
    inf = doc["suites"]["inference"]
    assert [r["batch"] for r in inf["results"]] == [1, 8, 32, 128]
    assert inf["knee_batch"] in (1, 8, 32, 128)
    # No GPU peak claims on the CPU: no ratios, nothing passes.
    j = doc["judgement"]
    assert j["model"] is None and j["peaks"] is None
    assert all(t["ratio"] is None and t["verdict"] == "INCONCLUSIVE" for t in j["tests"])
    assert doc["verdict"] == "INCONCLUSIVE"
    assert doc["telemetry"]["available"] is False


def test_json_on_stdout_is_one_marked_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*RUN, "--device", "cpu", "--suite", "copy", "--threads", "1", "--runs", "2",
         "--warmup", "0", "--json", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_bench.result {")
    doc = json.loads(lines[0].removeprefix("gpu_bench.result "))
    assert list(doc["suites"]) == ["copy"] and doc["device"] == "cpu"


def test_a_bad_suite_is_one_error_naming_it() -> None:
    proc = subprocess.run([*RUN, "--suite", "gemm,nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "--suite" in proc.stderr and "nope" in proc.stderr


def test_model_shapes_agree_with_the_reference_service() -> None:
    from kubedrill.refservice import torch_backend

    assert (refmodel.IN_DIM, refmodel.HIDDEN_DIM, refmodel.OUT_DIM) == (
        torch_backend.IN_DIM, torch_backend.HIDDEN_DIM, torch_backend.OUT_DIM,
    )  # fmt: skip
    import torch

    a = refmodel.build(torch, torch.device("cpu"), seed=7)
    b = torch_backend.build_model(7)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
        ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_device_names_match_the_peak_table(name: str, model: str | None) -> None:
    m = peaks.match_model(name)
    assert (m.model if m else None) == model


def _suites(bf16_tflops: float, copy_gbps: float, cv: float = 1.0) -> dict[str, Any]:
    return {
        "gemm": {"results": [{"name": "gemm_bf16_8192", "tflops": bf16_tflops, "cv_pct": cv}]},
        "copy": {"results": [{"name": "copy_d2d", "gbps": copy_gbps, "cv_pct": cv}]},
    }


def test_judgement_against_the_model_peak() -> None:
    ok = peaks.judge("cuda", "NVIDIA H100 80GB HBM3", _suites(800.0, 3000.0))
    t = {x["test"]: x for x in ok["tests"]}
    assert t["gemm_bf16"]["verdict"] == "PASS" and t["gemm_bf16"]["ratio"] == round(800 / 989, 4)
    assert t["copy"]["verdict"] == "PASS" and t["copy"]["ratio"] == round(3000 / 3350, 4)
    # Suites not run are missing data, never a pass.
    assert t["gemm_fp16"]["verdict"] == "INCONCLUSIVE" and ok["verdict"] == "INCONCLUSIVE"
    slow = peaks.judge("cuda", "NVIDIA H100 80GB HBM3", _suites(700.0, 3000.0))
    assert {x["test"]: x for x in slow["tests"]}["gemm_bf16"]["verdict"] == "FAIL"
    assert slow["verdict"] == "FAIL"
    noisy = peaks.judge("cuda", "NVIDIA H100 80GB HBM3", _suites(800.0, 3000.0, cv=5.0))
    g = {x["test"]: x for x in noisy["tests"]}["gemm_bf16"]
    assert g["verdict"] == "INCONCLUSIVE" and "cv 5.0%" in g["reason"]
    # The same figure is a pass on a PCIe card's lower level and peak.
    pcie = peaks.judge("cuda", "NVIDIA H100 PCIe", _suites(500.0, 1800.0))
    assert {x["test"]: x for x in pcie["tests"]}["gemm_bf16"]["verdict"] == "PASS"


def test_unknown_gpu_reports_figures_and_is_inconclusive() -> None:
    j = peaks.judge("cuda", "NVIDIA GeForce RTX 4090", _suites(150.0, 900.0))
    t = {x["test"]: x for x in j["tests"]}
    assert t["gemm_bf16"]["value"] == 150.0 and t["gemm_bf16"]["ratio"] is None
    assert t["gemm_bf16"]["verdict"] == "INCONCLUSIVE"
    assert "unknown GPU model" in t["gemm_bf16"]["reason"]
    assert j["verdict"] == "INCONCLUSIVE" and j["model"] is None


def test_knee_is_the_smallest_batch_near_the_best_throughput() -> None:
    assert knee([(1, 100.0), (8, 700.0), (32, 950.0), (128, 1000.0)]) == 32
    assert knee([]) is None


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="no CUDA device")
def test_cuda_suites_run_and_time_with_cuda_events(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [*RUN, "--device", "cuda", "--size", "small", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["device"] == "cuda" and doc["cuda_run"] is True
    for suite in doc["suites"].values():
        assert all(r["timer"] == "cuda_event" for r in suite["results"])
    assert any(r["name"].startswith("gemm_tf32") for r in doc["suites"]["gemm"]["results"])
    assert doc["telemetry"]["available"] is True
