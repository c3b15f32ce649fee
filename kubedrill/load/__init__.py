"""The load runner: Locust in its own processes, windows folded into the timeline.

Never imports locust or gevent (import-linter checks it); the Locust side lives in
``loadtests/``. Entry points: :class:`LoadSpec` (what to run), :func:`run_load` or
:class:`LoadRun` (run it, read it mid-run), :func:`summarize` / :func:`per_phase` (HDR
percentiles from exactly merged histograms).
"""

from kubedrill.load.runner import LoadResult, LoadRun, run_load
from kubedrill.load.spec import LoadSpec
from kubedrill.load.summary import LoadSummary, load_windows, per_phase, per_window, summarize

__all__ = [
    "LoadResult",
    "LoadRun",
    "LoadSpec",
    "LoadSummary",
    "load_windows",
    "per_phase",
    "per_window",
    "run_load",
    "summarize",
]
