"""Inference suite: the reference model's forward pass at growing batch sizes: latency
(median, p95) and throughput (rows/s) per batch, the knee (the smallest batch reaching
90 % of the best throughput), p95/p50. Inputs are seeded uniform ±1, never zeros.
"""

from __future__ import annotations

import functools
from typing import Any

from gpu_bench import refmodel
from gpu_bench.timing import Bench

__all__ = ["KNEE_SHARE", "knee", "run_inference"]

KNEE_SHARE = 0.9


def knee(points: list[tuple[int, float]]) -> int | None:
    """The smallest batch whose throughput is ≥ 90 % of the best; None without points."""
    if not points:
        return None
    best = max(rps for _, rps in points)
    return min(b for b, rps in points if rps >= KNEE_SHARE * best)


def run_inference(bench: Bench, *, batches: list[int], seed: int) -> dict[str, Any]:
    torch, dev = bench.torch, bench.device
    model = refmodel.build(torch, dev, seed)
    gen = torch.Generator(device=dev).manual_seed(seed + 1)
    results: list[dict[str, Any]] = []
    with torch.inference_mode():
        for b in batches:
            x = torch.rand(b, refmodel.IN_DIM, device=dev, generator=gen) * 2 - 1
            stats = bench.time(functools.partial(model, x))
            results.append(
                {
                    "name": f"infer_b{b}",
                    "batch": b,
                    "rows_per_s": round(b / stats.median_s, 3),
                    "p95_over_p50": round(stats.p95_s / stats.median_s, 4),
                    **stats.to_dict(),
                }
            )
    return {
        "results": results,
        "skipped": [],
        "model": f"Linear({refmodel.IN_DIM}→{refmodel.HIDDEN_DIM}), ReLU, "
        f"Linear({refmodel.HIDDEN_DIM}→{refmodel.OUT_DIM}), fp32",
        "knee_batch": knee([(r["batch"], r["rows_per_s"]) for r in results]),
    }
