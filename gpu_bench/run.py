"""``python -m gpu_bench run --suite gemm,copy,h2d,inference --json OUT``.

Runs the suites on one device (CUDA device 0 when torch sees one, else the CPU, with
small sizes), NVML telemetry around them, and judges the figures against the model's
peaks (:mod:`gpu_bench.peaks`). ``--json -`` prints the result on stdout as one line
``gpu_bench.result {...}`` (what the Kubernetes Job runner looks for in the pod's logs);
a summary goes to stderr. Exit status: 0 the run completed (whatever the verdicts),
1 a suite failed, 2 a bad flag.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from gpu_bench import peaks
from gpu_bench.gemm import run_gemm
from gpu_bench.inference import run_inference
from gpu_bench.memory import run_copy, run_h2d
from gpu_bench.telemetry import Telemetry
from gpu_bench.timing import Bench

__all__ = ["RESULT_MARKER", "SCHEMA", "SUITES", "Sizes", "add_arguments", "main", "run_suites"]

SCHEMA = "gpu_bench.result/1"
RESULT_MARKER = "gpu_bench.result "
SUITES = ("gemm", "copy", "h2d", "inference")


@dataclass(frozen=True, slots=True)
class Sizes:
    square: int
    model_batch: int
    copy_bytes: int
    h2d_bytes: int
    batches: tuple[int, ...]
    warmup: int
    runs: int


SMALL = Sizes(256, 64, 16 * 2**20, 16 * 2**20, (1, 8, 32, 128), 3, 15)
FULL = Sizes(8192, 8192, 2**30, 256 * 2**20, tuple(2**i for i in range(13)), 10, 100)


def _suites(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SUITES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(SUITES)} (got {text!r})"
        )
    return list(dict.fromkeys(names))


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1 (got {text!r})")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", type=_suites, default=list(SUITES), help=",".join(SUITES))
    p.add_argument("--json", metavar="OUT", default=None, help="write the result (- for stdout)")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument(
        "--size",
        choices=("auto", "small", "full"),
        default="auto",
        help="auto: full on CUDA, small on the CPU",
    )
    p.add_argument("--runs", type=_positive, default=None, help="timed runs per case")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs per case")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=_positive, default=None, help="torch CPU threads")
    p.add_argument("--soak-s", type=float, default=0.0, help="bf16 GEMMs before timing (CUDA)")


def _soak(torch: Any, dev: Any, seconds: float, seed: int) -> float:
    """Back-to-back bf16 GEMMs for ``seconds`` so clocks and power settle (notes/gpu.md §2)."""
    gen = torch.Generator(device=dev).manual_seed(seed)
    a = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16, generator=gen)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for _ in range(20):
            torch.mm(a, a)
        torch.cuda.synchronize(dev)
    return round(time.monotonic() - t0, 3)


def run_suites(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = bool(torch.cuda.is_available())
    if args.device == "cuda" and not cuda:
        raise SystemExit("gpu_bench run: --device cuda, but torch sees no CUDA device")
    use_cuda = cuda and args.device != "cpu"
    dev = torch.device("cuda", 0) if use_cuda else torch.device("cpu")
    size = args.size if args.size != "auto" else ("full" if use_cuda else "small")
    sizes = FULL if size == "full" else SMALL
    sizes = replace(
        sizes,
        runs=args.runs or sizes.runs,
        warmup=sizes.warmup if args.warmup is None else args.warmup,
    )
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "device": "cuda" if use_cuda else "cpu",
        "device_name": torch.cuda.get_device_name(dev)
        if use_cuda
        else platform.processor() or platform.machine(),
        "cuda_run": use_cuda,
        "note": None
        if use_cuda
        else "CUDA paths were not run: "
        + ("--device cpu" if cuda else "torch sees no CUDA device")
        + "; CPU figures with small sizes, no GPU peak claims",
        "torch": str(torch.__version__),
        "cuda_build": torch.version.cuda,
        "python": platform.python_version(),
        "size": size,
        "sizes": asdict(sizes),
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "started": time.time(),
    }
    bench = Bench(torch, dev, warmup=sizes.warmup, runs=sizes.runs)
    doc["flush_bytes"] = bench.flush_bytes
    nvml_dev: dict[str, str | int] = {}
    if use_cuda:
        nvml_dev["cuda:0"] = str(torch.cuda.get_device_properties(dev).uuid)
    tel = Telemetry(nvml_dev) if use_cuda else None
    suites: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tel if tel is not None else _null():
        if use_cuda and args.soak_s > 0:
            doc["soak_s"] = _soak(torch, dev, args.soak_s, args.seed)
        for name in args.suite:
            t0 = time.monotonic()
            try:
                suites[name] = _one(name, bench, sizes, args.seed)
            except Exception as e:  # noqa: BLE001 - one suite failing is reported, exit 1
                errors[name] = f"{type(e).__name__}: {e}"
                continue
            suites[name]["wall_s"] = round(time.monotonic() - t0, 3)
    doc["suites"] = suites
    doc["errors"] = errors
    doc["telemetry"] = (
        tel.doc
        if tel is not None
        else {"available": False, "reason": "device: cpu (NVML describes NVIDIA GPUs only)"}
    )
    doc["judgement"] = peaks.judge(doc["device"], doc["device_name"], suites)
    doc["verdict"] = "ERROR" if errors else doc["judgement"]["verdict"]
    doc["ended"] = time.time()
    return doc


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _one(name: str, bench: Bench, s: Sizes, seed: int) -> dict[str, Any]:
    if name == "gemm":
        return run_gemm(bench, square=s.square, model_batch=s.model_batch, seed=seed)
    if name == "copy":
        return run_copy(bench, nbytes=s.copy_bytes, seed=seed)
    if name == "h2d":
        return run_h2d(bench, nbytes=s.h2d_bytes, seed=seed)
    return run_inference(bench, batches=list(s.batches), seed=seed)


def _summary(doc: dict[str, Any]) -> str:
    lines = [f"gpu_bench: device {doc['device']} ({doc['device_name']}); verdict {doc['verdict']}"]
    if doc["note"]:
        lines.append(f"  {doc['note']}")
    for t in doc["judgement"]["tests"]:
        value = "—" if t["value"] is None else f"{t['value']:.4g} {t['unit']}"
        ratio = "" if t["ratio"] is None else f", {t['ratio']:.1%} of peak"
        lines.append(f"  {t['test']}: {value}{ratio}: {t['verdict']} ({t['reason']})")
    for name, err in doc["errors"].items():
        lines.append(f"  suite {name} failed: {err}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    doc = run_suites(args)
    text = json.dumps(doc, indent=1)
    if args.json == "-":
        print(RESULT_MARKER + json.dumps(doc, separators=(",", ":")), flush=True)
    elif args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(_summary(doc), file=sys.stderr if args.json == "-" else sys.stdout, flush=True)
    return 1 if doc["errors"] else 0
