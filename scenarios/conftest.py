"""Fixtures of the demo suite: the reference inference service as a real local process,
scraped by a real Prometheus. Scenarios drive real Locust load against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubedrill.localprom import LocalPrometheus, run_prometheus, wait_for_series
from kubedrill.refservice.testing import RunningService, run_service

# The reference service as its runbook describes one replica: 4 concurrent GPU streams,
# 10 ms per request, so about 400 requests/s of capacity.
SLOTS = 4
SERVICE_TIME_MS = 10


@pytest.fixture(scope="module")
def reference_service() -> Iterator[RunningService]:
    with run_service(mode="emulated", slots=SLOTS, service_time_ms=SERVICE_TIME_MS) as svc:
        yield svc


@pytest.fixture(scope="module")
def prometheus(reference_service: RunningService) -> Iterator[LocalPrometheus]:
    target = f"127.0.0.1:{reference_service.port}"
    labels = {"refservice": {"namespace": "local", "pod": "reference-inference-0"}}
    with run_prometheus({"refservice": [target]}, interval_s=1.0, labels=labels) as prom:
        wait_for_series(prom.url, 'up{job="refservice"} == 1')
        yield prom
