"""Capacity sweep: step the arrival rate at a fixed replica count until the SLO breaks.

One replica of the reference service (emulated GPU: ``SLOTS`` concurrent requests of
``SERVICE_TIME_MS`` each) takes real open-model Locust load, one load run per step, each
step a phase of its own. The capacity report (HTML, `docs/reports.md`) draws latency
against the offered rate and places the knee; the service's configuration says where it
must be: slots ÷ service time = 100 requests/s.

Runs with ``kubedrill run --suite capacity`` (about a minute); the report benchmark
(`make bench-report`) checks the knee against the configuration (``knee_error_pct``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kubedrill import Drill
from kubedrill.core import latency
from kubedrill.refservice.testing import RunningService, run_service
from kubedrill.timeline import MetricSample
from kubedrill.timeline.payloads import LoadWindow

SLOTS = 2
SERVICE_TIME_MS = 20.0
CAPACITY_RPS = SLOTS / (SERVICE_TIME_MS / 1000.0)  # 100 requests/s per replica
REPLICAS, GPUS = 1, 1
SLO_P95_MS = 3 * SERVICE_TIME_MS  # queueing may triple the service time, no more
RATES = [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3]  # of the configured capacity
STEP_S = 4.0
BROKEN_STEPS = 2  # steps past the knee, to draw the curve beyond it


@pytest.fixture(scope="module")
def sweep_service() -> Iterator[RunningService]:
    with run_service(mode="emulated", slots=SLOTS, service_time_ms=SERVICE_TIME_MS) as svc:
        yield svc


def _wait_for_load(drill: Drill, source: str, timeout_s: float = 30.0) -> None:
    """Until the run's first window is on the timeline: the step's phase covers load only."""
    deadline = time.monotonic() + timeout_s
    while not drill.timeline.select(LoadWindow, source=source):
        if time.monotonic() > deadline:
            pytest.fail(f"load run {source} recorded no window within {timeout_s:g}s")
        time.sleep(0.1)
        drill.timeline.ingest()


def _p95_ms(drill: Drill, phase: str) -> float | None:
    window = drill.timeline.phases()[phase]
    encoded = [
        o.data.histogram
        for o in drill.timeline.select(LoadWindow)
        if window.contains((o.data.start + o.data.end) / 2)
    ]
    if not encoded:
        return None
    return latency.percentile_ms(latency.merge(encoded), 95.0)


@pytest.mark.capacity
def test_capacity_sweep_finds_the_knee(drill: Drill, sweep_service: RunningService) -> None:
    first = f"rate-{RATES[0] * CAPACITY_RPS:g}"
    drill.expect(f"p95_ms <= {SLO_P95_MS:g}", phase=first, name="the SLO holds well below capacity")
    drill.expect("error_rate < 1%", phase=first)
    if drill.dry_run:
        return
    for name, value in (
        ("capacity.replicas", REPLICAS),
        ("capacity.gpus", GPUS),
        ("capacity.slo_p95_ms", SLO_P95_MS),
        ("capacity.configured_rps", CAPACITY_RPS),
    ):
        drill.record(MetricSample(name, float(value)), source="capacity")
    step_s = drill.seconds(STEP_S)
    broken = 0
    for fraction in RATES:
        rate = round(fraction * CAPACITY_RPS, 3)
        phase = f"rate-{rate:g}"
        drill.record(MetricSample("capacity.offered_rps", rate, {"phase": phase}), "capacity")
        # the run outlasts its phase: the phase starts once windows flow (about 1-2 s in)
        with drill.load(sweep_service.url, step_s + 3.0, rate=rate) as run:
            _wait_for_load(drill, run.source)
            with drill.phase(phase):
                time.sleep(step_s)
        drill.timeline.ingest()
        p95 = _p95_ms(drill, phase)
        if p95 is None or p95 > SLO_P95_MS:
            broken += 1
            if broken >= BROKEN_STEPS:
                break
