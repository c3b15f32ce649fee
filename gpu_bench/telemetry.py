"""NVML telemetry around a benchmark: a ~10 Hz sampler in a background thread
(utilisation, memory, power, temperature, SM clock, clock-event reasons), and ECC,
remapped rows and XID events compared before and after. Works on our adapter
(:mod:`gpu_bench.nvml`), so tests drive it with a fake.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import asdict
from typing import Any

from gpu_bench.nvml import BAD_REASONS, Health, Nvml, Reading, open_nvml, reason_names

__all__ = ["Sampler", "Telemetry", "health_delta", "summarise"]


class Sampler:
    """Samples every device every ``interval_s`` until :meth:`stop`; polls XIDs too."""

    def __init__(self, nvml: Nvml, handles: dict[str, Any], interval_s: float = 0.1) -> None:
        self.nvml, self.handles, self.interval_s = nvml, handles, interval_s
        self.samples: dict[str, list[tuple[float, Reading]]] = {k: [] for k in handles}
        self.xids: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _loop(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            for key, h in self.handles.items():
                try:
                    self.samples[key].append((time.monotonic(), self.nvml.read(h)))
                except Exception as e:  # noqa: BLE001 - telemetry never kills the run
                    if len(self.errors) < 10:
                        self.errors.append(f"{key}: {type(e).__name__}: {e}")
            try:
                self.xids += self.nvml.poll_xids()
            except Exception as e:  # noqa: BLE001
                if len(self.errors) < 10:
                    self.errors.append(f"xid poll: {type(e).__name__}: {e}")
            nxt += self.interval_s
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def latest_util(self, key: str) -> float | None:
        s = self.samples.get(key) or []
        return s[-1][1].util_gpu_pct if s else None


def _stat(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {
        "mean": round(statistics.fmean(xs), 3),
        "min": round(min(xs), 3),
        "max": round(max(xs), 3),
    }


def summarise(samples: list[tuple[float, Reading]]) -> dict[str, Any]:
    rs = [r for _, r in samples]

    def col(name: str) -> list[float]:
        return [float(v) for r in rs if (v := getattr(r, name)) is not None]

    mask = 0
    for r in rs:
        mask |= r.clock_reasons or 0
    span = samples[-1][0] - samples[0][0] if len(samples) > 1 else 0.0
    return {
        "samples": len(rs),
        "span_s": round(span, 3),
        "rate_hz": round((len(rs) - 1) / span, 2) if span > 0 else None,
        "util_gpu_pct": _stat(col("util_gpu_pct")),
        "util_mem_pct": _stat(col("util_mem_pct")),
        "mem_used_bytes": _stat(col("mem_used_bytes")),
        "power_w": _stat(col("power_w")),
        "temp_c": _stat(col("temp_c")),
        "sm_clock_mhz": _stat(col("sm_clock_mhz")),
        "clock_reasons_seen": reason_names(mask),
        "throttled": bool(mask & BAD_REASONS),
    }


def health_delta(before: Health, after: Health) -> dict[str, Any]:
    out: dict[str, Any] = {"before": asdict(before), "after": asdict(after)}
    bad: list[str] = []
    for name in ("ecc_uncorrected_volatile", "remapped_correctable", "remapped_uncorrectable"):
        a, b = getattr(before, name), getattr(after, name)
        delta = None if a is None or b is None else b - a
        out[f"{name}_delta"] = delta
        if delta:
            bad.append(f"{name} +{delta}")
    for name in ("remap_pending", "remap_failed"):
        if getattr(after, name):
            bad.append(name)
    out["problems"] = bad
    return out


class Telemetry:
    """Context manager: health before, sampler during, health and summaries after.

    ``devices`` maps a label (``cuda:0``) to an NVML selector: a UUID (from torch) or an
    index. With no driver :attr:`doc` is ``{"available": False, "reason": "no NVIDIA
    driver: …"}``."""

    def __init__(
        self,
        devices: dict[str, str | int],
        interval_s: float = 0.1,
        nvml: Nvml | None = None,
        reason: str | None = None,
    ) -> None:
        if nvml is None and reason is None:
            nvml, reason = open_nvml()
        self.nvml, self.reason = nvml, reason
        self.devices, self.interval_s = devices, interval_s
        self.sampler: Sampler | None = None
        self.doc: dict[str, Any] = {"available": False, "reason": reason}
        self._before: dict[str, Health] = {}

    def __enter__(self) -> Telemetry:
        if self.nvml is None:
            return self
        handles: dict[str, Any] = {}
        try:
            for key, sel in self.devices.items():
                h = self.nvml.handle(uuid=sel) if isinstance(sel, str) else self.nvml.handle(sel)
                handles[key] = h
                self._before[key] = self.nvml.health(h)
            xids = self.nvml.watch_xids(list(handles.values()))
        except Exception as e:  # noqa: BLE001 - reported, the benchmark still runs
            self.doc = {"available": False, "reason": f"NVML failed: {type(e).__name__}: {e}"}
            self.nvml.close()
            self.nvml = None
            return self
        self.doc = {"available": True, "driver": self.nvml.driver(), "xid_watch": xids}
        self.sampler = Sampler(self.nvml, handles, self.interval_s).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.nvml is None or self.sampler is None:
            return
        s = self.sampler
        s.stop()
        devices = {}
        for key, h in s.handles.items():
            devices[key] = {
                "name": self.nvml.name(h),
                **summarise(s.samples[key]),
                "health": health_delta(self._before[key], self.nvml.health(h)),
            }
        self.doc.update(
            {
                "interval_s": self.interval_s,
                "devices": devices,
                "xid_events": [{"uuid": u, "xid": x} for u, x in s.xids],
                "errors": s.errors,
            }
        )
        self.nvml.close()
