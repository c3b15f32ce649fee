"""Torch mode: a small seeded MLP served with dynamic batching.

``torch`` is imported only inside :func:`build_model` and the model load (which runs in
the model thread), so importing this module, or the rest of kubedrill, never imports torch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubedrill.refservice.backends import BadInput, InferResult
from kubedrill.refservice.batching import DynamicBatcher
from kubedrill.refservice.config import ServiceConfig
from kubedrill.refservice.runtime import Runtime

__all__ = ["HIDDEN_DIM", "IN_DIM", "OUT_DIM", "TorchBackend", "build_model", "parse_rows"]

IN_DIM, HIDDEN_DIM, OUT_DIM = 256, 1024, 256

Rows = list[list[float]]


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def parse_rows(inputs: object, default_row: list[float], max_rows: int) -> Rows:
    """Request inputs as model rows: absent or ``[]`` → the default row; one row of
    ``IN_DIM`` numbers; or a list of such rows (at most ``max_rows``)."""
    if inputs is None or inputs == []:
        return [default_row]
    if not isinstance(inputs, list):
        raise BadInput(f"inputs: expected an array of {IN_DIM} numbers or of such arrays")
    rows = [inputs] if _is_number(inputs[0]) else inputs
    if len(rows) > max_rows:
        raise BadInput(f"inputs: expected at most {max_rows} rows (--max-batch), got {len(rows)}")
    out: Rows = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != IN_DIM or not all(map(_is_number, row)):
            raise BadInput(f"inputs[{i}]: expected an array of {IN_DIM} numbers")
        out.append([float(v) for v in row])
    return out


def build_model(seed: int, device: str = "cpu") -> Any:
    """The service's model: Linear(256→1024), ReLU, Linear(1024→256), weights seeded.

    Weights come from a private ``torch.Generator``, so the same seed gives the same
    model on every machine and device. Returns the model in eval mode on ``device``.
    """
    import torch  # lazily: see the module docstring

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
    return model.to(device).eval()


class TorchBackend:
    mode = "torch"

    def __init__(
        self, cfg: ServiceConfig, rt: Runtime, observe_batch: Callable[[int], None]
    ) -> None:
        self._cfg = cfg
        self._rt = rt
        self._observe_batch = observe_batch
        rng = random.Random(cfg.seed)
        self._default_row = [rng.uniform(-1.0, 1.0) for _ in range(IN_DIM)]
        # One thread: one forward pass at a time, like one device stream.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="refservice-torch")
        self._batcher: DynamicBatcher[Rows, Rows] = DynamicBatcher(
            self._run,
            max_batch=cfg.max_batch,
            timeout_s=cfg.batch_timeout_s,
            max_queue=cfg.max_queue,
            clock=rt.clock,
        )
        self._torch: Any = None
        self._model: Any = None
        self._device: Any = None
        self._info: dict[str, Any] = {"torch_device": None}

    @property
    def queue_depth(self) -> int:
        return self._batcher.queue_depth

    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_sync)
        self._batcher.start()

    def _load_sync(self) -> None:
        import torch

        want = self._cfg.device
        cuda = bool(torch.cuda.is_available())
        if want == "cuda" and not cuda:
            raise RuntimeError("--device cuda: torch sees no CUDA device")
        device = torch.device("cuda" if want == "cuda" or (want == "auto" and cuda) else "cpu")
        model = build_model(self._cfg.seed, str(device))
        self._torch, self._model, self._device = torch, model, device
        self._forward([self._default_row] * min(self._cfg.max_batch, 8))  # warm up
        self._info = {
            "torch_device": str(device),
            "torch_version": str(torch.__version__),
            "cuda_available": cuda,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "max_batch": self._cfg.max_batch,
            "batch_timeout_ms": self._cfg.batch_timeout_s * 1000.0,
            "model": f"mlp {IN_DIM}-{HIDDEN_DIM}-{OUT_DIM}",
        }

    def _forward(self, rows: Rows) -> Rows:
        torch = self._torch
        with torch.inference_mode():
            x = torch.tensor(rows, dtype=torch.float32, device=self._device)
            y = self._model(x)
            out: Rows = y.cpu().tolist()
        return out

    async def _run(self, items: list[Rows]) -> list[Rows]:
        """One batch: wait out a stall, run one forward pass, wait out a stall, split."""
        await self._rt.wait_out_stall()
        flat = [row for item in items for row in item]
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self._executor, self._forward, flat)
        await self._rt.wait_out_stall()
        self._observe_batch(len(items))
        split: list[Rows] = []
        i = 0
        for item in items:
            split.append(out[i : i + len(item)])
            i += len(item)
        return split

    async def infer(self, inputs: object) -> InferResult:
        rows = parse_rows(inputs, self._default_row, self._cfg.max_batch)
        out, info = await self._batcher.submit(rows, len(rows))
        return InferResult(
            outputs=out,
            batch_size=info.size,
            rows=info.rows,
            timings_s={"queue": info.queued_s, "service": info.run_s},
        )

    def device_info(self) -> dict[str, Any]:
        return dict(self._info)

    async def close(self) -> None:
        await self._batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
