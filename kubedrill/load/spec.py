"""What load to run, validated once at the edge; and the Locust command line for it.

A :class:`LoadSpec` names its problems by the ``kubedrill load`` flag (a
:class:`~kubedrill.core.errors.ConfigError`, exit 2), so the CLI and scenarios share one check.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import loadtests
from kubedrill.core.errors import ConfigError
from loadtests.shapes import RateShape, ShapeError, make_shape

__all__ = ["LOADTESTS_DIR", "REFERENCE_LOCUSTFILE", "LoadSpec"]

LOADTESTS_DIR = Path(next(iter(loadtests.__path__))).resolve()  # a namespace package too
REFERENCE_LOCUSTFILE = LOADTESTS_DIR / "reference.py"
RECORD_PLUGIN = LOADTESTS_DIR / "kubedrill_record.py"
MAX_WORKERS = 256

Mode = Literal["open", "closed", "shape"]


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One load run. Set ``rate`` for the open model, ``users`` for Locust's closed model,
    or neither with a ``locustfile`` whose ``LoadTestShape`` drives the user count."""

    url: str
    duration: float
    rate: float | None = None
    users: int | None = None
    spawn_rate: float | None = None
    shape: str = "constant"
    shape_args: Mapping[str, float] = field(default_factory=dict)
    locustfile: Path | None = None
    workers: int = 1
    #: > 0: run only a Locust master here and wait for this many ``--worker`` processes
    #: started elsewhere (``locust -f … --worker --master-host HOST``); ``workers`` is unused.
    remote_workers: int = 0
    master_bind: str = "*:5557"
    window_s: float = 1.0
    max_inflight: int = 1000
    request_timeout_s: float = 10.0
    user_rps: float = 0.0
    startup_timeout_s: float = 60.0
    hard_timeout: float | None = None  # default: startup + duration + drain + 15 s
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------ validation
    def _validate(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("--url", "", "an http(s) URL such as http://127.0.0.1:8000", self.url)
        _positive("--duration", self.duration)
        if self.rate is not None and self.users is not None:
            raise ConfigError("--rate", "", "either --rate (open model) or --users, not both")
        if self.rate is None and self.users is None and self.locustfile is None:
            raise ConfigError(
                "--rate", "", "a rate (open model), or --users, or a --locustfile with a shape"
            )
        if self.rate is not None:
            _positive("--rate", self.rate)
        if self.users is not None and not 1 <= self.users <= 1_000_000:
            raise ConfigError("--users", "", "an integer from 1 to 1000000", self.users)
        if self.spawn_rate is not None:
            _positive("--spawn-rate", self.spawn_rate)
        if self.shape != "constant" and self.rate is None:
            raise ConfigError("--shape", "", "--rate as well (shapes shape the arrival rate)")
        if self.shape_args and self.rate is None:
            raise ConfigError("--shape-args", "", "--rate and --shape as well")
        self.rate_shape()
        if self.locustfile is not None and not self.locustfile.is_file():
            raise ConfigError("--locustfile", "", "an existing locustfile", str(self.locustfile))
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError("--workers", "", f"an integer from 1 to {MAX_WORKERS}", self.workers)
        if not 0 <= self.remote_workers <= MAX_WORKERS:
            raise ConfigError(
                "--remote-workers", "", f"an integer from 0 to {MAX_WORKERS}", self.remote_workers
            )
        host, sep, port = self.master_bind.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("--master-bind", "", "HOST:PORT such as *:5557", self.master_bind)
        if not 0 < self.window_s <= 3600:
            raise ConfigError("--window", "", "a number of seconds in (0, 3600]", self.window_s)
        if self.max_inflight < 1:
            raise ConfigError("--max-inflight", "", "an integer ≥ 1", self.max_inflight)
        _positive("--timeout", self.request_timeout_s)
        if self.hard_timeout is not None:
            _positive("--hard-timeout", self.hard_timeout)
        if not (math.isfinite(self.user_rps) and self.user_rps >= 0):
            raise ConfigError("--user-rps", "", "a number ≥ 0", self.user_rps)

    def rate_shape(self) -> RateShape | None:
        """The open model's rate shape (None in the closed model)."""
        if self.rate is None:
            return None
        try:
            return make_shape(self.shape, self.rate, self.duration, self.shape_args)
        except ShapeError as e:
            flag, _, key = e.arg.partition(".")
            raise ConfigError(f"--{flag}", key, e.expected, e.got) from e

    # ---------------------------------------------------------------- derived
    def planned_sends(self) -> int:
        """Sends the open model's rate shape asks for over the duration (0 in the closed
        model, where the count is not planned): the integral of the rate, in 10 ms steps."""
        shape = self.rate_shape()
        if shape is None:
            return 0
        dt = 0.01
        steps = int(self.duration / dt)
        return round(sum(shape.rate((i + 0.5) * dt) for i in range(steps)) * dt)

    @property
    def mode(self) -> Mode:
        if self.rate is not None:
            return "open"
        return "closed" if self.users is not None else "shape"

    @property
    def worker_count(self) -> int:
        """Locust worker processes: the open model runs one scheduler in each."""
        return self.remote_workers or self.workers

    @property
    def drain_s(self) -> float:
        """After the schedule ends, how long in-flight requests may take."""
        return self.request_timeout_s + 2.0

    @property
    def hard_timeout_s(self) -> float:
        """Past this many seconds from launch, the runner kills the Locust processes."""
        if self.hard_timeout is not None:
            return self.hard_timeout
        return self.startup_timeout_s + self.duration + self.drain_s + 15.0

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "mode": self.mode,
            "duration_s": self.duration,
            "rate": self.rate,
            "users": self.users,
            "shape": (s.describe() if (s := self.rate_shape()) else None),
            "locustfile": str(self.locustfile or REFERENCE_LOCUSTFILE),
            "workers": self.worker_count,
            "remote_workers": self.remote_workers,
            "window_s": self.window_s,
            "max_inflight": self.max_inflight,
            "request_timeout_s": self.request_timeout_s,
        }

    def command(self, spool: Path, python: str = sys.executable) -> list[str]:
        """``python -m locust …`` for this spec, windows appended to ``spool``."""
        locustfile = self.locustfile or REFERENCE_LOCUSTFILE
        files = f"{RECORD_PLUGIN},{locustfile}" if self.locustfile else str(locustfile)
        cmd = [python, "-m", "locust", "-f", files, "--headless", "--host", self.url,
               "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "0",
               "--kd-duration", f"{self.duration:g}", "--kd-window", f"{self.window_s:g}",
               "--kd-timeout", f"{self.request_timeout_s:g}", "--kd-spool", str(spool),
               "--kd-max-inflight", str(self.max_inflight)]  # fmt: skip
        if self.remote_workers:
            host, _, port = self.master_bind.rpartition(":")
            cmd += ["--master", "--expect-workers", str(self.remote_workers),
                    "--expect-workers-max-wait", f"{math.ceil(self.startup_timeout_s)}",
                    "--master-bind-host", host, "--master-bind-port", port]  # fmt: skip
        elif self.workers > 1:
            cmd += ["--processes", str(self.workers)]
        if self.mode == "open":
            assert self.rate is not None
            args = ",".join(f"{k}={v:g}" for k, v in self.shape_args.items())
            n = str(self.worker_count)
            cmd += ["-u", n, "-r", n,
                    "--kd-rate", f"{self.rate:g}", "--kd-shape", self.shape,
                    "--run-time", f"{math.ceil(self.duration + self.drain_s + 5)}s"]  # fmt: skip
            if args:
                cmd += ["--kd-shape-args", args]
        elif self.mode == "closed":
            assert self.users is not None
            spawn = self.spawn_rate if self.spawn_rate is not None else self.users
            cmd += ["-u", str(self.users), "-r", f"{spawn:g}",
                    "--run-time", f"{math.ceil(self.duration)}s"]  # fmt: skip
        if self.user_rps > 0:
            cmd += ["--kd-user-rps", f"{self.user_rps:g}"]
        return cmd + list(self.extra_args)


def _positive(flag: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(flag, "", "a finite number > 0", value)
