"""kubedrill's Locust plugin: ``--kd-*`` options, HDR window recording, spool output.

Runs only inside Locust processes (imports locust and gevent). ``install()`` registers
the listeners once per ``locust.events``; locustfiles call it at import (``reference.py``
does; ``kubedrill_record.py`` adds it to any locustfile: ``-f kubedrill_record.py,yours.py``).

Who does what:

* local runner (one process): records windows and appends them to the spool itself;
* workers (``--processes N`` or ``--worker`` on other hosts): record windows and send
  them to the master as ``kubedrill_windows`` messages;
* master: writes what workers send to the spool, rebasing monotonic times of workers on
  other hosts through their wall clocks.

Without ``--kd-spool`` a closed-model run records nothing (it is plain Locust); an
open-model run still records and logs its intended-time percentiles at the end.
"""

from __future__ import annotations

import logging
import math
import socket
import sys
import time
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import events as default_events
from locust.env import Environment
from locust.event import Events
from locust.runners import MasterRunner, WorkerRunner

from loadtests.options import KdOptions, add_arguments, from_namespace
from loadtests.recording import Recorder, SpoolFile, classify_error, new_histogram
from loadtests.safety import check_target

__all__ = ["KdOptions", "finish", "install", "options", "state", "worker_share"]

log = logging.getLogger("kubedrill.load")
MESSAGE = "kubedrill_windows"
FLUSH_GRACE_S = 0.05
PCTS = (50.0, 95.0, 99.0, 99.9)


def options(environment: Environment) -> KdOptions:
    """The ``--kd-*`` options of this process, validated."""
    return from_namespace(environment.parsed_options)


class _Totals:
    """Sink used when there is no spool: merges windows and logs the run at the end."""

    def __init__(self) -> None:
        self.hist: HdrHistogram = new_histogram()
        self.count = self.intended = self.dropped = 0
        self.errors: dict[str, int] = {}

    def write(self, windows: list[dict[str, Any]]) -> None:
        for w in windows:
            self.hist.add(HdrHistogram.decode(w["histogram"].encode("ascii")))
            self.count += w["count"]
            self.intended += w["intended"]
            self.dropped += w["dropped"]
            for k, n in w["errors"].items():
                self.errors[k] = self.errors.get(k, 0) + n

    def report(self) -> str:
        h = self.hist
        pct = " ".join(f"p{p:g}={h.get_value_at_percentile(p) / 1000:.1f}ms" for p in PCTS)
        return (
            f"kubedrill: {self.count} requests, errors {self.errors or 'none'}, "
            f"intended {self.intended}, dropped {self.dropped}; latency from intended "
            f"send times: {pct} max={self.hist.get_max_value() / 1000:.1f}ms"
        )


class _State:
    def __init__(self, environment: Environment, opts: KdOptions) -> None:
        self.env = environment
        self.opts = opts
        runner = environment.runner
        self.is_master = isinstance(runner, MasterRunner)
        self.is_worker = isinstance(runner, WorkerRunner)
        self.recorder: Recorder | None = None
        self.spool: SpoolFile | None = None
        self.totals: _Totals | None = None
        self.flusher: gevent.Greenlet | None = None
        self.scheduler_claimed = False
        self.quitting = False
        records = bool(opts.spool) or opts.open_model
        if not self.is_master and records:
            self.recorder = Recorder(opts.window)
        if not self.is_worker:
            if opts.spool:
                self.spool = SpoolFile(opts.spool, opts.source)
            elif records:
                self.totals = _Totals()

    def sink(self, windows: list[dict[str, Any]]) -> None:
        if not windows:
            return
        if self.is_worker:
            runner = self.env.runner
            assert isinstance(runner, WorkerRunner)
            runner.send_message(
                MESSAGE,
                {
                    "host": socket.gethostname(),
                    "offset": time.time() - time.monotonic(),
                    "windows": windows,
                },
            )
        elif self.spool is not None:
            self.spool.write(windows)
        elif self.totals is not None:
            self.totals.write(windows)

    def flush(self, final: bool = False) -> None:
        if self.recorder is not None:
            self.sink(self.recorder.take(final=final))

    def flush_loop(self) -> None:
        width = self.opts.window
        while True:
            now = time.monotonic()
            gevent.sleep((math.floor(now / width) + 1) * width - now + FLUSH_GRACE_S)
            self.flush()

    def quit(self, reason: str) -> None:
        """Stop the run from inside Locust (bounded duration, request cap, open model done)."""
        if self.quitting or self.env.runner is None:
            return
        self.quitting = True
        log.info("kubedrill: %s; stopping", reason)
        gevent.spawn(self.env.runner.quit)


