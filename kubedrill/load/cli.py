"""``kubedrill load``: run load against a URL and write per-window and whole-run figures.

Exit codes are decided in :mod:`kubedrill.cli`: a bad flag raises ConfigError (2), a run
that did not complete or recorded nothing raises ActionFailed (1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kubedrill.core.durations import parse_duration
from kubedrill.core.errors import ActionFailed, ConfigError
from kubedrill.load.runner import LoadResult, run_load
from kubedrill.load.spec import LoadSpec
from kubedrill.load.summary import summarize
from kubedrill.timeline import Timeline
from loadtests.shapes import SHAPES, ShapeError, parse_shape_args

__all__ = ["load", "result_document"]


def _duration(flag: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise ConfigError(flag, "", str(e), text) from None


def result_document(result: LoadResult) -> dict[str, Any]:
    """What ``--json`` writes: the spec, the outcome, the whole run and every window."""
    run = result.summary
    by_endpoint = {
        ep: summarize(w for w in result.windows if w.endpoint == ep).to_dict()
        for ep in run.endpoints
    }
    return {
        "kind": "kubedrill.load",
        "spec": result.spec.to_dict(),
        **result.to_dict(),
        "run": run.to_dict(),
        "by_endpoint": by_endpoint,
        "windows": [s.to_dict() for s in result.per_window()],
    }


def _fmt(v: float | None, unit: str = "ms") -> str:
    return "n/a" if v is None else f"{v:.1f}{unit}"


@click.command("load")
@click.option("--url", required=True, help="target base URL, e.g. http://127.0.0.1:8000")
@click.option("--rate", type=float, default=None, help="open model: arrival rate (req/s)")
@click.option("--users", type=int, default=None, help="closed model: Locust user count")
@click.option("--duration", "duration_text", required=True, help="30s, 2m, 1m30s …")
@click.option(
    "--shape", type=click.Choice(list(SHAPES)), default="constant", help="open-model rate shape"
)
@click.option("--shape-args", default="", help="shape parameters, e.g. 'peak=300,at_s=20'")
@click.option(
    "--locustfile",
    type=click.Path(path_type=Path),
    default=None,
    help="your locustfile (default: loadtests/reference.py)",
)
@click.option("--workers", type=int, default=1, help="Locust worker processes (default 1)")
@click.option(
    "--remote-workers",
    type=int,
    default=0,
    help="run only the Locust master here and wait for N workers started elsewhere",
)
@click.option("--master-bind", default="*:5557", help="with --remote-workers: HOST:PORT to bind")
@click.option("--window", "window_text", default="1s", help="recording window (default 1s)")
@click.option(
    "--max-inflight",
    type=int,
    default=1000,
    help="open model: in-flight requests per worker; sends beyond are dropped",
)
@click.option("--timeout", "timeout_text", default="10s", help="request timeout (default 10s)")
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path),
    required=True,
    help="write per-window and whole-run figures here",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=None,
    help="where the spool and Locust's log go (default: a temp directory)",
)
def load(
    url: str,
    rate: float | None,
    users: int | None,
    duration_text: str,
    shape: str,
    shape_args: str,
    locustfile: Path | None,
    workers: int,
    remote_workers: int,
    master_bind: str,
    window_text: str,
    max_inflight: int,
    timeout_text: str,
    json_out: Path,
    workdir: Path | None,
) -> None:
    """Run load (open model with --rate, closed with --users) and report HDR percentiles."""
    try:
        args = parse_shape_args(shape_args)
    except ShapeError as e:
        _, _, key = e.arg.partition(".")
        raise ConfigError("--shape-args", key, e.expected, e.got) from None
    spec = LoadSpec(
        url=url, duration=_duration("--duration", duration_text), rate=rate, users=users,
        shape=shape, shape_args=args, locustfile=locustfile, workers=workers,
        remote_workers=remote_workers, master_bind=master_bind,
        window_s=_duration("--window", window_text), max_inflight=max_inflight,
        request_timeout_s=_duration("--timeout", timeout_text),
    )  # fmt: skip
    if json_out.is_dir():
        raise ConfigError("--json", "", "a file path, not a directory", str(json_out))
    result = run_load(spec, Timeline(), workdir)
    doc = result_document(result)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    s = result.summary
    click.echo(
        f"kubedrill load: {result.outcome}; {s.count} requests, {s.error_count} errors, "
        f"{s.dropped} dropped; achieved {_fmt(s.achieved_rps, '/s')}"
        f" (intended {_fmt(s.intended_rps, '/s')}); p50 {_fmt(s.percentile('p50'))} "
        f"p95 {_fmt(s.percentile('p95'))} p99 {_fmt(s.percentile('p99'))} "
        f"max {_fmt(s.percentile('max'))} → {json_out}"
    )
    if result.outcome != "completed":
        raise ActionFailed(
            f"load run {result.outcome} (Locust exit {result.returncode}); log: {result.log_path}"
            f"\n{result.log_tail[-600:]}"
        )
    if not result.windows:
        raise ActionFailed(f"load run recorded no windows; log: {result.log_path}")
