"""Compare a run with a baseline: latency percentiles with confidence intervals from the
merged HDR histograms, scaling timings, and checks that newly fail.

A percentile regresses only when the whole confidence interval of the change lies beyond
the tolerance: the run's lower bound exceeds the baseline's upper bound by more than
``tolerance_pct``. Two runs of one build differ by noise that the intervals cover, so they
are not flagged; a real 30 % shift in p95 over thousands of requests is. The intervals are
order-statistic ones (:func:`kubedrill.report.hdr.percentile_ci_ms`): exact for any
distribution, no resampling. Exit codes are decided by the CLI, from :attr:`regressed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubedrill.report import hdr
from kubedrill.report.document import scenario_timeline
from kubedrill.timeline import Timeline
from kubedrill.timeline.payloads import LoadWindow

__all__ = ["DiffReport", "diff_runs"]

PERCENTILES = (50.0, 95.0, 99.0)
_BAD = ("FAIL", "ERROR")
TIMING_SLACK_S = 1.0  # a scaling timing moves by at least this much before it counts


@dataclass(slots=True)
class DiffReport:
    tolerance_pct: float
    latency: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    new_failures: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[str]:
        out = [
            f"{r['scenario']} [{r['scope']}] {r['percentile']}: {r['base_ms']:.4g} → "
            f"{r['run_ms']:.4g} ms ({r['delta_pct']:+.1f} %, CI {r['delta_ci_pct'][0]:+.1f} … "
            f"{r['delta_ci_pct'][1]:+.1f} %)"
            for r in self.latency
            if r["regressed"]
        ]
        out += [
            f"{r['scenario']} {r['check']}: {r['base_s']:.4g} → {r['run_s']:.4g} s"
            for r in self.timings
            if r["regressed"]
        ]
        out += [
            f"{f['scenario']} {f['check']}: now {f['verdict']} (was {f['was'] or 'absent'})"
            for f in self.new_failures
        ]
        return out

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tolerance_pct": self.tolerance_pct,
            "regressed": self.regressed,
            "regressions": self.regressions,
            "latency": self.latency,
            "timings": self.timings,
            "new_failures": self.new_failures,
            "unmatched": self.unmatched,
        }

    def to_text(self) -> str:
        lines = [f"latency percentiles (tolerance {self.tolerance_pct:g} %, 95 % CI):"]
        for r in self.latency:
            flag = "REGRESSED" if r["regressed"] else "ok"
            lines.append(
                f"  {r['scenario']} [{r['scope']}] {r['percentile']}: {r['base_ms']:.4g} ms "
                f"(n={r['base_n']}) → {r['run_ms']:.4g} ms (n={r['run_n']}) "
                f"{r['delta_pct']:+.1f} % [{r['delta_ci_pct'][0]:+.1f}, "
                f"{r['delta_ci_pct'][1]:+.1f}] {flag}"
            )
        if self.timings:
            lines.append("scaling and recovery timings:")
            for r in self.timings:
                flag = "REGRESSED" if r["regressed"] else "ok"
                lines.append(
                    f"  {r['scenario']} {r['check']}: {r['base_s']:.4g} s → {r['run_s']:.4g} s "
                    f"({r['delta_s']:+.3g} s) {flag}"
                )
        lines.append(f"new failures: {len(self.new_failures)}")
        lines += [
            f"  {f['scenario']} {f['check']}: {f['verdict']} (was {f['was'] or 'absent'}) — "
            f"{f['reason']}"
            for f in self.new_failures
        ]
        if self.unmatched:
            lines.append("only in one run: " + ", ".join(self.unmatched))
        lines.append(
            f"verdict: {'REGRESSED' if self.regressed else 'no regression beyond tolerance'}"
        )
        return "\n".join(lines)


def _scopes(tl: Timeline) -> dict[str, hdr.Counts]:
    """Merged latency counts for the whole load and for each phase."""
    windows = [o.data for o in tl.select(LoadWindow)]
    out: dict[str, hdr.Counts] = {}
    if not windows:
        return out
    out["all"] = hdr.merge_counts(w.histogram for w in windows)
    for name, win in tl.phases().items():
        inside = [w for w in windows if win.contains((w.start + w.end) / 2.0)]
        if inside:
            out[f"phase {name}"] = hdr.merge_counts(w.histogram for w in inside)
    return out


def _latency_rows(sid: str, base: Timeline, run: Timeline, tol: float) -> list[dict[str, Any]]:
    rows = []
    b_scopes, r_scopes = _scopes(base), _scopes(run)
    for scope in [s for s in b_scopes if s in r_scopes]:
        b, r = b_scopes[scope], r_scopes[scope]
        for p in PERCENTILES:
            bc, rc = hdr.percentile_ci_ms(b, p), hdr.percentile_ci_ms(r, p)
            if bc is None or rc is None or bc[1] <= 0:
                continue
            lo = (rc[0] - bc[2]) / bc[2] * 100.0  # the smallest change the data allow
            hi = (rc[2] - bc[0]) / max(bc[0], 1e-9) * 100.0
            rows.append(
                {
                    "scenario": sid,
                    "scope": scope,
                    "percentile": f"p{p:g}",
                    "base_ms": bc[1],
                    "run_ms": rc[1],
                    "base_ci_ms": [bc[0], bc[2]],
                    "run_ci_ms": [rc[0], rc[2]],
                    "base_n": int(b.sum()),
                    "run_n": int(r.sum()),
                    "delta_pct": round((rc[1] - bc[1]) / bc[1] * 100.0, 2),
                    "delta_ci_pct": [round(lo, 2), round(hi, 2)],
                    "regressed": lo > tol,
                }
            )
    return rows


def diff_runs(base: dict[str, Any], run: dict[str, Any], tolerance_pct: float = 10.0) -> DiffReport:
    """What changed from ``base`` to ``run`` (two run documents, v2 or v3)."""
    report = DiffReport(tolerance_pct)
    b_by_id = {s["id"]: s for s in base["scenarios"]}
    r_by_id = {s["id"]: s for s in run["scenarios"]}
    report.unmatched = sorted(set(b_by_id) ^ set(r_by_id))
    for sid, rs in r_by_id.items():
        bs = b_by_id.get(sid)
        was = {c["name"]: c for c in (bs or {}).get("checks", [])}
        for c in rs["checks"]:
            before = was.get(c["name"])
            if c["verdict"] in _BAD and (before is None or before["verdict"] not in _BAD):
                report.new_failures.append(
                    {
                        "scenario": sid,
                        "check": c["name"],
                        "verdict": c["verdict"],
                        "was": None if before is None else before["verdict"],
                        "reason": c["reason"],
                    }
                )
            if (
                before is not None
                and c["unit"] == "s"
                and c["value"] is not None
                and before["value"] is not None
            ):
                delta = c["value"] - before["value"]
                slack = max(before["value"] * tolerance_pct / 100.0, TIMING_SLACK_S)
                report.timings.append(
                    {
                        "scenario": sid,
                        "check": c["name"],
                        "base_s": before["value"],
                        "run_s": c["value"],
                        "delta_s": round(delta, 3),
                        "regressed": delta > slack,
                    }
                )
        if rs["status"] == "errored" and (bs is None or bs["status"] != "errored"):
            report.new_failures.append(
                {
                    "scenario": sid,
                    "check": "(scenario)",
                    "verdict": "ERROR",
                    "was": None if bs is None else (bs["verdict"] or "SKIPPED"),
                    "reason": rs["message"][:300],
                }
            )
        if bs is None:
            continue
        btl, rtl = scenario_timeline(bs), scenario_timeline(rs)
        if btl is not None and rtl is not None:
            report.latency += _latency_rows(sid, btl, rtl, tolerance_pct)
    return report
