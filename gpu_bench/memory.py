"""Memory suites: device-to-device copy bandwidth (a copy of N bytes reads N and writes
N: 2N counted) and host↔device transfers, pinned and pageable. Buffers hold seeded
random bytes, never zeros. Decimal units: GB/s = 1e9 bytes/s.
"""

from __future__ import annotations

from typing import Any

from gpu_bench.timing import Bench

__all__ = ["run_copy", "run_h2d"]


def _random_bytes(torch: Any, n: int, device: Any, seed: int, pin: bool = False) -> Any:
    gen = torch.Generator(device=device).manual_seed(seed)
    t = torch.randint(0, 256, (n,), dtype=torch.uint8, device=device, generator=gen)
    return t.pin_memory() if pin else t


def run_copy(bench: Bench, *, nbytes: int, seed: int) -> dict[str, Any]:
    torch, dev = bench.torch, bench.device
    src = _random_bytes(torch, nbytes, dev, seed)
    dst = torch.empty_like(src)
    stats = bench.time(lambda: dst.copy_(src))
    moved = 2 * nbytes
    return {
        "results": [
            {
                "name": "copy_d2d",
                "bytes": nbytes,
                "bytes_moved": moved,
                "gbps": round(moved / stats.median_s / 1e9, 4),
                **stats.to_dict(),
            }
        ],
        "skipped": [],
        "counted": "read + write (2 x bytes per copy)",
    }


def run_h2d(bench: Bench, *, nbytes: int, seed: int) -> dict[str, Any]:
    """Host→device and device→host, pinned and pageable. On the CPU there is no device
    memory: the pageable case is timed as a host memcpy and labelled so; pinned memory
    needs CUDA, so it is skipped with that reason."""
    torch, dev = bench.torch, bench.device
    cpu = torch.device("cpu")
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for pinned in (True, False):
        kind = "pinned" if pinned else "pageable"
        if pinned and not bench.cuda:
            for direction in ("h2d", "d2h"):
                skipped.append(
                    {"name": f"{direction}_{kind}", "reason": "pinned memory needs CUDA"}
                )
            continue
        host = _random_bytes(torch, nbytes, cpu, seed, pin=pinned)
        device_buf = _random_bytes(torch, nbytes, dev, seed + 1)
        host_out = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
        cases = {
            "h2d": lambda h=host, d=device_buf, nb=pinned: d.copy_(h, non_blocking=nb),
            "d2h": lambda h=host_out, d=device_buf, nb=pinned: h.copy_(d, non_blocking=nb),
        }
        for direction, fn in cases.items():
            stats = bench.time(fn)
            results.append(
                {
                    "name": f"{direction}_{kind}",
                    "bytes": nbytes,
                    "gbps": round(nbytes / stats.median_s / 1e9, 4),
                    "what": "host↔device" if bench.cuda else "host memcpy (no device on cpu)",
                    **stats.to_dict(),
                }
            )
    return {"results": results, "skipped": skipped}
