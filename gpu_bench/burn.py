"""``python -m gpu_bench burn``: keep GPUs busy a fraction of the time, and say so.

::

    python -m gpu_bench burn --busy 0.8 --duration 30 [--devices 0,1] [--ledger DIR]
                             [--cuda auto|on|off] [--period-ms 100] [--json]

With ``--ledger DIR`` the burner writes ``DIR/<device>`` busy-ledger entries
(``{"busy": 0.8, "expires": now + 3, "writer": "gpu_bench burn pid N"}``), refreshed
every 0.5 s and removed when it stops: at the end of ``--duration``, on SIGTERM or
SIGINT, or on an error. Emulated reference-service pods on those devices slow down by
1/(1 - busy) (docs/reference-service.md).

When torch sees CUDA and ``--cuda`` allows it, the burner also really keeps each device
busy: a duty-cycled loop of fp16 matrix multiplications that computes for ``busy *
period`` and sleeps for the rest of every ``--period-ms``. Every loop is bounded by the
deadline and checks the stop flag at least every ~5 ms of GPU work. Level control: where
NVML reads the device, every 0.5 s its utilisation corrects the busy share of the period
(:func:`next_duty`), so NVML utilisation, not the open-loop duty cycle, meets ``--busy``;
the summary gives ``level_error_pts`` (|mean utilisation - 100·busy|). Never run on a real
GPU in this repository's CI.

torch and pynvml are imported only when CUDA may be used (never with ``--cuda off``).
Exit status: 0 done (the duration ran out or a signal stopped it), 1 a device or the
ledger failed, 2 a bad flag.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from gpu_bench.ledger import is_safe_device, remove_entry, write_entry
from gpu_bench.nvml import Nvml, open_nvml

__all__ = ["MAX_DURATION_S", "add_arguments", "next_duty", "run"]

MAX_DURATION_S = 3600.0
REFRESH_S = 0.5
TTL_S = 3.0
_MATMUL_N = 4096
_CHUNK_TARGET_S = 0.005  # GPU work between two looks at the clock and the stop flag
_MAX_CHUNK = 1000
_JOIN_TIMEOUT_S = 5.0


def _bounded(lo: float, hi: float, *, lo_open: bool, what: str) -> Any:
    expected = f"a number {'>' if lo_open else '≥'} {lo:g} and ≤ {hi:g} ({what})"

    def convert(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})") from None
        if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
            raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})")
        return v

    return convert


def _devices(text: str) -> list[str]:
    out: list[str] = []
    for d in (part.strip() for part in text.split(",")):
        if not is_safe_device(d):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated device ids made of A-Z a-z 0-9 _ . - (got {text!r})"
            )
        if d not in out:
            out.append(d)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--busy",
        type=_bounded(0, 1, lo_open=True, what="the fraction of time to keep each device busy"),
        required=True,
        help="fraction of time each device is kept busy, in (0, 1]",
    )
    p.add_argument(
        "--duration",
        type=_bounded(0, MAX_DURATION_S, lo_open=True, what="seconds"),
        required=True,
        help=f"seconds to run (at most {MAX_DURATION_S:g})",
    )
    p.add_argument(
        "--devices",
        type=_devices,
        default=None,
        help="comma-separated device ids (default: every CUDA device, or 0 without CUDA)",
    )
    p.add_argument(
        "--ledger",
        type=Path,
        default=None,
        metavar="DIR",
        help="busy-ledger directory: write DIR/<device> while burning",
    )
    p.add_argument(
        "--cuda",
        choices=("auto", "on", "off"),
        default="auto",
        help="auto (default): burn on CUDA when torch sees it; on: fail without it; "
        "off: ledger entries only",
    )
    p.add_argument(
        "--period-ms",
        type=_bounded(10, 10_000, lo_open=False, what="milliseconds"),
        default=100.0,
        help="duty-cycle period on CUDA: busy for busy*period, then idle (default 100)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


@dataclass
class DeviceResult:
    device: str
    name: str = ""
    busy_s: float = 0.0
    elapsed_s: float = 0.0
    matmuls: int = 0
    matmul_ms: float | None = None
    fb_used_mib: float | None = None
    nvml_util: list[int] = field(default_factory=list)
    error: str | None = None
    target: float = 0.0  # --busy
    duty: float = -1.0  # busy share of each period; set from --busy, then by level control

    def summary(self) -> dict[str, Any]:
        doc = asdict(self)
        samples = doc.pop("nvml_util")
        doc["achieved_busy"] = round(self.busy_s / self.elapsed_s, 4) if self.elapsed_s else None
        # The first sample covers start-up and calibration: left out of the mean.
        steady = samples[1:] or samples
        doc["nvml_util_percent_mean"] = round(sum(steady) / len(steady), 1) if steady else None
        doc["nvml_util_samples"] = len(samples)
        doc["level_error_pts"] = (
            None
            if doc["nvml_util_percent_mean"] is None
            else round(abs(doc["nvml_util_percent_mean"] - 100.0 * self.target), 1)
        )
        return doc


def _probe_cuda(mode: str) -> tuple[Any, str | None]:
    """(torch, None) when CUDA may and can be used, else (None, why not)."""
    if mode == "off":
        return None, "--cuda off"
    try:
        import torch
    except ImportError as e:
        return None, f"torch not installed ({e})"
    if not torch.cuda.is_available():
        return None, "torch sees no CUDA device"
    return torch, None


def _cuda_worker(
    torch: Any,
    index: int,
    busy: float,
    period_s: float,
    deadline: float,
    stop: threading.Event,
    res: DeviceResult,
) -> None:
    """Compute for busy*period, idle for the rest, every period, until stop or deadline."""
    try:
        dev = torch.device("cuda", index)
        torch.cuda.set_device(dev)
        res.name = str(torch.cuda.get_device_name(dev))
        gen = torch.Generator(device=dev).manual_seed(index)
        n = _MATMUL_N
        a = torch.randn(n, n, device=dev, dtype=torch.float16, generator=gen)
        b = torch.randn(n, n, device=dev, dtype=torch.float16, generator=gen)
        c = torch.empty_like(a)
        stream = torch.cuda.Stream(device=dev)
        with torch.cuda.stream(stream):
            torch.mm(a, b, out=c)  # warm up (cuBLAS handle, kernel selection)
            stream.synchronize()
            t0 = time.perf_counter()
            for _ in range(3):
                torch.mm(a, b, out=c)
            stream.synchronize()
            per = max((time.perf_counter() - t0) / 3, 1e-6)
            chunk = max(1, min(_MAX_CHUNK, int(_CHUNK_TARGET_S / per)))
            res.matmul_ms = round(per * 1000.0, 4)
            res.fb_used_mib = round(torch.cuda.memory_reserved(dev) / 2**20, 1)
            if res.duty < 0:
                res.duty = busy
            res.target = busy
            started = time.monotonic()
            while not stop.is_set() and (cycle := time.monotonic()) < deadline:
                end = min(cycle + res.duty * period_s, deadline)  # duty: level control
                now = cycle
                while now < end and not stop.is_set():
                    for _ in range(chunk):
                        torch.mm(a, b, out=c)
                    stream.synchronize()
                    res.matmuls += chunk
                    now = time.monotonic()
                res.busy_s += now - cycle
                idle = min(cycle + period_s, deadline) - now
                if idle > 0:
                    stop.wait(idle)
            res.elapsed_s = time.monotonic() - started
    except Exception as e:  # noqa: BLE001 - reported in the summary (exit 1), never hangs
        res.error = f"{type(e).__name__}: {e}"


class _Nvml:
    """NVML utilisation of the burned devices (our adapter, :mod:`gpu_bench.nvml`), for the
    summary and for the level control (best effort: without it the duty cycle is open loop)."""

    def __init__(self, torch: Any, indexes: list[int], nvml: Nvml | None = None) -> None:
        self.note: str | None = None
        self._nvml: Nvml | None = None
        self._handles: dict[int, Any] = {}
        try:
            if nvml is None:
                nvml, why = open_nvml()
                if nvml is None:
                    raise RuntimeError(why)
            self._nvml = nvml
            for i in indexes:
                uuid = str(torch.cuda.get_device_properties(i).uuid)
                self._handles[i] = nvml.handle(uuid=uuid)
        except Exception as e:  # noqa: BLE001 - telemetry is optional
            self.note = f"no NVML utilisation: {type(e).__name__}: {e}"
            self.close()

    def sample(self, results: dict[int, DeviceResult], target: float) -> None:
        """One utilisation reading per device, and the next duty cycle from it."""
        if self._nvml is None:
            return
        for i, h in self._handles.items():
            try:
                util = self._nvml.read(h).util_gpu_pct
            except Exception as e:  # noqa: BLE001 - telemetry is optional
                self.note = f"NVML sample failed: {e}"
                continue
            if util is None:
                continue
            r = results[i]
            r.nvml_util.append(int(util))
            if len(r.nvml_util) > 1:  # the first reading covers start-up and calibration
                r.duty = next_duty(r.duty, target, util)

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):  # shutting down optional telemetry
                self._nvml.close()
            self._nvml = None


def next_duty(duty: float, target: float, util_pct: float, gain: float = 0.5) -> float:
    """Level control: move the busy share of each period by ``gain`` times the error
    between the asked level and NVML's utilisation (percent of time a kernel ran), so
    launch gaps and synchronisation do not leave the device below (or above) the level."""
    if target >= 1.0:
        return 1.0
    error = target - util_pct / 100.0
    return min(1.0, max(0.02, duty + gain * error))


@dataclass
class _Ledger:
    directory: Path | None
    writer: str
    written: set[str] = field(default_factory=set)
    writes: int = 0
    errors: int = 0
    last_error: str | None = None

    def write(self, devices: list[str], busy: float, fb: dict[str, float | None]) -> None:
        if self.directory is None:
            return
        expires = time.time() + TTL_S
        for d in devices:
            try:
                write_entry(
                    self.directory / d,
                    busy,
                    expires=expires,
                    writer=self.writer,
                    fb_used_mib=fb.get(d),
                )
            except OSError as e:
                self.errors += 1
                self.last_error = f"{d}: {e}"
            else:
                self.writes += 1
                self.written.add(d)

    def remove(self, devices: list[str] | set[str]) -> bool:
        ok = True
        if self.directory is None:
            return ok
        for d in sorted(devices):
            try:
                remove_entry(self.directory / d)
            except OSError as e:
                ok = False
                self.last_error = f"{d}: cannot remove: {e}"
            self.written.discard(d)
        return ok


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Validate what needs the machine, burn, clean up, print the summary."""
    ledger_dir: Path | None = args.ledger
    if ledger_dir is not None:
        if not ledger_dir.is_dir():
            parser.error(f"argument --ledger: expected an existing directory (got {ledger_dir})")
        if not os.access(ledger_dir, os.W_OK | os.X_OK):
            parser.error(f"argument --ledger: directory is not writable (got {ledger_dir})")
    torch, why_not = _probe_cuda(args.cuda)
    if args.cuda == "on" and torch is None:
        parser.error(f"argument --cuda: on, but CUDA is not available: {why_not}")
    devices: list[str]
    if torch is not None:
        count = int(torch.cuda.device_count())
        devices = args.devices or [str(i) for i in range(count)]
        bad = [d for d in devices if not d.isdigit() or int(d) >= count]
        if bad:
            parser.error(
                f"argument --devices: CUDA device indexes are 0..{count - 1} here (got {bad[0]!r})"
            )
    else:
        devices = args.devices or ["0"]
        if ledger_dir is None:
            parser.error(
                f"argument --ledger: required when CUDA is not used ({why_not}): "
                "without it nothing would be burned"
            )
    return _burn(args, torch, why_not, devices, ledger_dir)


