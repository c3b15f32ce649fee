"""Per-window HDR recording and the spool line format: no locust or gevent import.

One :class:`Recorder` per Locust worker process keeps, per window and endpoint, an
HdrHistogram of latencies (microseconds; lowest 1, highest one hour, 3 significant
digits, the conventions of ``kubedrill.core.latency``), the count of completed requests,
errors by kind, and the open model's intended and dropped sends. Finished windows come
out as plain dicts with exactly the fields of ``kubedrill.timeline.LoadWindow``.

In the open model a request is counted in the window of its *intended send time*, so a
stall is charged to the windows in which the stalled requests were due, not to the ones
in which they finally completed; a window is finished only when every request intended in
it has completed (or the run ends). In the closed model, a request counts in the window
in which it completed. Latency is what the caller measured (from the intended send time in
the open model). Failed requests are recorded too, so the histogram's total equals
``count``. ``answered`` counts the successful requests that completed during the window, wherever
their send was due: throughput is judged from it. Intended and dropped sends are counted
in the window of their intended time (or
the oldest window still open, if the scheduler fell that far behind), so no count is ever
lost.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtests.schedule import window_bounds, window_index

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "Recorder",
    "SpoolFile",
    "classify_error",
    "spool_line",
]

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
KIND = "load.window"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def classify_error(exception: BaseException | None, response: object = None) -> str | None:
    """``None`` for success, else a short kind: ``http_503``, ``timeout``, ``connection``,
    ``failure`` (a response the locustfile marked failed) or ``other``."""
    if exception is None:
        return None
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return f"http_{status}"
    names = [c.__name__ for c in type(exception).__mro__]
    if isinstance(exception, TimeoutError) or any("Timeout" in n for n in names):
        return "timeout"
    if isinstance(exception, ConnectionError | OSError) or any("Connection" in n for n in names):
        return "connection"
    if "CatchResponseError" in names:
        return "failure"
    return "other"


@dataclass(slots=True)
class _Acc:
    count: int = 0
    intended: int = 0
    dropped: int = 0
    inflight: int = 0  # sent, intended in this window, not yet recorded
    answered: int = 0  # successful requests that *completed* during this window
    errors: dict[str, int] = field(default_factory=dict)
    hist: HdrHistogram | None = None


class Recorder:
    """Windows of one process; not thread-safe (gevent greenlets only, like Locust)."""

    def __init__(
        self,
        width: float = 1.0,
        worker: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not width > 0:
            raise ValueError("window width must be > 0")
        self.width = width
        self.worker = worker or f"{socket.gethostname()}/{os.getpid()}"
        self.clock = clock
        self.started = clock()
        self.total_requests = 0
        self._open: dict[tuple[int, str], _Acc] = {}
        self._horizon = window_index(self.started, width)  # oldest window still open
        self._last: tuple[str, float, float, _Acc] | None = None

    def restart(self, now: float | None = None) -> None:
        """A test (re)starts: windows begin no earlier than now."""
        self.started = self.clock() if now is None else now
        self._horizon = max(self._horizon, window_index(self.started, self.width))
        self._last = None

    def _slot(self, t: float, endpoint: str) -> tuple[int, _Acc]:
        """The open window for ``t``: its own if still open (a window held open by requests
        in flight), else the oldest window that may still be opened."""
        idx = window_index(t, self.width)
        acc = self._open.get((idx, endpoint))
        if acc is not None:
            return idx, acc
        idx = max(idx, self._horizon)
        acc = self._open.get((idx, endpoint))
        if acc is None:
            acc = self._open[(idx, endpoint)] = _Acc()
        return idx, acc

    def _acc(self, t: float, endpoint: str) -> _Acc:
        return self._slot(t, endpoint)[1]

    def record(
        self,
        endpoint: str,
        latency_s: float,
        error: str | None = None,
        t: float | None = None,
        intended: float | None = None,
    ) -> None:
        """A request completed at ``t`` (default now) after ``latency_s`` seconds; with
        ``intended`` (the open model's send time, announced by :meth:`intended`) it counts
        in that time's window."""
        now = (self.clock() if t is None else t) if intended is None else intended
        last = self._last  # fast path: the same endpoint and window as the last request
        if last is not None and last[0] == endpoint and last[1] <= now < last[2]:
            acc = last[3]
        else:
            idx, acc = self._slot(now, endpoint)
            start, end = window_bounds(idx, self.width)
            self._last = (endpoint, start, end, acc)
        acc.count += 1
        if intended is not None and acc.inflight > 0:
            acc.inflight -= 1
        if error is None:  # throughput is what completed when: count it where it completed
            done_at = self.clock() if t is None else t
            (acc if intended is None else self._slot(done_at, endpoint)[1]).answered += 1
        self.total_requests += 1
        if error is not None:
            acc.errors[error] = acc.errors.get(error, 0) + 1
        if acc.hist is None:
            acc.hist = new_histogram()
        us = min(max(round(latency_s * 1_000_000), LOWEST_US), HIGHEST_US)
        acc.hist.record_value(us)

    def intended(self, endpoint: str, t: float, n: int = 1) -> None:
        """``n`` sends due at ``t`` went out; their window stays open until they complete."""
        acc = self._acc(t, endpoint)
        acc.intended += n
        acc.inflight += n

    def settle(self, endpoint: str, intended: float) -> None:
        """A send due at ``intended`` ended without recording a request (``send()`` made
        none): its window no longer waits for it."""
        acc = self._acc(intended, endpoint)
        acc.inflight = max(0, acc.inflight - 1)

    def dropped(self, endpoint: str, t: float, n: int = 1) -> None:
        acc = self._acc(t, endpoint)
        acc.dropped += n
        acc.intended += n

    def take(self, final: bool = False, now: float | None = None) -> list[dict[str, Any]]:
        """Finished windows (all of them when ``final``) as LoadWindow field dicts."""
        now = self.clock() if now is None else now
        limit = window_index(now, self.width)  # windows before this one are finished
        out: list[dict[str, Any]] = []
        for (idx, endpoint), acc in sorted(self._open.items()):
            if (idx >= limit or acc.inflight > 0) and not final:
                continue
            start, end = window_bounds(idx, self.width)
            out.append(
                {
                    "endpoint": endpoint,
                    "start": max(start, self.started),
                    "end": max(min(end, now), max(start, self.started)),
                    "count": acc.count,
                    "errors": dict(acc.errors),
                    "histogram": (acc.hist or new_histogram()).encode().decode("ascii"),
                    "intended": acc.intended,
                    "dropped": acc.dropped,
                    "worker": self.worker,
                    "answered": acc.answered,
                }
            )
            del self._open[(idx, endpoint)]
        self._last = None
        self._horizon = max(self._horizon, limit + 1 if final else limit)
        return out


def spool_line(
    window: dict[str, Any], source: str = "load", wall_offset: float | None = None
) -> bytes:
    """One JSON line exactly as ``kubedrill.timeline.SpoolWriter`` writes an observation;
    the observation time is the window's end."""
    off = time.time() - time.monotonic() if wall_offset is None else wall_offset
    obs = {
        "t": window["end"],
        "wall": window["end"] + off,
        "source": source,
        "kind": KIND,
        "data": window,
    }
    return (json.dumps(obs, separators=(",", ":")) + "\n").encode()


class SpoolFile:
    """Appends spool lines with one ``write()`` each on an ``O_APPEND`` descriptor, so lines
    from several writers never interleave (the SpoolWriter contract)."""

    def __init__(self, path: str, source: str = "load") -> None:
        self.path = path
        self.source = source
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._wall_offset = time.time() - time.monotonic()

    def write(self, windows: list[dict[str, Any]]) -> None:
        for w in windows:
            os.write(self._fd, spool_line(w, self.source, self._wall_offset))

    def close(self) -> None:
        os.close(self._fd)
