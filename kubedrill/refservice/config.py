"""Command-line flags of ``python -m kubedrill.refservice``, parsed into one frozen config.

A bad flag is one error that names the flag and what was expected (exit status 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kubedrill.refservice.faults import Faults, ReadyFlap, Stall

EXTRA_ARGS_ENV = "KUBEDRILL_REFSERVICE_ARGS"

__all__ = ["EXTRA_ARGS_ENV", "Mode", "ServiceConfig", "build_parser", "parse_args"]

Mode = Literal["emulated", "torch"]
Device = Literal["cpu", "cuda", "auto"]

DEFAULT_SLOTS = 4
DEFAULT_SERVICE_TIME_MS = 10.0
DEFAULT_MAX_BATCH = 32
DEFAULT_BATCH_TIMEOUT_MS = 5.0
DEFAULT_FB_USED_MIB = 1024.0
"""Device memory an emulated pod claims in its own ledger entries (a CUDA context plus a
small model); DCGM-named metrics report it as ``DCGM_FI_DEV_FB_USED``."""


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    mode: Mode = "emulated"
    host: str = "127.0.0.1"
    port: int = 8000
    seed: int = 0
    max_queue: int = 1000
    startup_delay_s: float = 0.0
    drain_timeout_s: float = 20.0
    # emulated mode
    slots: int = DEFAULT_SLOTS
    service_time_s: float = DEFAULT_SERVICE_TIME_MS / 1000.0
    service_time_jitter_s: float = 0.0
    busy_ledger: Path | None = None
    busy_poll_s: float = 0.2
    fb_used_mib: float = DEFAULT_FB_USED_MIB
    # torch mode
    device: Device = "auto"
    max_batch: int = DEFAULT_MAX_BATCH
    batch_timeout_s: float = DEFAULT_BATCH_TIMEOUT_MS / 1000.0
    # fault knobs at start (changeable at runtime through /admin/faults, unless locked)
    faults: Faults = field(default_factory=Faults)
    runtime_faults: bool = True
    access_log: bool = False
    timeline_spool: Path | None = None


def _number(
    lo: float, hi: float, *, integer: bool = False, lo_open: bool = False
) -> Callable[[str], float]:
    kind = "an integer" if integer else "a number"
    bounds = f"{'>' if lo_open else '≥'} {lo:g}" + ("" if math.isinf(hi) else f" and ≤ {hi:g}")
    expected = f"{kind} {bounds}"

    def convert(text: str) -> float:
        try:
            v = float(int(text)) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})") from None
        if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
            raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})")
        return v

    convert.__name__ = kind
    return convert


def _int(lo: int, hi: int) -> Callable[[str], int]:
    inner = _number(lo, hi, integer=True)

    def convert(text: str) -> int:
        return int(inner(text))

    convert.__name__ = "integer"
    return convert


INF = math.inf


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kubedrill.refservice",
        description="kubedrill's reference GPU inference service (emulated or torch).",
    )
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    g.add_argument("--port", type=_int(0, 65535), default=8000, help="0 picks a free port")
    g.add_argument("--mode", choices=("emulated", "torch"), default="emulated")
    g.add_argument("--seed", type=_int(0, 2**32 - 1), default=0, help="seeds jitter, errors, model")
    g.add_argument(
        "--max-queue",
        type=_int(0, 1_000_000),
        default=1000,
        help="requests allowed to wait for capacity; beyond it: 503 'queue full'",
    )
    g.add_argument(
        "--startup-delay-s",
        type=_number(0, 3600),
        default=0.0,
        help="model load time before /ready turns 200",
    )
    g.add_argument(
        "--drain-timeout-s",
        type=_number(0, 3600),
        default=20.0,
        help="on SIGTERM, how long to let in-flight requests finish",
    )
    g.add_argument("--access-log", action="store_true", help="log every request to stderr")
    g.add_argument(
        "--timeline-spool",
        type=Path,
        default=None,
        metavar="PATH",
        help="append lifecycle and fault-change notes to a kubedrill timeline spool file",
    )
    e = p.add_argument_group("emulated mode")
    e.add_argument(
        "--slots",
        type=_int(1, 100_000),
        default=None,
        help=f"concurrent requests served (default {DEFAULT_SLOTS})",
    )
    e.add_argument(
        "--service-time-ms",
        type=_number(0, 600_000),
        default=None,
        help=f"time to serve one request (default {DEFAULT_SERVICE_TIME_MS:g})",
    )
    e.add_argument(
        "--service-time-jitter-ms",
        type=_number(0, 600_000),
        default=None,
        help="uniform ± jitter on the service time (seeded)",
    )
    b = p.add_argument_group("busy ledger (stretches service time in emulated mode)")
    b.add_argument(
        "--busy-ledger",
        type=Path,
        default=None,
        metavar="PATH",
        help="file, or directory of per-device entries shared with the device's other users",
    )
    b.add_argument(
        "--busy-poll-ms",
        type=_number(1, 60_000),
        default=200.0,
        help="how often to re-read the busy ledger and publish this pod's entry (default 200)",
    )
    b.add_argument(
        "--fb-used-mib",
        type=_number(0, 1_048_576),
        default=None,
        help=f"emulated: device memory claimed in this pod's own ledger entries "
        f"(default {DEFAULT_FB_USED_MIB:g})",
    )
    t = p.add_argument_group("torch mode")
    t.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default=None,
        help="auto (default): cuda when torch sees a GPU, else cpu",
    )
    t.add_argument(
        "--max-batch",
        type=_int(1, 65_536),
        default=None,
        help=f"rows per forward pass (default {DEFAULT_MAX_BATCH})",
    )
    t.add_argument(
        "--batch-timeout-ms",
        type=_number(0, 60_000),
        default=None,
        help=f"wait for more rows after the first (default {DEFAULT_BATCH_TIMEOUT_MS:g})",
    )
    f = p.add_argument_group("fault knobs (also settable at runtime: POST /admin/faults)")
    f.add_argument(
        "--runtime-faults",
        choices=("on", "off"),
        default="on",
        help="off: /admin/faults refuses changes (403), as a locked-down build would",
    )
    f.add_argument(
        "--added-latency-ms",
        type=_number(0, 600_000),
        default=0.0,
        help="extra latency on every request (does not hold a slot)",
    )
    f.add_argument(
        "--error-ratio",
        type=_number(0, 1),
        default=0.0,
        help="fraction of requests answered 500 (seeded)",
    )
    seconds = _number(0, 86_400, lo_open=True)
    f.add_argument("--stall-every-s", type=seconds, help="stall period, from server start")
    f.add_argument("--stall-for-s", type=seconds, help="stall length: nothing is served")
    f.add_argument("--ready-flap-period-s", type=seconds, help="readiness flap period")
    f.add_argument("--ready-flap-down-s", type=seconds, help="/ready is 503 this long per period")
    return p


def _pair(
    p: argparse.ArgumentParser, a: tuple[str, float | None], b: tuple[str, float | None]
) -> tuple[float, float] | None:
    (a_flag, a_val), (b_flag, b_val) = a, b
    if a_val is None and b_val is None:
        return None
    if a_val is None or b_val is None:
        missing = a_flag if a_val is None else b_flag
        given = b_flag if a_val is None else a_flag
        p.error(f"argument {missing}: required together with {given}")
    if b_val >= a_val:
        p.error(f"argument {b_flag}: expected a number below {a_flag} ({a_val:g}) (got {b_val:g})")
    return a_val, b_val


def _mode_only(p: argparse.ArgumentParser, mode: str, flags: dict[str, object], owner: str) -> None:
    if mode != owner:
        for flag, value in flags.items():
            if value is not None:
                p.error(f"argument {flag}: applies to --mode {owner} only")


def parse_args(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> ServiceConfig:
    """Parse and validate; on a bad flag, print one error naming it and exit 2.

    Flags in ``$KUBEDRILL_REFSERVICE_ARGS`` (shell words) are appended to the command line's,
    so the last word wins: a fault reaches services that others start (a fixture, the
    sandbox's pod runner) without touching how they start them.
    """
    p = build_parser()
    env = os.environ if env is None else env
    extra = shlex.split(env.get(EXTRA_ARGS_ENV, ""))
    ns = p.parse_args([*(sys.argv[1:] if argv is None else argv), *extra])
    mode: Mode = ns.mode
    _mode_only(
        p,
        mode,
        {
            "--slots": ns.slots,
            "--service-time-ms": ns.service_time_ms,
            "--service-time-jitter-ms": ns.service_time_jitter_ms,
            "--fb-used-mib": ns.fb_used_mib,
        },
        "emulated",
    )
    _mode_only(
        p,
        mode,
        {
            "--device": ns.device,
            "--max-batch": ns.max_batch,
            "--batch-timeout-ms": ns.batch_timeout_ms,
        },
        "torch",
    )
    if mode == "torch" and importlib.util.find_spec("torch") is None:
        p.error(
            "argument --mode: torch mode needs the 'torch' package "
            "(install kubedrill[gpu]), or use --mode emulated"
        )
    service_ms = DEFAULT_SERVICE_TIME_MS if ns.service_time_ms is None else ns.service_time_ms
    jitter_ms = 0.0 if ns.service_time_jitter_ms is None else ns.service_time_jitter_ms
    if jitter_ms > service_ms:
        p.error(
            f"argument --service-time-jitter-ms: expected at most --service-time-ms "
            f"({service_ms:g}) (got {jitter_ms:g})"
        )
    spool = ns.timeline_spool
    if spool is not None and not spool.parent.is_dir():
        p.error(
            f"argument --timeline-spool: expected a file in an existing directory (got {spool})"
        )
    stall = _pair(p, ("--stall-every-s", ns.stall_every_s), ("--stall-for-s", ns.stall_for_s))
    flap = _pair(
        p,
        ("--ready-flap-period-s", ns.ready_flap_period_s),
        ("--ready-flap-down-s", ns.ready_flap_down_s),
    )
    faults = Faults(
        added_latency_ms=ns.added_latency_ms,
        error_ratio=ns.error_ratio,
        stall=None if stall is None else Stall(*stall),
        ready_flap=None if flap is None else ReadyFlap(*flap),
    )
    return ServiceConfig(
        mode=mode,
        host=ns.host,
        port=ns.port,
        seed=ns.seed,
        max_queue=ns.max_queue,
        startup_delay_s=ns.startup_delay_s,
        drain_timeout_s=ns.drain_timeout_s,
        slots=DEFAULT_SLOTS if ns.slots is None else ns.slots,
        service_time_s=service_ms / 1000.0,
        service_time_jitter_s=jitter_ms / 1000.0,
        busy_ledger=ns.busy_ledger,
        busy_poll_s=ns.busy_poll_ms / 1000.0,
        fb_used_mib=DEFAULT_FB_USED_MIB if ns.fb_used_mib is None else ns.fb_used_mib,
        device=ns.device or "auto",
        max_batch=DEFAULT_MAX_BATCH if ns.max_batch is None else ns.max_batch,
        batch_timeout_s=(
            DEFAULT_BATCH_TIMEOUT_MS if ns.batch_timeout_ms is None else ns.batch_timeout_ms
        )
        / 1000.0,
        faults=faults,
        runtime_faults=ns.runtime_faults == "on",
        access_log=ns.access_log,
        timeline_spool=ns.timeline_spool,
    )