def _burn(
    args: argparse.Namespace,
    torch: Any,
    why_not: str | None,
    devices: list[str],
    ledger_dir: Path | None,
) -> int:
    pid = os.getpid()
    ledger = _Ledger(ledger_dir, f"gpu_bench burn pid {pid}")
    stop = threading.Event()
    stopped_by: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped_by.append(signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    t0 = time.monotonic()
    deadline = t0 + args.duration
    results: dict[int, DeviceResult] = {}
    threads: list[threading.Thread] = []
    nvml: _Nvml | None = None
    removed = True
    try:
        if torch is not None:
            for d in devices:
                i = int(d)
                results[i] = DeviceResult(d)
                th = threading.Thread(
                    target=_cuda_worker,
                    args=(torch, i, args.busy, args.period_ms / 1000.0, deadline, stop, results[i]),
                    name=f"burn-cuda{i}",
                    daemon=True,
                )
                th.start()
                threads.append(th)
            nvml = _Nvml(torch, list(results))
        active = list(devices)
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            failed = [r.device for r in results.values() if r.error and r.device in active]
            if failed:  # a device that stopped burning must not claim to be busy
                removed &= ledger.remove(failed)
                active = [d for d in active if d not in failed]
                if not active:
                    break
            fb = {r.device: r.fb_used_mib for r in results.values()}
            ledger.write(active, args.busy, fb)
            if nvml is not None:
                nvml.sample(results, args.busy)
            stop.wait(min(REFRESH_S, left))
    finally:
        stop.set()
        removed &= ledger.remove(set(devices) | ledger.written)
        for th in threads:
            th.join(_JOIN_TIMEOUT_S)
        if nvml is not None:
            nvml.close()
        for s, h in old.items():
            signal.signal(s, h)
    for th, r in zip(threads, results.values(), strict=True):
        if th.is_alive() and r.error is None:
            r.error = f"did not stop within {_JOIN_TIMEOUT_S:g}s"
    elapsed = time.monotonic() - t0
    failed_devices = [r.device for r in results.values() if r.error]
    ok = not failed_devices and ledger.errors == 0 and removed
    if stopped_by:
        stopped = stopped_by[0]
    elif failed_devices and len(failed_devices) == len(results):
        stopped = "error"
    else:
        stopped = "duration"
    summary: dict[str, Any] = {
        "command": "burn",
        "ok": ok,
        "pid": pid,
        "busy": args.busy,
        "duration_s": args.duration,
        "elapsed_s": round(elapsed, 3),
        "stopped": stopped,
        "devices": devices,
        "ledger": None
        if ledger_dir is None
        else {
            "dir": str(ledger_dir),
            "writer": ledger.writer,
            "writes": ledger.writes,
            "write_errors": ledger.errors,
            "last_error": ledger.last_error,
            "removed": removed,
        },
        "cuda": {
            "requested": args.cuda,
            "used": torch is not None,
            "reason": why_not,
            "period_ms": args.period_ms,
            "devices": [r.summary() for r in results.values()],
            "nvml_note": None if nvml is None else nvml.note,
        },
    }
    if args.json:
        print(json.dumps(summary, indent=1), flush=True)
    else:
        _print_text(summary)
    return 0 if ok else 1


def _print_text(s: dict[str, Any]) -> None:
    cuda = s["cuda"]
    how = "on CUDA" if cuda["used"] else f"ledger only ({cuda['reason']})"
    print(
        f"burned devices {','.join(s['devices'])} at busy {s['busy']:g} {how} for "
        f"{s['elapsed_s']:.1f}s; stopped: {s['stopped']}"
    )
    for d in cuda["devices"]:
        line = f"  cuda:{d['device']} {d['name']}: achieved busy {d['achieved_busy']}"
        if d["nvml_util_percent_mean"] is not None:
            line += f", NVML utilisation {d['nvml_util_percent_mean']}%"
        if d["error"]:
            line += f", error: {d['error']}"
        print(line)
    if s["ledger"] is not None:
        led = s["ledger"]
        print(
            f"  ledger {led['dir']}: {led['writes']} writes, {led['write_errors']} errors, "
            f"entries removed: {led['removed']}"
        )
