"""The reference inference service against its runbook's SLO.

Runbook claims encoded here (see the HSOF/HDC runbooks this profile follows): inference
p95 below 100 ms, fewer than 1 % errors, and after an incident the SLO holds again within
seconds. Load is Locust's open model: latency is charged from each request's intended send
time, so a stall shows up as clients would feel it.
"""

from __future__ import annotations

import time

import pytest

from kubedrill import Drill
from kubedrill.adapters.localprom import LocalPrometheus
from kubedrill.refservice.testing import RunningService

RATE = 40.0  # requests/s: a tenth of one replica's capacity
RECOVER_S, HOLD_S = 5, 3  # the runbook: the SLO holds again within 5 s, for 3 s at least

SERVER_ERROR_RATIO = (
    '(sum(rate(refservice_requests_total{job="refservice",code!~"2.."}[5s])) or vector(0))'
    ' / sum(rate(refservice_requests_total{job="refservice"}[5s]))'
)
SERVER_P95_S = (
    "histogram_quantile(0.95, sum by (le) "
    '(rate(refservice_request_duration_seconds_bucket{job="refservice"}[5s])))'
)


@pytest.mark.ci
def test_steady_load_meets_the_runbook_slo(
    drill: Drill, reference_service: RunningService, prometheus: LocalPrometheus
) -> None:
    drill.use_prometheus(prometheus.url)
    drill.expect("p95_ms <= 100", phase="steady", name="client p95 under steady load")
    drill.expect("p99_ms <= 250", phase="steady")
    drill.expect("error_rate < 1%", phase="steady")
    drill.expect("availability >= 99%", phase="steady")
    drill.expect(f"rps >= {RATE * 0.9:g}", phase="steady", name="throughput keeps up with arrivals")
    # Prometheus scrapes every second here: a 1 s step gives a sample per second of the phase
    drill.expect(
        "value < 0.01",
        phase="steady",
        query=SERVER_ERROR_RATIO,
        step_s=1,
        name="server-side error ratio",
    )
    drill.expect(
        "value <= 0.1", phase="steady", query=SERVER_P95_S, step_s=1, name="server-side p95 (s)"
    )
    if drill.dry_run:
        return
    duration = drill.seconds(20)
    with drill.load(reference_service.url, duration, rate=RATE) as load:
        load.wait_flowing()  # Locust is sending; the phase covers full-rate windows
        with drill.phase("steady"):
            # the schedule counts from the first send: a slow Locust start costs nothing
            time.sleep(max(load.remaining_s() - 1, 1))


@pytest.mark.ci
def test_a_stall_is_charged_to_clients_and_recovered_from(
    drill: Drill, reference_service: RunningService
) -> None:
    drill.expect("p95_ms <= 100", phase="baseline")
    drill.expect("max_ms >= 500", phase="stall", name="a 1 s stall is visible to clients")
    drill.expect("p99_ms <= 1500", phase="stall", name="a stall costs no more than its length")
    drill.expect("error_rate < 1%")
    drill.expect(
        f"recover_within: {RECOVER_S}s", phase="recover", slo="p95_ms <= 100", hold_s=HOLD_S
    )
    if drill.dry_run:
        return
    seg = drill.seconds(8)
    # the recover phase outlasts deadline + hold at any time scale, so the claim can fail
    recover_s = max(seg, RECOVER_S + HOLD_S + 2)
    with drill.load(reference_service.url, 2 * seg + recover_s + 5, rate=RATE) as load:
        load.wait_flowing(settle_s=0.5)
        with drill.phase("baseline"):
            time.sleep(seg)
        with drill.phase("stall"):
            status, body = reference_service.request(
                "POST", "/admin/faults", {"stall": {"every_s": 3, "for_s": 1}}
            )
            if status != 200:  # then clients see no stall, and the claim above says so
                drill.note(f"the service refused the stall: HTTP {status} {body}", "warning")
            time.sleep(seg)
            # end the stall only: knobs the scenario did not set stay as they were
            reference_service.request("POST", "/admin/faults", {"stall": None})
        with drill.phase("recover"):
            time.sleep(recover_s)
