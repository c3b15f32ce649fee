"""Sample named PromQL queries at a fixed step onto the timeline (``MetricSample``, source
``prometheus``), while the run goes: what the autoscaler's metric source, the GPU exporter
or the service reported, aligned with everything else on one clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Protocol

from kubedrill.core.errors import KubedrillError
from kubedrill.timeline import MetricSample, Note, Timeline

__all__ = ["PromSampler"]


class _Series(Protocol):
    labels: dict[str, str]
    points: list[tuple[float, float]]


class RangeQuery(Protocol):
    def range_query(
        self, query: str, start: float, end: float, step_s: float | None = None
    ) -> list[_Series]: ...


class PromSampler:
    """``with PromSampler(prom, {"gpu_util": "avg(DCGM_FI_DEV_GPU_UTIL)"}, tl, step_s=5):``
    records the newest point of each series of each query every ``step_s``; a query that
    fails is a warning note (once per distinct error), and sampling goes on."""

    def __init__(
        self,
        prom: RangeQuery,
        queries: Mapping[str, str],
        timeline: Timeline,
        step_s: float = 5.0,
    ) -> None:
        if step_s <= 0:
            raise ValueError(f"step_s {step_s!r}: expected a positive number of seconds")
        self.prom, self.queries, self.timeline, self.step_s = prom, dict(queries), timeline, step_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors: set[str] = set()
        self.samples = 0

    def sample_once(self) -> None:
        now = time.time()
        for name, query in self.queries.items():
            try:
                series = self.prom.range_query(query, now - self.step_s, now, self.step_s)
            except KubedrillError as e:
                if str(e) not in self._errors:
                    self._errors.add(str(e))
                    self.timeline.record(Note(f"sampler {name}: {e}", "warning"), "prometheus")
                continue
            for s in series:
                if s.points:
                    value = s.points[-1][1]
                    self.timeline.record(MetricSample(name, value, dict(s.labels)), "prometheus")
                    self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.sample_once()
            self._stop.wait(max(0.0, self.step_s - (time.monotonic() - t0)))

    def start(self) -> PromSampler:
        self._thread = threading.Thread(
            target=self._run, name="kubedrill-prom-sampler", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.step_s + 15)

    def __enter__(self) -> PromSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
