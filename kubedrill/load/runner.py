"""Run Locust in its own processes and fold its windows into the timeline as they come.

The engine never imports locust: :class:`LoadRun` starts ``python -m locust`` (one
process, or a master with ``--processes N`` workers) in a new process group, points it
at a spool file, and a thread ingests the spool into the :class:`~kubedrill.timeline.Timeline`
every ``ingest_interval`` seconds, so a scenario can read the last 30 s mid-run.

Stopping is layered, so nothing outlives its budget:

1. Locust stops itself: the open-model schedule ends at the spec's duration and drains
   in-flight requests; ``--run-time``/``--kd-duration`` bound the other modes.
2. The watchdog thread kills the whole process group once ``spec.hard_timeout_s`` has
   passed since launch (outcome ``timed_out``).
3. Leaving the ``with`` block, :meth:`LoadRun.stop`, or interpreter exit (``atexit``)
   terminate the group (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from uuid import uuid4

from kubedrill.core.errors import ActionFailed
from kubedrill.load.spec import LoadSpec
from kubedrill.load.summary import LoadSummary, per_window, summarize
from kubedrill.timeline import LoadOutcome, LoadWindow, Timeline

__all__ = ["LoadResult", "LoadRun", "Outcome", "run_load"]

Outcome = Literal["completed", "failed", "timed_out", "stopped"]
TERM_GRACE_S = 5.0
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class LoadResult:
    spec: LoadSpec
    outcome: Outcome
    returncode: int | None
    started: float
    ended: float
    windows: tuple[LoadWindow, ...]
    log_path: Path
    spool_path: Path
    log_tail: str = ""

    @property
    def summary(self) -> LoadSummary:
        return summarize(self.windows)

    def per_window(self) -> list[LoadSummary]:
        return per_window(self.windows, self.spec.window_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "returncode": self.returncode,
            "elapsed_s": self.ended - self.started,
            "log": str(self.log_path),
            "spool": str(self.spool_path),
        }


class LoadRun:
    """A Locust run in progress; use as a context manager or call :meth:`start`/:meth:`wait`."""

    def __init__(
        self,
        spec: LoadSpec,
        timeline: Timeline | None = None,
        workdir: Path | None = None,
        *,
        python: str = sys.executable,
        ingest_interval: float = 0.25,
        env: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.timeline = timeline if timeline is not None else Timeline()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="kubedrill-load-"))
        self.source = f"load:{uuid4().hex[:8]}"
        self.spool_path = self.workdir / f"{self.source.replace(':', '-')}.jsonl"
        self.log_path = self.workdir / f"{self.source.replace(':', '-')}.log"
        self._python = python
        self._interval = ingest_interval
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._reason: Outcome | None = None
        self.started = 0.0
        self._exited_at: float | None = None
        self._result: LoadResult | None = None

    # ------------------------------------------------------------------ life
    def start(self) -> LoadRun:
        if self._proc is not None:
            raise RuntimeError("this LoadRun was already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.timeline.spool(self.spool_path)
        cmd = [*self.spec.command(self.spool_path, self._python), "--kd-source", self.source]
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with self.log_path.open("wb") as log:
            try:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True,
                )  # fmt: skip
            except OSError as e:
                raise ActionFailed(f"could not start Locust ({cmd[0]} -m locust): {e}") from e
        self.started = time.monotonic()
        atexit.register(self._terminate)
        self._thread = threading.Thread(target=self._watch, name=f"kubedrill-{self.source}",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def _watch(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = self.started + self.spec.hard_timeout_s
        while not self._done.wait(self._interval):
            self.timeline.ingest()
            if proc.poll() is not None:
                self._exited_at = time.monotonic()
                break
            if time.monotonic() > deadline:
                self._set_reason("timed_out")
                self._terminate(grace=0.0)
                break
        self.timeline.ingest()

    def _set_reason(self, reason: Outcome) -> None:
        with self._lock:
            self._reason = self._reason or reason

    def _terminate(self, grace: float = TERM_GRACE_S) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``grace`` seconds."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and grace > 0:
            _killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        _killpg(proc.pid, signal.SIGKILL)  # also forked workers the master left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=TERM_GRACE_S)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def wait(self, timeout: float | None = None) -> LoadResult:
        """Block until Locust ends (at most the hard timeout), then return the result.

        With ``timeout``, give up waiting after that long and :meth:`stop` the run.
        """
        proc, thread = self._proc, self._thread
        if proc is None or thread is None:
            raise RuntimeError("start() the LoadRun first")
        thread.join(timeout)
        if thread.is_alive():
            return self.stop()
        return self._finish()

    def stop(self) -> LoadResult:
        """End the run now (SIGTERM lets Locust flush its windows), and return the result."""
        if self._proc is None:
            raise RuntimeError("start() the LoadRun first")
        if self._proc.poll() is None:
            self._set_reason("stopped")
        self._terminate()
        return self._finish()

    def _finish(self) -> LoadResult:
        if self._result is not None:
            return self._result
        proc = self._proc
        assert proc is not None
        self._terminate(grace=0.0 if proc.poll() is not None else TERM_GRACE_S)
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        atexit.unregister(self._terminate)
        rc = proc.returncode
        reason = self._reason or ("completed" if rc == 0 else "failed")
        windows = self.windows()
        intended = sum(w.intended for w in windows)
        dropped = sum(w.dropped for w in windows)
        ended = self._exited_at or time.monotonic()
        detail = ""
        if reason != "completed":
            detail = _last_line(self.log_path) if reason == "failed" else f"{reason} by kubedrill"
            if rc is not None and rc < 0:
                detail = f"killed by signal {-rc}" + (f"; {detail}" if detail else "")
        self.timeline.record(
            LoadOutcome(
                run=self.source,
                outcome=reason,
                started=self.started,
                ended=ended,
                intended=intended,
                sent=intended - dropped,
                completed=sum(w.count for w in windows),
                dropped=dropped,
                returncode=rc,
                detail=detail,
                planned=self.spec.planned_sends(),
            ),
            source=self.source,
            t=ended,
        )
        self._result = LoadResult(
            spec=self.spec,
            outcome=reason,
            returncode=rc,
            started=self.started,
            ended=ended,
            windows=tuple(windows),
            log_path=self.log_path,
            spool_path=self.spool_path,
            log_tail=_tail(self.log_path),
        )
        return self._result

    # ------------------------------------------------------------------ read
    def windows(self) -> list[LoadWindow]:
        """This run's windows ingested so far, in time order."""
        return [o.data for o in self.timeline.select(LoadWindow, source=self.source)]

    def wait_flowing(self, timeout_s: float = 30.0, settle_s: float = 1.0) -> float:
        """Block until requests have completed (a first window with answers is on the
        timeline), then ``settle_s`` more; returns the seconds since start. Start a phase
        after this rather than after a guessed sleep: a Locust start slowed by a busy
        machine would otherwise leave the phase's first seconds without load. Raises
        ``ActionFailed`` (naming the log) when no request completes in ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.timeline.ingest()
            if any(w.count > 0 for w in self.windows()):
                time.sleep(settle_s)
                return time.monotonic() - self.started
            if not self.running or time.monotonic() > deadline:
                raise ActionFailed(
                    f"load {self.source}: no request completed within {timeout_s:g} s of "
                    f"its start (log: {self.log_path})"
                )
            time.sleep(0.1)

    def remaining_s(self) -> float:
        """Seconds left of the schedule. Its duration counts from the first send, not from
        the launch, so a slow Locust start does not shorten it: the first window's start
        marks it (before any window, the launch stands in, a lower bound). Size a phase
        from this rather than from ``duration`` minus :meth:`wait_flowing`'s return."""
        self.timeline.ingest()
        first = min((w.start for w in self.windows()), default=self.started)
        return max(0.0, first + self.spec.duration - time.monotonic())

    def last(self, seconds: float) -> LoadSummary:
        """Summary of the windows that ended in the last ``seconds`` (mid-run reading)."""
        self.timeline.ingest()
        since = time.monotonic() - seconds
        return summarize(w for w in self.windows() if w.end > since)

    def __enter__(self) -> LoadRun:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._result is None:
            if exc_type is None:
                self.wait()
            else:
                self.stop()


def run_load(
    spec: LoadSpec, timeline: Timeline | None = None, workdir: Path | None = None
) -> LoadResult:
    """Run ``spec`` to the end and return its result (windows also land on ``timeline``)."""
    with LoadRun(spec, timeline, workdir) as run:
        return run.wait()


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _last_line(path: Path) -> str:
    lines = [ln.strip() for ln in _tail(path).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-LOG_TAIL_CHARS:].decode("utf-8", "replace")
