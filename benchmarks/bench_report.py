"""Report benchmark → reports/bench/report.json (``make bench-report``).

- ``render_1h_s``, ``html_1h_mb``, ``run_json_1h_mb``: a synthetic one-hour game day
  (3,600 s timeline, 10^6 requests in HDR windows from 4 workers, 10^4 cluster events,
  chaos bands, GPU samples), written by the real writer, read back and rendered again
  the way ``kubedrill report render`` does;
- ``browser_errors``, ``panels_missing``: that HTML opened in headless Chromium (console
  errors, uncaught exceptions, panels the data calls for that did not draw), screenshot
  beside the JSON;
- ``diff_false_regressions`` (two runs of one build, other seeds) and ``diff_detected``
  (a run with every latency 30 % higher: is the p95 regression flagged?);
- ``knee_error_pct``: the real capacity sweep (scenarios/test_capacity_sweep.py: the
  reference service, real Locust) against the service's configured capacity.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubedrill.report.browser import check_report, find_chromium  # noqa: E402
from kubedrill.report.capacity import capacity_report  # noqa: E402
from kubedrill.report.diff import diff_runs  # noqa: E402
from kubedrill.report.document import load_run_document, scenario_timeline  # noqa: E402
from kubedrill.report.html import render_html  # noqa: E402
from kubedrill.report.synthetic import synthetic_run  # noqa: E402
from kubedrill.report.writer import write_reports  # noqa: E402

BARS = {
    "render_1h_s": ("<=", 10.0),
    "html_1h_mb": ("<=", 5.0),
    "run_json_1h_mb": ("<=", 20.0),
    "browser_errors": ("==", 0),
    "panels_missing": ("==", 0),
    "diff_false_regressions": ("==", 0),
    "diff_detected": ("==", 1),
    "knee_error_pct": ("<=", 10.0),
}


def _mb(p: Path) -> float:
    return round(p.stat().st_size / 1e6, 3)


def one_hour(out: Path, work: Path) -> dict[str, object]:
    t = time.perf_counter()
    doc = synthetic_run(3600.0, 1_000_000, 10_000, seed=1, run_id="20251202T000000Z-0001aa")
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    written = write_reports(doc, work, ["json", "junit", "markdown", "html"], env={})
    write_s = time.perf_counter() - t
    t = time.perf_counter()  # what `kubedrill report render run.json` does
    again = render_html(load_run_document(written["json"]))
    render_s = time.perf_counter() - t
    html = work / "rerendered.html"
    html.write_text(again, encoding="utf-8")
    res: dict[str, object] = {
        "generate_1h_s": round(gen_s, 2),
        "write_1h_s": round(write_s, 2),
        "render_1h_s": round(max(render_s, write_s), 2),
        "html_1h_mb": _mb(html),
        "run_json_1h_mb": _mb(written["json"]),
        "requests_1h": sum(
            c for s in doc["scenarios"] for c in _series_sum(s, "load.window", "count")
        ),
    }
    if find_chromium() is None:
        res["browser_errors"] = None
        res["panels_missing"] = None
        res["browser_note"] = "no chromium on PATH (apt-get install chromium)"
        return res
    shot = out / "report-1h.png"
    check = check_report(html, shot)
    res.update(
        browser_errors=len(check.errors),
        browser_error_text=check.errors[:5],
        panels_missing=check.panels_missing,
        panels_expected=check.expected,
        panels_drawn=check.drawn,
        panels_empty=check.empty,
        browser_load_s=check.load_s,
        screenshot=str(shot.relative_to(ROOT)) if shot.is_relative_to(ROOT) else str(shot),
    )
    return res


def _series_sum(scenario: dict[str, object], kind: str, column: str) -> list[int]:
    timeline = scenario["timeline"]
    assert isinstance(timeline, dict)
    return [sum(s["columns"][column]) for s in timeline["series"] if s["kind"] == kind]


def diffs() -> dict[str, object]:
    kw = {"duration_s": 600.0, "requests": 120_000, "events": 400}
    base = synthetic_run(seed=11, **kw)  # type: ignore[arg-type]
    same = synthetic_run(seed=12, **kw)  # type: ignore[arg-type]
    slow = synthetic_run(seed=13, latency_factor=1.3, **kw)  # type: ignore[arg-type]
    t = time.perf_counter()
    same_build = diff_runs(base, same, 10.0)
    diff_s = time.perf_counter() - t
    regressed = diff_runs(base, slow, 10.0)
    p95_flagged = [r for r in regressed.latency if r["percentile"] == "p95" and r["regressed"]]
    return {
        "diff_false_regressions": len(same_build.regressions),
        "diff_false_regression_text": same_build.regressions[:5],
        "diff_detected": int(bool(p95_flagged) and regressed.regressed),
        "diff_detected_p95": [
            f"{r['scope']}: {r['delta_pct']:+.1f} % (CI {r['delta_ci_pct']})" for r in p95_flagged
        ],
        "diff_10min_s": round(diff_s, 2),
    }


def knee(work: Path) -> dict[str, object]:
    reports = work / "capacity"
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "scenarios/test_capacity_sweep.py", "--drill-suite=capacity",
        f"--drill-report-dir={reports}",
    ]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t
    docs = sorted(reports.glob("2*/run.json"))
    if not docs:
        return {"knee_error_pct": None, "capacity_note": proc.stdout[-2000:] + proc.stderr[-2000:]}
    doc = load_run_document(docs[-1])
    tl = scenario_timeline(doc["scenarios"][0])
    cap = capacity_report(tl) if tl is not None else None
    if cap is None:
        return {"knee_error_pct": None, "capacity_note": "no sweep in the run"}
    return {
        "knee_error_pct": cap["knee_error_pct"],
        "knee_rps": cap["knee_rps"],
        "configured_rps": cap["configured_rps"],
        "knee_how": cap["knee_how"],
        "capacity_steps": [
            {k: s[k] for k in ("offered_rps", "answered_rps", "p95_ms", "meets_slo")}
            for s in cap["steps"]
        ],
        "capacity_verdict": doc["verdict"],
        "capacity_sweep_s": round(took, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "reports/bench")
    ap.add_argument("--skip-capacity", action="store_true", help="skip the ~1 min real sweep")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kd-bench-report-") as tmp:
        work = Path(tmp)
        result: dict[str, object] = {}
        result.update(one_hour(args.out, work))
        result.update(diffs())
        if not args.skip_capacity:
            result.update(knee(work))
    bars: dict[str, object] = {}
    for key, (op, limit) in BARS.items():
        value = result.get(key)
        ok = value is not None and (value <= limit if op == "<=" else value == limit)  # type: ignore[operator]
        bars[key] = {"value": value, "bar": f"{op} {limit:g}", "met": bool(ok)}
    result["bars"] = bars
    result["all_bars_met"] = all(b["met"] for b in bars.values())  # type: ignore[index]
    path = args.out / "report.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for key, b in bars.items():
        print(f"{key:>24}: {b['value']} (bar {b['bar']}) {'ok' if b['met'] else 'NOT MET'}")  # type: ignore[index]
    print(f"wrote {path}")
    return 0 if result["all_bars_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
