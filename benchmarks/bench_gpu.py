"""GPU benchmark (``make bench-gpu``): every gpu_bench suite, and the burner's level
control, on the device this machine has; writes reports/bench/gpu.json naming it.

Bars (issue 11), judged on a real GPU only:

* ``gemm_bf16_ratio`` ≥ the model's level (0.75 of dense bf16 peak on H100/H200),
* ``copy_ratio`` ≥ 0.85 of the memory-bandwidth peak,
* ``cv_pct`` ≤ 3 (the largest coefficient of variation of the judged cases),
* ``burner_level_error_pts`` ≤ 10 at busy 0.5 and 0.9 (|mean NVML utilisation - level|).

On the CPU every suite still runs (small sizes), the file says ``device: cpu``, carries
no peak ratios, and every bar is ``met: null`` with the reason. Each step is a child
process with a timeout, so the whole run is bounded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITE_TIMEOUT_S = 480
BURN_S = 20.0
BURN_LEVELS = (0.5, 0.9)
BARS = {"copy_ratio": 0.85, "cv_pct": 3.0, "burner_level_error_pts": 10.0}


def run_suites(threads: int | None, soak_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "result.json"
        cmd = [sys.executable, "-m", "gpu_bench", "run", "--json", str(out)]
        cmd += ["--soak-s", str(soak_s)]
        if threads:
            cmd += ["--threads", str(threads)]
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S
        )
        sys.stdout.write(proc.stdout)
        if not out.exists():
            raise SystemExit(f"gpu_bench run wrote nothing (exit {proc.returncode}): {proc.stderr}")
        doc: dict[str, Any] = json.loads(out.read_text())
        return doc


def burn_level(busy: float) -> dict[str, Any]:
    """The burner on CUDA device 0 at ``busy`` for BURN_S seconds (CUDA only)."""
    cmd = [sys.executable, "-m", "gpu_bench", "burn", "--busy", str(busy)]
    cmd += ["--duration", str(BURN_S), "--devices", "0", "--cuda", "on", "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BURN_S + 60)
    if proc.returncode != 0:
        return {"busy": busy, "error": f"exit {proc.returncode}: {proc.stderr[-500:]}"}
    summary = json.loads(proc.stdout)
    dev = summary["cuda"]["devices"][0]
    return {
        "busy": busy,
        "nvml_util_percent_mean": dev["nvml_util_percent_mean"],
        "nvml_util_samples": dev["nvml_util_samples"],
        "level_error_pts": dev["level_error_pts"],
        "achieved_busy": dev["achieved_busy"],
        "final_duty": dev["duty"],
        "nvml_note": summary["cuda"]["nvml_note"],
    }


def _bar(value: float | None, bar: float, op: str, why_none: str) -> dict[str, Any]:
    if value is None:
        return {"value": None, "bar": f"{op} {bar:g}", "met": None, "reason": why_none}
    met = value >= bar if op == ">=" else value <= bar
    return {"value": value, "bar": f"{op} {bar:g}", "met": met, "reason": ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "reports/bench/gpu.json")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (CPU runs)")
    ap.add_argument("--soak-s", type=float, default=15.0, help="bf16 soak before timing (CUDA)")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    result = run_suites(a.threads, a.soak_s)
    cuda = result["device"] == "cuda"
    j = result["judgement"]
    tests = {t["test"]: t for t in j["tests"]}
    why = "device: cpu — CUDA not run, no peak claims"
    if cuda:
        why = "" if j["model"] else f"unknown GPU model {result['device_name']!r}: no peak"
    bars: dict[str, Any] = {}
    gemm = tests["gemm_bf16"]
    bars["gemm_bf16_ratio"] = _bar(
        gemm["ratio"], gemm["level"] if gemm["level"] is not None else 0.75, ">=", why
    )
    bars["copy_ratio"] = _bar(tests["copy"]["ratio"], BARS["copy_ratio"], ">=", why)
    cvs = [r["cv_pct"] for s in result["suites"].values() for r in s["results"]]
    cpu_cv = "device: cpu — the bar is for a GPU; CPU cvs are in cpu_cv_pct_max"
    bars["cv_pct"] = _bar(j["max_cv_pct_judged"] if cuda else None, BARS["cv_pct"], "<=", cpu_cv)
    burns: list[dict[str, Any]] = []
    for busy in BURN_LEVELS:
        key = f"burner_level_error_pts_{round(busy * 100)}"
        if not cuda:
            no_burn = "device: cpu — the burner needs CUDA and NVML utilisation"
            bars[key] = _bar(None, BARS["burner_level_error_pts"], "<=", no_burn)
            continue
        b = burn_level(busy)
        burns.append(b)
        why_b = b.get("error") or b.get("nvml_note") or "no NVML utilisation"
        bars[key] = _bar(b.get("level_error_pts"), BARS["burner_level_error_pts"], "<=", why_b)
    doc = {
        "bench": "gpu",
        "device": result["device"],
        "device_name": result["device_name"],
        "cuda_run": result["cuda_run"],
        "note": result["note"],
        "model": j["model"],
        "verdict": result["verdict"],
        "bars": bars,
        "cpu_cv_pct_max": None if cuda else (max(cvs) if cvs else None),
        "burner": burns,
        "wall_s": round(time.monotonic() - t0, 2),
        "result": result,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"device: {doc['device']} ({doc['device_name']}); model: {doc['model']}")
    for name, bar in bars.items():
        shown = "—" if bar["value"] is None else f"{bar['value']:.4g}"
        print(f"  {name}: {shown} (bar {bar['bar']}): met={bar['met']} {bar['reason']}")
    print(f"wrote {a.out} in {doc['wall_s']} s")
    return 0 if all(b["met"] is not False for b in bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
