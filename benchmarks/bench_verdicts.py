"""Verdict benchmark (``make bench-verdicts``): a battery of deliberately broken evidence
cases and a healthy control, run for real, written to reports/bench/verdicts.json.

Bars (issue "Verdicts you can trust"): ``false_pass`` = 0 (no broken case is PASS),
``cases`` >= 8 broken cases, ``control_pass`` = 1, and every reason names its figures
(``missing_figures`` = 0). The cases are ``tests/integration/evidence_cases.py``: the
reference service and Locust for real, the sandbox cluster for the watch and scaling cases.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubedrill.sandbox.config import SandboxConfig  # noqa: E402
from kubedrill.sandbox.lifecycle import down, up  # noqa: E402
from tests.integration.evidence_cases import CASES, cluster_target, run_case  # noqa: E402

OUT = ROOT / "reports" / "bench" / "verdicts.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    results = []
    with tempfile.TemporaryDirectory(prefix="kubedrill-bench-verdicts-") as tmp:
        work = Path(tmp)
        sandbox = None
        if any(c.cluster for c in cases):
            cfg = SandboxConfig(name="bench-verdicts", root=work / "sandbox")
            sandbox, _ = up(cfg, lambda line: print(f"sandbox: {line}", file=sys.stderr))
        try:
            for case in cases:
                t0 = time.monotonic()
                cwd = work / case.name
                if case.cluster:
                    assert sandbox is not None
                    ns = case.name.replace("_", "-")[:40]
                    with cluster_target(sandbox.paths.kubeconfig, cwd, ns) as target:
                        r = run_case(case, cwd, target)
                else:
                    r = run_case(case, cwd)
                row = r.summary() | {"seconds": round(time.monotonic() - t0, 1), "ok": r.ok}
                results.append(row)
                flag = "ok " if r.ok else "BAD"
                print(f"{flag} {case.name:32s} {r.verdict:13s} exit {r.returncode}  "
                      f"{row['seconds']:5.1f}s  {case.what}")  # fmt: skip
                for c in row["checks"]:
                    print(f"      {c['verdict']:13s} {c['name']}: {c['reason'][:160]}")
                for m in row["messages"]:
                    print(f"      message: {m[:160]}")
                if row["missing_figures"]:
                    print(f"      missing figures: {row['missing_figures']}")
        finally:
            if sandbox is not None:
                down(SandboxConfig(name="bench-verdicts", root=work / "sandbox").paths, print)
    broken = [r for r in results if r["broken"]]
    control = [r for r in results if not r["broken"]]
    doc = {
        "cases": len(broken),
        "false_pass": sum(1 for r in broken if r["false_pass"]),
        "missing_figures": sum(len(r["missing_figures"]) for r in broken),
        "control_pass": int(bool(control) and all(r["verdict"] == "PASS" for r in control)),
        "all_ok": all(r["ok"] for r in results),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "results"}))
    print(f"wrote {args.out}")
    return 0 if doc["all_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
