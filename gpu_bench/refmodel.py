"""The reference service's model, as gpu_bench needs it: its shapes and a seeded copy.

kubedrill's reference service (``kubedrill/refservice/torch_backend.py``) serves
Linear(256→1024), ReLU, Linear(1024→256). gpu_bench never imports kubedrill, so the
shapes are defined again here; ``tests/unit/test_gpu_bench_suites.py`` asserts both agree.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HIDDEN_DIM", "IN_DIM", "OUT_DIM", "build", "gemm_shapes"]

IN_DIM, HIDDEN_DIM, OUT_DIM = 256, 1024, 256


def gemm_shapes(batch: int) -> list[tuple[str, int, int, int]]:
    """The forward pass's GEMMs at ``batch`` rows: (name, M, N, K), 2·M·N·K FLOPs each."""
    return [
        (f"ref_fc1_b{batch}", batch, HIDDEN_DIM, IN_DIM),
        (f"ref_fc2_b{batch}", batch, OUT_DIM, HIDDEN_DIM),
    ]


def build(torch: Any, device: Any, seed: int, dtype: Any = None) -> Any:
    """The model with weights drawn from a private generator (uniform ±1/√fan_in)."""
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(IN_DIM, HIDDEN_DIM),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN_DIM, OUT_DIM),
    )
    with torch.no_grad():
        for p in model.parameters():
            bound = 1.0 / (p.shape[-1] ** 0.5)
            p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)
    model = model.to(device)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()
