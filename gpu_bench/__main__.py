"""``python -m gpu_bench info [--json]``, ``run --suite ... --json OUT`` and ``burn ...``.

``info``: what this process can see of torch, CUDA and NVML (:mod:`gpu_bench.info`).
``run``: the benchmark suites (:mod:`gpu_bench.run`, docs/gpu_bench.md).
``burn``: keep GPUs busy a fraction of the time, and tell the busy ledger
(:mod:`gpu_bench.burn`, docs/gpu-burner.md). A bad flag is one error naming it, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from gpu_bench import burn
from gpu_bench import run as bench_run
from gpu_bench.info import info_doc, nvml_info, torch_info

__all__ = ["main", "nvml_info", "torch_info"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpu_bench")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="what torch, CUDA and NVML this process sees")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    b = sub.add_parser(
        "burn",
        help="keep GPUs busy a fraction of the time and write busy-ledger entries",
        description="Keep GPUs busy a fraction of the time (duty-cycled matmuls on CUDA) "
        "and write busy-ledger entries while doing it.",
    )
    burn.add_arguments(b)
    r = sub.add_parser(
        "run",
        help="benchmark suites (gemm, copy, h2d, inference) with telemetry and a judgement",
    )
    bench_run.add_arguments(r)
    b.set_defaults(parser=b)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "burn":
        return burn.run(args, args.parser)
    if args.command == "run":
        return bench_run.main(args)
    doc = info_doc()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        t, n = doc["torch"], doc["nvml"]
        version = t.get("version", t.get("reason"))
        print(f"torch: {version}; CUDA available: {t.get('cuda_available', False)}")
        print(f"NVML: {'devices: ' + str(len(n['devices'])) if n['available'] else n['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
