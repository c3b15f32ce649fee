"""GEMM suite: bf16, fp16, tf32 and fp32 matrix multiplications, large square and the
reference model's shapes, seeded random inputs (never zeros: entropy changes power draw
and so clocks), 2·M·N·K FLOPs per run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from gpu_bench import refmodel
from gpu_bench.timing import Bench

__all__ = ["DTYPES", "run_gemm", "tf32_mode"]

DTYPES = ("bf16", "fp16", "tf32", "fp32")


def _api(torch: Any) -> str:
    matmul = torch.backends.cuda.matmul
    return "fp32_precision" if hasattr(matmul, "fp32_precision") else "allow_tf32"


@contextlib.contextmanager
def _precision(torch: Any, tf32: bool) -> Iterator[str]:
    """fp32 matmuls on tensor cores (TF32) or in IEEE fp32, restored afterwards. Uses
    ``torch.backends.cuda.matmul.fp32_precision`` where torch has it (2.9+), else the
    older ``allow_tf32`` flag; yields the setting as ``api=value``."""
    matmul = torch.backends.cuda.matmul
    if _api(torch) == "fp32_precision":
        old = matmul.fp32_precision
        matmul.fp32_precision = "tf32" if tf32 else "ieee"
        try:
            yield f"torch.backends.cuda.matmul.fp32_precision={matmul.fp32_precision}"
        finally:
            matmul.fp32_precision = old
    else:
        old_flag = matmul.allow_tf32
        matmul.allow_tf32 = tf32
        try:
            yield f"torch.backends.cuda.matmul.allow_tf32={tf32}"
        finally:
            matmul.allow_tf32 = old_flag


def tf32_mode(torch: Any) -> dict[str, str]:
    """How the tf32 and fp32 cases were set up, for the result."""
    with _precision(torch, True) as on:
        pass
    with _precision(torch, False) as off:
        pass
    return {"api": _api(torch), "tf32_case": on, "fp32_case": off}


def _dtype(torch: Any, name: str) -> Any:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name, torch.float32)


def _one(bench: Bench, name: str, dtype: str, m: int, n: int, k: int, seed: int) -> dict[str, Any]:
    torch, dev = bench.torch, bench.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    t = _dtype(torch, dtype)
    a = torch.randn(m, k, device=dev, dtype=t, generator=gen)
    b = torch.randn(k, n, device=dev, dtype=t, generator=gen)
    c = torch.empty(m, n, device=dev, dtype=t)
    with _precision(torch, dtype == "tf32") as setting:
        stats = bench.time(lambda: torch.mm(a, b, out=c))
    flops = 2.0 * m * n * k
    return {
        "name": f"gemm_{dtype}_{name}",
        "dtype": dtype,
        "shape": [m, n, k],
        "precision_setting": setting if dtype in ("tf32", "fp32") else None,
        "tflops": round(flops / stats.median_s / 1e12, 6),
        **stats.to_dict(),
    }


def run_gemm(bench: Bench, *, square: int, model_batch: int, seed: int) -> dict[str, Any]:
    """Every dtype at ``square``³ and at the reference model's shapes (``model_batch`` rows).

    On the CPU the tf32 case is not run (TF32 is a CUDA tensor-core mode; it would time
    fp32 again) and says so."""
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    shapes = [(f"{square}", square, square, square), *refmodel.gemm_shapes(model_batch)]
    for dtype in DTYPES:
        if dtype == "tf32" and not bench.cuda:
            skipped.append({"name": "gemm_tf32", "reason": "TF32 is a CUDA mode; not on cpu"})
            continue
        for i, (label, m, n, k) in enumerate(shapes):
            results.append(_one(bench, label, dtype, m, n, k, seed + i))
    return {"results": results, "skipped": skipped, "tf32_mode": tf32_mode(bench.torch)}
