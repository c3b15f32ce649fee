"""Intended send times and window math: pure, no locust import.

Open model: the cumulative arrival count Λ(t) = ∫₀ᵗ rate is a staircase of requests; the
j-th request of the whole run is due when Λ(t) reaches j (j = 0, 1, 2…). With N worker
processes, worker i takes every N-th request, j ≡ i (mod N), so the workers' streams
interleave into exactly the run's stream and no coordination is needed at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

__all__ = ["arrival_times", "window_bounds", "window_index"]

# Integration step: arrival times are exact for constant and linear pieces, and off by at
# most one step around a discontinuity of the rate (a step or a spike edge).
STEP_S = 0.001
EPSILON_S = 1e-9


def arrival_times(
    rate: Callable[[float], float],
    duration: float,
    *,
    worker: int = 0,
    workers: int = 1,
    max_count: int | None = None,
    step: float = STEP_S,
) -> Iterator[float]:
    """Intended send times (seconds since the start) of one worker's share of the run.

    ``rate(t)`` is the whole run's rate at ``t``; the generator ends at ``duration`` or
    after ``max_count`` times, whichever comes first, so every loop over it is bounded.
    """
    if workers < 1 or not 0 <= worker < workers:
        raise ValueError(f"worker {worker} of {workers}: expected 0 ≤ worker < workers")
    if not math.isfinite(duration) or duration <= 0 or step <= 0:
        return
    share = 1.0 / workers
    level = worker * share  # in this worker's units: Λ(t)/N reaches k + i/N
    acc = 0.0
    emitted = 0
    n_steps = math.ceil(duration / step)
    for i in range(n_steps):
        t = i * step
        dt = min(step, duration - t)
        if dt <= 0:
            break
        r = rate(t + dt / 2) * share
        if r > 0:
            area = r * dt
            while acc + area >= level:
                due = t + (level - acc) / r
                if due >= duration - EPSILON_S:  # float sums must not add a send at the end
                    return
                yield due
                emitted += 1
                if max_count is not None and emitted >= max_count:
                    return
                level += 1.0
            acc += area


def window_index(t: float, width: float) -> int:
    """Index of the window ``[k·width, (k+1)·width)`` holding ``t`` (monotonic seconds).

    Windows are aligned to the clock itself, not to a run's start, so windows of every
    worker on a host line up without coordination.
    """
    return math.floor(t / width)


def window_bounds(index: int, width: float) -> tuple[float, float]:
    return index * width, (index + 1) * width
