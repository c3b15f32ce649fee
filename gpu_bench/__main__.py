"""``python -m gpu_bench info [--json]``: what this process can see of torch, CUDA and NVML."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any


def nvml_info() -> dict[str, Any]:
    try:
        import pynvml
    except ImportError as e:
        return {"available": False, "reason": f"nvidia-ml-py not installed ({e})"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return {"available": False, "reason": f"NVML could not initialise: {e}"}
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            devices.append(
                {"index": i, "name": pynvml.nvmlDeviceGetName(h), "memory_total_bytes": mem.total}
            )
        return {
            "available": True,
            "driver": pynvml.nvmlSystemGetDriverVersion(),
            "devices": devices,
        }
    finally:
        pynvml.nvmlShutdown()


def torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError as e:
        return {"available": False, "reason": f"torch not installed ({e})"}
    cuda = torch.cuda.is_available()
    out: dict[str, Any] = {
        "available": True,
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
    }
    if not cuda:
        out["note"] = "no CUDA device visible: CUDA paths were not run, CPU only"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_bench")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="what torch, CUDA and NVML this process sees")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    if args.command == "info":
        doc = {"python": platform.python_version(), "torch": torch_info(), "nvml": nvml_info()}
        if args.json:
            print(json.dumps(doc, indent=1))
        else:
            t, n = doc["torch"], doc["nvml"]
            version = t.get("version", t.get("reason"))
            print(f"torch: {version}; CUDA available: {t.get('cuda_available', False)}")
            print(
                f"NVML: {'devices: ' + str(len(n['devices'])) if n['available'] else n['reason']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
