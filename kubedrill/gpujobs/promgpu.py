"""GPU metrics from Prometheus (dcgm-exporter names), with fallbacks.

dcgm-exporter's series depend on its counters file and DCGM version: the profiling
fields (ratios 0-1) are absent from the default CSV, ``GR_ENGINE_ACTIVE`` is missing on
some H100/H200 nodes, and DCGM renamed the profiling fields (``DCGM_FI_PROF_SM_ACTIVE``
→ ``DCGM_FI_PROF_SM_UTIL_RATIO``, same IDs). So each signal is a list of candidates,
tried in order; the first with any series in the window answers, scaled to a ratio, and
the answer says which name it came from. Reads through
:class:`kubedrill.adapters.prom.PrometheusClient` (its ``range_query``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from kubedrill.adapters.prom import Series
from kubedrill.timeline import MetricSample, Timeline

__all__ = ["SIGNALS", "GpuMetricReader", "GpuSeries", "RangeQuery"]

# signal → (series name, factor to a 0-1 ratio (or to the unit named), unit), in order
SIGNALS: dict[str, tuple[tuple[str, float, str], ...]] = {
    "gpu_busy": (
        ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 1.0, "ratio"),
        ("DCGM_FI_PROF_GR_ENGINE_UTIL_RATIO", 1.0, "ratio"),
        ("DCGM_FI_DEV_GPU_UTIL", 0.01, "ratio"),  # percent: "a kernel ran", not SM work
    ),
    "sm_active": (
        ("DCGM_FI_PROF_SM_ACTIVE", 1.0, "ratio"),
        ("DCGM_FI_PROF_SM_UTIL_RATIO", 1.0, "ratio"),
    ),
    "tensor_active": (
        ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 1.0, "ratio"),
        ("DCGM_FI_PROF_TENSOR_UTIL_RATIO", 1.0, "ratio"),
    ),
    "dram_active": (
        ("DCGM_FI_PROF_DRAM_ACTIVE", 1.0, "ratio"),
        ("DCGM_FI_PROF_DRAM_UTIL_RATIO", 1.0, "ratio"),
        ("DCGM_FI_DEV_MEM_COPY_UTIL", 0.01, "ratio"),
    ),
    "fb_used_mib": (("DCGM_FI_DEV_FB_USED", 1.0, "MiB"),),
    "power_w": (("DCGM_FI_DEV_POWER_USAGE", 1.0, "W"),),
    "temp_c": (("DCGM_FI_DEV_GPU_TEMP", 1.0, "C"),),
    "sm_clock_mhz": (("DCGM_FI_DEV_SM_CLOCK", 1.0, "MHz"),),
    "xid_last": (("DCGM_FI_DEV_XID_ERRORS", 1.0, "xid"),),
}


class RangeQuery(Protocol):
    def range_query(
        self, query: str, start: float, end: float, step_s: float | None = None
    ) -> list[Series]: ...


@dataclass(frozen=True, slots=True)
class GpuSeries:
    signal: str
    source: str | None  # the series name that answered; None: none of the candidates
    unit: str
    series: tuple[Series, ...]  # values already scaled
    tried: tuple[str, ...]

    def describe(self) -> str:
        if self.source is None:
            return f"{self.signal}: no series of {', '.join(self.tried)}"
        fell = f" (fallback after {', '.join(self.tried[:-1])})" if len(self.tried) > 1 else ""
        return f"{self.signal} from {self.source}{fell}: {len(self.series)} series"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _selector(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


class GpuMetricReader:
    def __init__(self, prom: RangeQuery) -> None:
        self.prom = prom

    def read(
        self,
        signal: str,
        start: float,
        end: float,
        labels: Mapping[str, str] | None = None,
        step_s: float | None = None,
    ) -> GpuSeries:
        """The first candidate of ``signal`` with series in [start, end] (unix seconds)."""
        if signal not in SIGNALS:
            raise ValueError(f"signal: expected one of {', '.join(SIGNALS)}, got {signal!r}")
        tried: list[str] = []
        unit = SIGNALS[signal][0][2]
        for name, factor, unit in SIGNALS[signal]:
            tried.append(name)
            found = self.prom.range_query(name + _selector(labels or {}), start, end, step_s)
            found = [s for s in found if s.points]
            if found:
                scaled = tuple(
                    Series(s.labels, [(t, v * factor) for t, v in s.points]) for s in found
                )
                return GpuSeries(signal, name, unit, scaled, tuple(tried))
        return GpuSeries(signal, None, unit, (), tuple(tried))

    def record(self, timeline: Timeline, got: GpuSeries, source: str = "prometheus") -> int:
        """Every point as a ``gpu.<signal>`` sample at its own time; returns the count."""
        n = 0
        for s in got.series:
            labels = {**s.labels, "dcgm_field": got.source or ""}
            for wall, value in s.points:
                t = timeline.mono0 + (wall - timeline.wall0)
                timeline.record(MetricSample(f"gpu.{got.signal}", value, labels), source, t=t)
                n += 1
        return n
