"""``python -m gpu_bench info``: what this process can see of torch, CUDA and NVML.

torch and pynvml are imported inside the functions, so importing this module imports
neither.
"""

from __future__ import annotations

import platform
from typing import Any

__all__ = ["info_doc", "nvml_info", "torch_info"]


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


def info_doc() -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch_info(), "nvml": nvml_info()}
