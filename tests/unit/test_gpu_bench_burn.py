"""The GPU burner as its own process: ledger entries while it runs, none after it stops,
one clear error (exit 2) for a bad flag."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kubedrill.refservice.ledger import read_ledger

BURN = [sys.executable, "-m", "gpu_bench", "burn"]


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BURN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(predicate: object, timeout_s: float = 20.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def entries(d: Path) -> list[str]:
    """Entry names (a writer's ``.<name>.*.tmp`` may exist for an instant mid-write)."""
    return sorted(p.name for p in d.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_entries_live_while_burning_and_go_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    args = ["--busy", "0.8", "--duration", "60", "--devices", "0,1"]
    p = start(*args, "--ledger", str(tmp_path), "--cuda", "off", "--json")
    try:
        wait_for(lambda: entries(tmp_path) == ["0", "1"])
        first = json.loads((tmp_path / "0").read_text())
        assert first["busy"] == 0.8
        assert first["writer"] == f"gpu_bench burn pid {p.pid}"
        assert time.time() < first["expires"] <= time.time() + 3.5
        # kubedrill's reader sees exactly this (same format, re-implemented).
        assert read_ledger(tmp_path, ["1"], time.time()).busy == pytest.approx(0.8)
        time.sleep(1.5)
        assert p.poll() is None
        assert entries(tmp_path) == ["0", "1"]
        assert json.loads((tmp_path / "0").read_text())["expires"] > first["expires"]  # refreshed
        p.send_signal(sig)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert list(tmp_path.iterdir()) == []  # no entries, no temporaries left behind
    summary = json.loads(out)
    assert summary["stopped"] == sig.name
    assert summary["ok"] is True
    assert summary["devices"] == ["0", "1"]
    assert summary["cuda"] == {
        "requested": "off",
        "used": False,
        "reason": "--cuda off",
        "period_ms": 100.0,
        "devices": [],
        "nvml_note": None,
    }
    assert summary["ledger"]["writes"] >= 6
    assert summary["ledger"]["removed"] is True
    assert 1.5 < summary["elapsed_s"] < 30


def test_stops_by_itself_at_the_end_of_the_duration(tmp_path: Path) -> None:
    p = subprocess.run(
        [*BURN, "--busy", "1", "--duration", "0.6", "--ledger", str(tmp_path), "--cuda", "off"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert entries(tmp_path) == []
    assert "stopped: duration" in p.stdout
    assert "ledger only (--cuda off)" in p.stdout


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--busy", "1.5", "--duration", "1"], "--busy"),
        (["--busy", "0", "--duration", "1"], "--busy"),
        (["--busy", "lots", "--duration", "1"], "--busy"),
        (["--busy", "0.5", "--duration", "3601"], "--duration"),
        (["--busy", "0.5", "--duration", "nan"], "--duration"),
        (["--busy", "0.5", "--duration", "1", "--devices", "0,../x"], "--devices"),
        (["--busy", "0.5", "--duration", "1", "--devices", "0@me"], "--devices"),
        (["--busy", "0.5", "--duration", "1", "--cuda", "maybe"], "--cuda"),
        (["--busy", "0.5", "--duration", "1", "--period-ms", "1"], "--period-ms"),
        (["--busy", "0.5", "--duration", "1", "--cuda", "off"], "--ledger"),  # nothing to do
        (["--busy", "0.5", "--duration", "1", "--ledger", "/nonexistent/x"], "--ledger"),
        (["--duration", "1", "--ledger", "."], "--busy"),  # required
    ],
)
def test_bad_flag_is_one_error_naming_it(args: list[str], flag: str) -> None:
    p = subprocess.run([*BURN, *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert flag in errors[0]
    assert p.stdout == ""


def test_cuda_on_without_cuda_is_a_clear_error(tmp_path: Path) -> None:
    p = subprocess.run(
        [*BURN, "--busy", "0.5", "--duration", "1", "--ledger", str(tmp_path), "--cuda", "on"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},  # hides any GPU from torch
    )
    assert p.returncode == 2
    assert "argument --cuda: on, but CUDA is not available" in p.stderr
    assert entries(tmp_path) == []


class FakeTorch:
    """Just enough of torch for the CUDA worker: each matmul 'runs' 1 ms at synchronize."""

    float16 = "float16"

    def __init__(self, fail: bool = False) -> None:
        self.pending = 0
        self.fail = fail
        outer = self

        class Stream:
            def __init__(self, device: object) -> None:
                pass

            def synchronize(self) -> None:
                time.sleep(outer.pending * 0.001)
                outer.pending = 0

        class Generator:
            def __init__(self, device: object) -> None:
                pass

            def manual_seed(self, seed: int) -> Generator:
                return self

        class Cuda:
            @staticmethod
            def set_device(device: object) -> None:
                if outer.fail:
                    raise RuntimeError("CUDA error: out of memory")

            @staticmethod
            def get_device_name(device: object) -> str:
                return "Fake H100"

            @staticmethod
            def memory_reserved(device: object) -> int:
                return 96 * 2**20

            @staticmethod
            def stream(s: object) -> contextlib.AbstractContextManager[None]:
                return contextlib.nullcontext()

        Cuda.Stream = Stream  # type: ignore[attr-defined]
        self.cuda = Cuda
        self.Generator = Generator

    def device(self, kind: str, index: int) -> tuple[str, int]:
        return (kind, index)

    def randn(self, *shape: int, **kw: object) -> object:
        return object()

    def empty_like(self, a: object) -> object:
        return object()

    def mm(self, a: object, b: object, out: object) -> None:
        self.pending += 1


def test_cuda_worker_duty_cycle_is_bounded_and_stoppable() -> None:
    from gpu_bench.burn import DeviceResult, _cuda_worker

    stop = threading.Event()
    res = DeviceResult("0")
    t0 = time.monotonic()
    _cuda_worker(FakeTorch(), 0, 0.5, 0.05, t0 + 0.6, stop, res)
    took = time.monotonic() - t0
    assert res.error is None
    assert took < 2.0  # bounded by the deadline
    s = res.summary()
    assert s["name"] == "Fake H100"
    assert s["fb_used_mib"] == 96.0
    assert s["matmuls"] > 0
    assert 0.35 < s["achieved_busy"] < 0.75  # 0.5 asked; sleeps overshoot on a busy host
    # A stop flag ends it at once, whatever the deadline.
    stop.set()
    res2 = DeviceResult("0")
    t0 = time.monotonic()
    _cuda_worker(FakeTorch(), 0, 1.0, 0.05, t0 + 60, stop, res2)
    assert time.monotonic() - t0 < 1.0
    bad = DeviceResult("1")
    _cuda_worker(FakeTorch(fail=True), 1, 0.5, 0.05, time.monotonic() + 5, threading.Event(), bad)
    assert bad.error == "RuntimeError: CUDA error: out of memory"
