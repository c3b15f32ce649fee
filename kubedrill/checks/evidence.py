"""What the timeline holds as evidence over a window: load windows and the runs that made
them, and the continuity of the cluster watch. Shared by the SLO and scaling checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubedrill.checks.base import Coverage, clock
from kubedrill.core.types import Window
from kubedrill.timeline import LoadOutcome, LoadWindow, Timeline, WatchStatus

__all__ = ["LoadEvidence", "WatchGap", "covered_seconds", "load_evidence", "watch_gaps"]


@dataclass(frozen=True, slots=True)
class WatchGap:
    """A span of a window (monotonic seconds) in which the watch of a kind was down."""

    start: float
    end: float
    text: str

    def __str__(self) -> str:
        return self.text


def covered_seconds(spans: Iterable[tuple[float, float]], window: Window) -> float:
    """Length of the union of ``spans`` clipped to ``window``."""
    clipped = sorted(
        (max(s, window.start), min(e, window.end)) for s, e in spans if e > window.start
    )
    total, cur_s, cur_e = 0.0, None, None
    for s, e in clipped:
        if e <= s:
            continue
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total


@dataclass(frozen=True, slots=True)
class LoadEvidence:
    windows: list[LoadWindow]
    count: int
    errors: int
    intended: int
    dropped: int
    coverage: Coverage
    doubts: tuple[str, ...]


def load_evidence(timeline: Timeline, window: Window, endpoint: str | None) -> LoadEvidence:
    """Load windows whose midpoint lies in ``window`` (requests are in the window of their
    intended send time), how much of the window they cover, and the doubts about them: a
    load run overlapping the window that did not complete, and sends the generator dropped.
    """
    obs = [
        o
        for o in timeline.select(LoadWindow)
        if window.contains((o.data.start + o.data.end) / 2)
        and (endpoint is None or o.data.endpoint == endpoint)
    ]
    ws = [o.data for o in obs]
    sources = {o.source for o in obs}
    count = sum(w.count for w in ws)
    intended = sum(w.intended for w in ws)
    dropped = sum(w.dropped for w in ws)
    # A window counts when its midpoint lies in the window, so one straddling an edge stands
    # for its whole length (the straddlers left out balance the ones taken in).
    if ws:
        hull = Window(min(window.start, min(w.start for w in ws)), max(w.end for w in ws))
        covered = min(window.duration, covered_seconds(((w.start, w.end) for w in ws), hull))
    else:
        covered = 0.0
    coverage = Coverage(covered, window.duration, "load")
    doubts: list[str] = []
    for o in timeline.select(LoadOutcome):
        run = o.data
        if run.outcome == "completed" or not (
            run.started < window.end and run.ended > window.start
        ):
            continue
        if run.run not in sources and sources:
            continue
        doubts.append(
            f"load run {run.run} {run.outcome.replace('_', ' ')}"
            + (f" (exit {run.returncode})" if run.returncode is not None else "")
            + f" after {run.ended - run.started:.1f} s: {run.completed} of "
            + (f"{run.planned} planned" if run.planned else f"{run.intended} intended")
            + f" requests completed, {run.dropped} dropped"
            + (f" — {run.detail}" if run.detail else "")
        )
    return LoadEvidence(
        windows=ws,
        count=count,
        errors=sum(w.error_count for w in ws),
        intended=intended,
        dropped=dropped,
        coverage=coverage,
        doubts=tuple(doubts),
    )


def watch_gaps(
    timeline: Timeline, api_kind: str, window: Window
) -> tuple[Coverage, list[WatchGap]]:
    """How much of ``window`` the watch of ``api_kind`` was synced, and each gap in words.

    The watch is continuous from a ``synced`` mark until the next ``lost``/``stopped``;
    before the first ``synced`` nothing is known.
    """
    marks = [o for o in timeline.select(WatchStatus) if o.data.api_kind == api_kind]
    up: list[tuple[float, float]] = []
    since: float | None = None
    for o in marks:
        if o.data.state == "synced":
            if since is None:
                since = o.t
        elif since is not None:
            up.append((since, o.t))
            since = None
    if since is not None:
        up.append((since, window.end))
    covered = covered_seconds(up, window)
    cov = Coverage(covered, window.duration, f"watch of {api_kind}")
    if not marks:
        text = f"no watch of {api_kind} was recorded on the timeline"
        return cov, [WatchGap(window.start, window.end, text)]
    unserved = [o.data for o in marks if o.data.state == "unserved"]
    if unserved and not up:
        text = unserved[-1].detail or f"the cluster does not serve {api_kind}"
        return cov, [WatchGap(window.start, window.end, text)]
    gaps: list[WatchGap] = []
    cursor = window.start
    for s, e in [*sorted(up), (window.end, window.end)]:
        s, e = min(max(s, window.start), window.end), min(e, window.end)
        if s - cursor > 1e-3:
            text = (
                f"watch of {api_kind} down from {clock(timeline, window, cursor)} to "
                f"{clock(timeline, window, s)} into the window ({s - cursor:.1f} s)"
            )
            gaps.append(WatchGap(cursor, s, text))
        cursor = max(cursor, e)
    return cov, gaps
