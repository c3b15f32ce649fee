"""kubedrill's ``--kd-*`` Locust options: declared here, parsed into one frozen value.

No locust import: the parser is Locust's (passed in), and :func:`from_namespace` reads
any argparse-like namespace, so unit tests check validation without Locust.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loadtests.shapes import SHAPES, RateShape, ShapeError, make_shape, parse_shape_args

__all__ = ["KdOptions", "add_arguments", "from_namespace"]


@dataclass(frozen=True, slots=True)
class KdOptions:
    rate: float
    shape: RateShape | None  # None: closed model (Locust's user count)
    duration: float
    window: float
    max_inflight: int
    timeout: float
    spool: str
    user_rps: float
    max_requests: int
    source: str = "load"

    @property
    def open_model(self) -> bool:
        return self.shape is not None


def add_arguments(parser: Any) -> None:
    g = parser.add_argument_group("kubedrill", "open-model arrival rate and HDR recording")
    g.add_argument(
        "--kd-rate",
        type=float,
        default=0.0,
        env_var="KUBEDRILL_LOAD_RATE",
        help="open model: run-wide arrival rate (req/s); 0 keeps the user-count model",
    )
    g.add_argument(
        "--kd-shape",
        default="constant",
        choices=list(SHAPES),
        env_var="KUBEDRILL_LOAD_SHAPE",
        help="open-model rate shape",
    )
    g.add_argument(
        "--kd-shape-args",
        default="",
        env_var="KUBEDRILL_LOAD_SHAPE_ARGS",
        help="shape parameters, e.g. 'peak=300,at_s=20'",
    )
    g.add_argument(
        "--kd-duration",
        type=float,
        default=3600.0,
        env_var="KUBEDRILL_LOAD_DURATION",
        help="seconds of load; every run stops by then (default 3600)",
    )
    g.add_argument(
        "--kd-window",
        type=float,
        default=1.0,
        env_var="KUBEDRILL_LOAD_WINDOW",
        help="recording window in seconds (default 1)",
    )
    g.add_argument(
        "--kd-max-inflight",
        type=int,
        default=1000,
        env_var="KUBEDRILL_LOAD_MAX_INFLIGHT",
        help="open model: requests in flight per worker; sends beyond are dropped",
    )
    g.add_argument(
        "--kd-timeout",
        type=float,
        default=10.0,
        env_var="KUBEDRILL_LOAD_TIMEOUT",
        help="request timeout in seconds (default 10)",
    )
    g.add_argument(
        "--kd-spool",
        default="",
        env_var="KUBEDRILL_LOAD_SPOOL",
        help="append finished windows as kubedrill timeline JSON lines here",
    )
    g.add_argument(
        "--kd-source",
        default="load",
        env_var="KUBEDRILL_LOAD_SOURCE",
        help="the spool lines' source field (default 'load')",
    )
    g.add_argument(
        "--kd-user-rps",
        type=float,
        default=0.0,
        env_var="KUBEDRILL_LOAD_USER_RPS",
        help="closed model: iterations per second per user (0: no wait)",
    )
    g.add_argument(
        "--kd-max-requests",
        type=int,
        default=50_000_000,
        env_var="KUBEDRILL_LOAD_MAX_REQUESTS",
        help="hard cap on requests per worker process",
    )


def from_namespace(o: Any) -> KdOptions:
    """The ``--kd-*`` values of a parsed namespace (None: defaults), validated; raises
    :class:`~loadtests.shapes.ShapeError` or ValueError naming the option."""
    get = (lambda k, d: getattr(o, k, d)) if o is not None else (lambda k, d: d)
    rate = float(get("kd_rate", 0.0))
    duration = float(get("kd_duration", 3600.0))
    shape = None
    if rate > 0:
        shape = make_shape(
            str(get("kd_shape", "constant")),
            rate,
            duration,
            parse_shape_args(str(get("kd_shape_args", ""))),
        )
    elif rate < 0 or not math.isfinite(rate):
        raise ShapeError("kd-rate", "a number ≥ 0", rate)
    opts = KdOptions(
        rate=rate,
        shape=shape,
        duration=duration,
        window=float(get("kd_window", 1.0)),
        max_inflight=int(get("kd_max_inflight", 1000)),
        timeout=float(get("kd_timeout", 10.0)),
        spool=str(get("kd_spool", "") or ""),
        user_rps=float(get("kd_user_rps", 0.0)),
        max_requests=int(get("kd_max_requests", 50_000_000)),
        source=str(get("kd_source", "load") or "load"),
    )
    for name, value, ok in (
        ("kd-duration", opts.duration, opts.duration > 0),
        ("kd-window", opts.window, 0 < opts.window <= 3600),
        ("kd-max-inflight", opts.max_inflight, opts.max_inflight >= 1),
        ("kd-timeout", opts.timeout, opts.timeout > 0),
        ("kd-user-rps", opts.user_rps, opts.user_rps >= 0),
        ("kd-max-requests", opts.max_requests, opts.max_requests >= 1),
    ):
        if not ok:
            raise ValueError(f"--{name}: invalid value {value!r}")
    return opts
