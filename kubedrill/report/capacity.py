"""The capacity report: a load sweep's latency-vs-rate curve, its knee, and what one
replica and one GPU deliver; plus whatever ``gpu_bench`` results the run holds.

A sweep scenario (``scenarios/test_capacity_sweep.py``) runs one phase per offered rate
and records, as :class:`MetricSample` observations on its timeline:

- ``capacity.offered_rps`` (labels ``phase``): the arrival rate of that step;
- ``capacity.replicas``, ``capacity.gpus``: the fixed replica count and the GPUs they use;
- ``capacity.slo_p95_ms``: the latency objective the sweep steps against;
- ``capacity.configured_rps`` (optional): what the service's configuration says it can do.

The knee is where the SLO breaks: between the last step that met it and the first that
did not. In the open model a saturated service answers at exactly its capacity, so the
first breaking step's answered rate, bounded by those two offered rates, places the knee
more finely than the step size does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from kubedrill.core.types import Window
from kubedrill.report import hdr
from kubedrill.timeline import Timeline
from kubedrill.timeline.payloads import LoadWindow, MetricSample

__all__ = ["CapacityStep", "capacity_report", "gpu_bench_results"]


@dataclass(frozen=True, slots=True)
class CapacityStep:
    phase: str
    offered_rps: float
    answered_rps: float
    error_ratio: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    meets_slo: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _first(tl: Timeline, name: str) -> float | None:
    for o in tl.select(MetricSample):
        if o.data.name == name:
            return float(o.data.value)
    return None


def _step(tl: Timeline, phase: str, window: Window, offered: float, slo_ms: float) -> CapacityStep:
    ws = [
        o.data for o in tl.select(LoadWindow) if window.contains((o.data.start + o.data.end) / 2.0)
    ]
    counts = hdr.merge_counts(w.histogram for w in ws)
    p50, p95, p99 = hdr.percentiles_ms(counts, (50, 95, 99))
    sent = sum(w.count for w in ws)
    errors = sum(w.error_count for w in ws) + sum(w.dropped for w in ws)
    answered = sum(w.answered if w.answered >= 0 else w.count - w.error_count for w in ws)
    span = sum(w.end - w.start for w in {(w.start, w.end): w for w in ws}.values())
    ratio = errors / max(sent + sum(w.dropped for w in ws), 1)
    ok = p95 is not None and p95 <= slo_ms and ratio < 0.01
    return CapacityStep(
        phase,
        offered,
        round(answered / span, 3) if span > 0 else 0.0,
        round(ratio, 5),
        p50,
        p95,
        p99,
        ok,
    )


def capacity_report(tl: Timeline) -> dict[str, Any] | None:
    """The sweep's curve, knee and per-replica / per-GPU figures; None when the timeline
    holds no sweep."""
    offered = [o for o in tl.select(MetricSample) if o.data.name == "capacity.offered_rps"]
    if not offered:
        return None
    phases = tl.phases()
    slo_ms = _first(tl, "capacity.slo_p95_ms") or 100.0
    replicas = _first(tl, "capacity.replicas") or 1.0
    gpus = _first(tl, "capacity.gpus") or replicas
    configured = _first(tl, "capacity.configured_rps")
    steps = []
    for o in offered:
        name = o.data.labels.get("phase", "")
        if name in phases:
            steps.append(_step(tl, name, phases[name], float(o.data.value), slo_ms))
    steps.sort(key=lambda s: s.offered_rps)
    knee, how = None, "the SLO held at every step: the knee is above the sweep"
    first_bad = next((i for i, s in enumerate(steps) if not s.meets_slo), None)
    if first_bad == 0:
        how = "the SLO broke at the first step: the knee is below the sweep"
    elif first_bad is not None:
        lo, hi = steps[first_bad - 1].offered_rps, steps[first_bad].offered_rps
        knee = min(max(steps[first_bad].answered_rps, lo), hi)
        how = (
            f"SLO p95 ≤ {slo_ms:g} ms met at {lo:g} req/s, broken at {hi:g} req/s, where the "
            f"service answered {steps[first_bad].answered_rps:g} req/s"
        )
    out: dict[str, Any] = {
        "slo_p95_ms": slo_ms,
        "replicas": replicas,
        "gpus": gpus,
        "steps": [s.to_dict() for s in steps],
        "knee_rps": knee,
        "knee_how": how,
        "configured_rps": configured,
        "knee_error_pct": None,
        "rps_per_replica": None if knee is None else round(knee / replicas, 3),
        "rps_per_gpu": None if knee is None else round(knee / gpus, 3),
        "gpu_s_per_1k_requests": None if not knee else round(gpus / knee * 1000.0, 4),
    }
    if knee is not None and configured:
        out["knee_error_pct"] = round(abs(knee - configured) / configured * 100.0, 2)
    return out


def gpu_bench_results(
    scenarios: list[dict[str, Any]], timelines: list[Timeline | None]
) -> list[dict[str, Any]]:
    """Checks and metric samples named ``gpu_bench…`` anywhere in the run, with their ratio
    to a peak where one is given (a ``peak`` label, or a ``…_peak`` sample of the same
    name)."""
    rows: list[dict[str, Any]] = []
    for sc, tl in zip(scenarios, timelines, strict=True):
        for c in sc.get("checks", []):
            if c["name"].startswith("gpu_bench"):
                rows.append(
                    {
                        "scenario": sc["id"],
                        "name": c["name"],
                        "value": c["value"],
                        "unit": c["unit"],
                        "peak": None,
                        "ratio": None,
                        "verdict": c["verdict"],
                        "node_type": "",
                    }
                )
        if tl is None:
            continue
        samples = [o.data for o in tl.select(MetricSample) if o.data.name.startswith("gpu_bench")]
        # kubedrill.gpujobs records gpu_bench.<test>.value and .ratio (to the GPU's peak);
        # other producers may give a peak label or a <name>_peak sample
        ratios = {
            (s.name.removesuffix(".ratio"), s.labels.get("node_type", "")): s.value
            for s in samples
            if s.name.endswith(".ratio")
        }
        peaks = {s.name.removesuffix("_peak"): s.value for s in samples if s.name.endswith("_peak")}
        for s in samples:
            if s.name.endswith(("_peak", ".ratio", ".cv_pct")):
                continue
            base = s.name.removesuffix(".value")
            peak: float | None = peaks.get(s.name)
            with contextlib.suppress(ValueError):
                peak = float(s.labels["peak"]) if "peak" in s.labels else peak
            ratio = None if not peak else round(s.value / peak, 4)
            judged = ratios.get((base, s.labels.get("node_type", "")))
            if judged is not None and s.name.endswith(".value"):
                ratio = round(judged, 4)
                peak = None if not judged else round(s.value / judged, 4)
            rows.append(
                {
                    "scenario": sc["id"],
                    "name": base if s.name.endswith(".value") else s.name,
                    "value": s.value,
                    "unit": s.labels.get("unit", ""),
                    "peak": peak,
                    "ratio": ratio,
                    "verdict": None,
                    "node_type": s.labels.get("node_type", ""),
                }
            )
    return rows
