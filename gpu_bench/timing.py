"""Timing of a benchmark body: warm-up, an L2 flush before every timed run, CUDA events
on a GPU (``perf_counter`` around a synchronised region on the CPU), median and
coefficient of variation over many runs.

torch is passed in, never imported here, so this module imports nothing heavy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Bench", "Stats", "flush_bytes"]

_MIN_FLUSH_CUDA = 256 * 2**20  # triton.testing.do_bench zeroes 256 MB
_FLUSH_CPU = 32 * 2**20


@dataclass(frozen=True, slots=True)
class Stats:
    """Seconds per run over ``runs`` timed runs (after ``warmup`` untimed ones)."""

    runs: int
    warmup: int
    median_s: float
    min_s: float
    p95_s: float
    cv_pct: float
    timer: str  # "cuda_event" or "perf_counter"

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "warmup": self.warmup,
            "median_ms": round(self.median_s * 1e3, 6),
            "min_ms": round(self.min_s * 1e3, 6),
            "p95_ms": round(self.p95_s * 1e3, 6),
            "cv_pct": round(self.cv_pct, 3),
            "timer": self.timer,
        }


def flush_bytes(torch: Any, device: Any) -> int:
    """Bytes to overwrite between runs: on CUDA 4x the device's L2 (read from the device,
    not from a table) and at least 256 MiB; on the CPU 32 MiB (beyond per-core L2, not
    necessarily beyond a large shared L3: said in the result)."""
    if device.type == "cuda":
        l2 = int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0) or 0)
        return max(_MIN_FLUSH_CUDA, 4 * l2)
    return _FLUSH_CPU


def _summary(times: list[float], warmup: int, timer: str) -> Stats:
    ordered = sorted(times)
    mean = statistics.fmean(times)
    cv = 100.0 * statistics.stdev(times) / mean if len(times) > 1 and mean > 0 else 0.0
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Stats(len(times), warmup, statistics.median(times), ordered[0], p95, cv, timer)


class Bench:
    """Times callables on one device with one flush buffer."""

    def __init__(self, torch: Any, device: Any, *, warmup: int, runs: int) -> None:
        if runs < 2 or warmup < 0:
            raise ValueError(f"runs must be ≥ 2 and warmup ≥ 0 (got {runs}, {warmup})")
        self.torch, self.device = torch, device
        self.warmup, self.runs = warmup, runs
        self.cuda = device.type == "cuda"
        self.flush_bytes = flush_bytes(torch, device)
        self._flush_buf = torch.empty(self.flush_bytes, dtype=torch.uint8, device=device)

    def flush(self) -> None:
        """Overwrite a buffer larger than the cache, so no run starts with warm inputs."""
        if self.cuda:
            self._flush_buf.zero_()
        else:
            self._flush_buf.fill_(1)

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def time(self, fn: Callable[[], object], *, runs: int | None = None) -> Stats:
        n = runs or self.runs
        for _ in range(self.warmup):
            fn()
        self.sync()
        if self.cuda:
            return self._time_cuda(fn, n)
        times: list[float] = []
        for _ in range(n):
            self.flush()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return _summary(times, self.warmup, "perf_counter")

    def _time_cuda(self, fn: Callable[[], object], n: int) -> Stats:
        # Not run in this repository's CI (no CUDA device): written to the method of
        # notes/gpu.md §2, events recorded on the current stream around the body only.
        ev = self.torch.cuda.Event
        pairs = [(ev(enable_timing=True), ev(enable_timing=True)) for _ in range(n)]
        for start, end in pairs:
            self.flush()
            start.record()
            fn()
            end.record()
        self.torch.cuda.synchronize(self.device)
        times = [start.elapsed_time(end) / 1e3 for start, end in pairs]  # ms → s
        return _summary(times, self.warmup, "cuda_event")