def state(environment: Environment) -> _State:
    st = getattr(environment, "kubedrill_state", None)
    if st is None:
        st = _State(environment, options(environment))
        environment.kubedrill_state = st  # type: ignore[attr-defined]
    return st


def worker_share(environment: Environment) -> tuple[int, int]:
    """(index, count) of this process among the open model's workers."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        count = max(1, int(getattr(environment.parsed_options, "expect_workers", 1) or 1))
        return max(0, runner.worker_index) % count, count
    return 0, 1


def finish(environment: Environment) -> None:
    """The open-model scheduler is done: write the last windows and end the process."""
    st = state(environment)
    st.flush(final=True)
    st.quit("open-model schedule complete")


def _refresh(environment: Environment) -> _State:
    """Workers learn the master's ``--kd-*`` values only at spawn: rebuild on change."""
    st = state(environment)
    opts = options(environment)
    if opts != st.opts:
        if st.spool is not None:
            st.spool.close()
        st = _State(environment, opts)
        environment.kubedrill_state = st  # type: ignore[attr-defined]
    return st


def _on_init(environment: Environment, **_: Any) -> None:
    try:
        st = state(environment)
    except ValueError as e:
        log.error("kubedrill: %s", e)
        sys.exit(2)
    if st.is_master and environment.runner is not None:

        def relay(environment: Environment, msg: Any, **_: Any) -> None:
            data = msg.data
            windows = data["windows"]
            if data["host"] != socket.gethostname():  # another host's monotonic clock
                shift = data["offset"] - (time.time() - time.monotonic())
                for w in windows:
                    w["start"] += shift
                    w["end"] += shift
            state(environment).sink(windows)

        environment.runner.register_message(MESSAGE, relay)


def _on_test_start(environment: Environment, **_: Any) -> None:
    st = _refresh(environment)
    opts = st.opts
    if not st.is_worker:
        hosts = [getattr(u, "host", None) for u in environment.user_classes]
        problem = check_target(environment.host, hosts)
        if problem:
            log.error("kubedrill: %s", problem)
            environment.process_exit_code = 2
            st.quit("refused target")
            return
        limit = opts.duration + (opts.timeout + 5.0 if opts.open_model else 0.0)
        gevent.spawn_later(limit, st.quit, f"--kd-duration {opts.duration:g}s reached")
        users = getattr(environment.parsed_options, "num_users", None)
        workers = getattr(environment.parsed_options, "expect_workers", 1) if st.is_master else 1
        if opts.open_model and users is not None and users != workers:
            log.warning(
                "kubedrill: open model wants one user per worker process "
                "(-u %s with %s worker(s)); extra users stop at once",
                users,
                workers,
            )
    if st.recorder is not None:
        st.recorder.restart()
        if st.flusher is None:
            st.flusher = gevent.spawn(st.flush_loop)


def _on_test_stop(environment: Environment, **_: Any) -> None:
    st = state(environment)
    if st.flusher is not None:
        st.flusher.kill(block=False)
        st.flusher = None
    st.flush(final=True)


def _on_quitting(environment: Environment, **_: Any) -> None:
    st = state(environment)
    st.flush(final=True)
    if st.totals is not None and st.totals.count + st.totals.intended:
        log.info(st.totals.report())
    if st.spool is not None:
        st.spool.close()
        st.spool = None


def _record(
    environment: Environment,
    name: str,
    response_time: float,
    exception: BaseException | None,
    response: Any,
) -> None:
    st = state(environment)
    rec = st.recorder
    if rec is None:
        return
    now = time.monotonic()
    g = gevent.getcurrent()
    intended = getattr(g, "kd_intended", None)
    if intended is not None:  # the open model's first request of an iteration
        g.kd_intended = None
        latency = now - intended
    else:
        latency = response_time / 1000.0
    rec.record(name, latency, classify_error(exception, response), now, intended=intended)
    if rec.total_requests >= st.opts.max_requests:
        st.quit(f"--kd-max-requests {st.opts.max_requests} reached")


def install(events: Events = default_events) -> None:
    """Register kubedrill's listeners on ``events`` (idempotent)."""
    if getattr(events, "kubedrill_installed", False):
        return
    events.kubedrill_installed = True  # type: ignore[attr-defined]
    envs: list[Environment] = []  # the request event carries no environment: remember it

    def on_init(environment: Environment, **kw: Any) -> None:
        envs[:] = [environment]
        _on_init(environment, **kw)

    def on_request(  # every argument Locust passes, named: no kwargs dict per request
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any = None,
        context: Any = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        url: str | None = None,
        **_: Any,
    ) -> None:
        if envs:
            _record(envs[0], name, response_time, exception, response)

    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
    events.request.add_listener(on_request)
