"""Per-model physical peaks (dense, decimal units) and pass levels, and the judgement of
a result against them. An unknown GPU gets its figures reported and INCONCLUSIVE
verdicts; the CPU gets no peak claims at all.

Peaks: ``notes/gpu.md`` §1, rechecked against NVIDIA's datasheets (sparse figures
halved). Pass levels: ``notes/gpu.md`` §6 ("keep thresholds per SKU").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["CV_MAX_PCT", "PEAKS", "GpuPeak", "judge", "match_model"]

CV_MAX_PCT = 3.0
H2D_PINNED_MIN_GBPS = 20.0  # PCIe Gen4 x16 in practice (~25 GB/s); a floor for every model


@dataclass(frozen=True, slots=True)
class GpuPeak:
    model: str
    pattern: str  # regex over torch's / NVML's device name
    bf16_tflops: float  # = fp16 on all of these
    tf32_tflops: float
    fp32_tflops: float
    hbm_gbps: float
    gemm_level: float  # pass level: share of dense bf16/fp16 peak
    copy_level: float = 0.85  # pass level: share of memory-bandwidth peak
    source: str = "notes/gpu.md §1"


# Order matters: the first pattern that matches wins (A100 before A10G before A10).
PEAKS: tuple[GpuPeak, ...] = (
    GpuPeak("H200 SXM", r"\bH200\b(?!.*NVL)", 989, 495, 67, 4800, 0.75),
    GpuPeak("H100 PCIe", r"\bH100\b.*PCIe", 756, 378, 51, 2000, 0.60),
    GpuPeak(
        "H100 NVL",
        r"\bH100\b.*NVL",
        835,
        417.5,
        60,
        3900,
        0.60,
        source="NVIDIA H100 datasheet, NVL column (1671 sparse bf16); not in notes/gpu.md",
    ),
    GpuPeak("H100 SXM", r"\bH100\b", 989, 495, 67, 3350, 0.75),
    GpuPeak("A100 80GB PCIe", r"\bA100\b.*80GB.*PCIe", 312, 156, 19.5, 1935, 0.75),
    GpuPeak(
        "A100 40GB",
        r"\bA100\b.*40GB",
        312,
        156,
        19.5,
        1555,
        0.75,
        source="NVIDIA A100 datasheet (40GB HBM2: 1,555 GB/s); not in notes/gpu.md",
    ),
    GpuPeak("A100 80GB SXM", r"\bA100\b", 312, 156, 19.5, 2039, 0.75),
    GpuPeak(
        "L40S",
        r"\bL40S\b",
        362,
        183,
        91.6,
        864,
        0.60,
        source="NVIDIA L40S datasheet (733 sparse bf16); level unsourced, as H100 PCIe",
    ),
    GpuPeak("L4", r"\bL4\b", 121, 60, 30.3, 300, 0.45),
    GpuPeak(
        "A10G",
        r"\bA10G\b",
        70,
        35,
        35,
        600,
        0.85,
        source="AWS A10G figures via notes/gpu.md (NVIDIA publishes no A10G sheet)",
    ),
    GpuPeak("A10", r"\bA10\b", 125, 62.5, 31.2, 600, 0.85, source="NVIDIA A10 datasheet"),
)


def match_model(device_name: str) -> GpuPeak | None:
    for peak in PEAKS:
        if re.search(peak.pattern, device_name):
            return peak
    return None


def _largest(results: list[dict[str, Any]], prefix: str) -> dict[str, Any] | None:
    """The result of the large square GEMM (the first of its dtype)."""
    return next((r for r in results if r["name"].startswith(prefix)), None)


def _test(
    name: str,
    value: float | None,
    unit: str,
    peak: float | None,
    level: float | None,
    cv_pct: float | None,
    why_none: str,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"test": name, "value": value, "unit": unit, "peak": peak}
    doc["level"] = level
    doc["cv_pct"] = cv_pct
    if value is None:
        return {
            **doc,
            "ratio": None,
            "verdict": "INCONCLUSIVE",
            "reason": f"not measured: {why_none}",
        }
    if peak is None or level is None:
        return {**doc, "ratio": None, "verdict": "INCONCLUSIVE", "reason": why_none}
    ratio = value / peak
    doc["ratio"] = round(ratio, 4)
    if ratio < level:
        verdict, reason = "FAIL", f"{ratio:.1%} of peak {peak:g} {unit}, below {level:.0%}"
    elif cv_pct is not None and cv_pct > CV_MAX_PCT:
        verdict = "INCONCLUSIVE"
        reason = f"{ratio:.1%} of peak meets {level:.0%}, but cv {cv_pct:.1f}% > {CV_MAX_PCT:g}%"
    else:
        verdict, reason = "PASS", f"{ratio:.1%} of peak {peak:g} {unit}, meets {level:.0%}"
    return {**doc, "verdict": verdict, "reason": reason}


def judge(device: str, device_name: str, suites: dict[str, Any]) -> dict[str, Any]:
    """Per-test verdicts and ratios. ``device`` is ``cuda`` or ``cpu``."""
    peak = match_model(device_name) if device == "cuda" else None
    if device != "cuda":
        why = "device: cpu — no GPU peak claims"
    elif peak is None:
        why = f"unknown GPU model {device_name!r}: no peak table entry, figures reported only"
    else:
        why = ""
    gemm = suites.get("gemm", {}).get("results", [])
    copy = suites.get("copy", {}).get("results", [])
    h2d = suites.get("h2d", {}).get("results", [])
    tests = []
    for dtype in ("bf16", "fp16"):
        r = _largest(gemm, f"gemm_{dtype}_")
        tests.append(
            _test(
                f"gemm_{dtype}",
                None if r is None else r["tflops"],
                "TFLOP/s",
                None if peak is None else peak.bf16_tflops,
                None if peak is None else peak.gemm_level,
                None if r is None else r["cv_pct"],
                why or "suite not run",
            )
        )
    for dtype, attr in (("tf32", "tf32_tflops"), ("fp32", "fp32_tflops")):
        r = _largest(gemm, f"gemm_{dtype}_")
        t = _test(
            f"gemm_{dtype}",
            None if r is None else r["tflops"],
            "TFLOP/s",
            None if peak is None else getattr(peak, attr),
            None,
            None if r is None else r["cv_pct"],
            why or "no pass level (reported only)",
        )
        if peak is not None and r is not None:
            t["ratio"] = round(r["tflops"] / getattr(peak, attr), 4)
        tests.append(t)
    r = copy[0] if copy else None
    tests.append(
        _test(
            "copy",
            None if r is None else r["gbps"],
            "GB/s",
            None if peak is None else peak.hbm_gbps,
            None if peak is None else peak.copy_level,
            None if r is None else r["cv_pct"],
            why or "suite not run",
        )
    )
    for name in ("h2d_pinned", "d2h_pinned"):
        r = next((x for x in h2d if x["name"] == name), None)
        t = _test(
            name,
            None if r is None else r["gbps"],
            "GB/s",
            None,
            None,
            None if r is None else r["cv_pct"],
            why or "suite not run",
        )
        if device == "cuda" and r is not None:
            ok = r["gbps"] >= H2D_PINNED_MIN_GBPS
            t["level"] = H2D_PINNED_MIN_GBPS
            t["verdict"] = "PASS" if ok else "FAIL"
            t["reason"] = (
                f"{r['gbps']:.1f} GB/s {'meets' if ok else 'below'} the "
                f"{H2D_PINNED_MIN_GBPS:g} GB/s PCIe Gen4 floor"
            )
        tests.append(t)
    judged = [t for t in tests if t["level"] is not None and t["value"] is not None]
    cvs = [t["cv_pct"] for t in judged if t["cv_pct"] is not None]
    return {
        "device": device,
        "model": None if peak is None else peak.model,
        "peak_source": None if peak is None else peak.source,
        "peaks": None
        if peak is None
        else {
            "bf16_tflops": peak.bf16_tflops,
            "tf32_tflops": peak.tf32_tflops,
            "fp32_tflops": peak.fp32_tflops,
            "hbm_gbps": peak.hbm_gbps,
        },
        "cv_max_pct": CV_MAX_PCT,
        "max_cv_pct_judged": max(cvs) if cvs else None,
        "tests": tests,
        "verdict": _worst(
            [t["verdict"] for t in tests if t["level"] is not None] or ["INCONCLUSIVE"]
        ),
    }


def _worst(verdicts: list[str]) -> str:
    order = ["PASS", "INCONCLUSIVE", "FAIL", "ERROR"]
    return max(verdicts, key=order.index)
