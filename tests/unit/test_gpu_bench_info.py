"""gpu_bench runs as its own process (as in the GPU Job image) and tells what it sees."""

from __future__ import annotations

import json
import subprocess
import sys


def test_info_reports_torch_and_nvml_honestly() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "gpu_bench", "info", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    doc = json.loads(p.stdout)
    assert doc["torch"]["available"] is True  # the dev install carries real torch
    if not doc["torch"]["cuda_available"]:
        assert "CUDA paths were not run" in doc["torch"]["note"]
    if not doc["nvml"]["available"]:
        assert doc["nvml"]["reason"]


def test_gpu_bench_never_imports_kubedrill() -> None:
    code = "import sys, gpu_bench.__main__; print('kubedrill' in sys.modules)"
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert p.stdout.strip() == "False"
