"""The reference inference service on a cluster, against its runbook.

Deployed from experiments/profiles/reference-service.yaml (2 to 4 replicas, an HPA on
requests in flight per pod, a PDB). A step load through the Service doubles the arrival
rate; the runbook claims the service scales out within a minute and keeps its SLO while
it does. Run on the sandbox with `kubedrill run --suite ci --sandbox` (`make demo`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from kubedrill import Drill

LOW, HIGH = 150.0, 330.0  # requests/s: ~40 % then ~80 % of two replicas' capacity
SCALE_DEADLINE_S = 60  # the runbook: "scales out within a minute"


def _server_query(ns: str) -> str:
    return (
        f'(sum(rate(refservice_requests_total{{namespace="{ns}",code!~"2.."}}[10s])) or vector(0))'
        f' / sum(rate(refservice_requests_total{{namespace="{ns}"}}[10s]))'
    )


@pytest.mark.ci
@pytest.mark.cluster
def test_a_step_in_load_scales_the_service_out_within_its_slo(
    drill: Drill, reference_on_cluster: Any
) -> None:
    svc = reference_on_cluster  # a DeployedService (scenarios/conftest.py)
    name, ns = svc.name, svc.namespace
    drill.expect("p95_ms <= 150", phase="low", name="client p95 at the low step")
    drill.expect("p95_ms <= 150", phase="high", name="client p95 while scaling out")
    drill.expect("error_rate < 1%")
    drill.expect("availability >= 99.5%")
    drill.expect(f"rps >= {HIGH * 0.9:g}", phase="high", name="throughput keeps up with arrivals")
    drill.expect(f"scale_up_within: {SCALE_DEADLINE_S}s", phase="high", object_name=name, target=3)
    for phase in ("low", "high"):
        drill.expect(
            "replicas >= 2", phase=phase, object_name=name, name=f"ready replicas >= 2 ({phase})"
        )
    drill.expect(
        "value < 0.01", phase="high", query=_server_query(ns), name="server-side error ratio"
    )
    if drill.dry_run:
        return
    # The high step outlasts the scale-out deadline at any time scale, so the claim can fail.
    low_s, high_s = drill.seconds(20), max(drill.seconds(60), SCALE_DEADLINE_S) + 5
    with drill.load(
        svc.url,
        low_s + high_s + 3,
        rate=HIGH,
        shape="step",
        shape_args={"steps": 2, "start": LOW, "step_s": low_s + 2},
    ):
        time.sleep(2)
        with drill.phase("low"):
            time.sleep(low_s)
        with drill.phase("high"):
            time.sleep(high_s)
