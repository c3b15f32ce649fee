"""The reference inference service on a cluster, under faults, against its runbook.

Deployed from experiments/profiles/reference-service.yaml (2 to 4 GPU replicas, an HPA
on requests in flight per pod, a PDB of minAvailable 1). Each scenario runs steady Locust
load through the Service and injects one fault with kubedrill.chaos, which is rolled back
however the scenario ends (and every scenario also claims that it was). The allow-list is
in drill.yaml (`chaos:`: the sandbox's contexts and nodes; the run's namespace).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from kubedrill import Drill
from kubedrill.chaos import GpuSaturation, NodeDrain, PodKill

RATE = 150.0  # requests/s: ~40 % of two replicas' capacity
# ~43 %: 1.7 requests in flight per pod against the HPA's target of 2 (no scale-out), and
# ~3.5 with one replica's GPU at 50 % (twice the service time): a clear scale-out, not one
# inside the HPA's 10 % tolerance (at 150 requests/s it was 2.25 against 2.2: 2 of 3 runs)
GPU_RATE = 170.0
# (with every replica's GPU at 50 %: ~3.4 in flight per pod, a clear scale-out)
SELECTOR = "app=reference-inference"


@pytest.mark.ci
@pytest.mark.cluster
def test_a_killed_pod_is_replaced_and_the_slo_recovers(
    drill: Drill, reference_on_cluster: Any
) -> None:
    """Runbook: losing a replica costs a blip; the SLO holds again within 10 s and the
    replica is back within a minute."""
    svc = reference_on_cluster
    drill.expect("p95_ms <= 150", phase="steady", name="client p95 before the kill")
    drill.expect("recover_within: 10s", phase="recover", slo="p95_ms <= 150", hold_s=3)
    drill.expect("replicas_recover_within: 60s", phase="recover", object_name=svc.name)
    drill.expect("error_rate < 2%", name="errors over the whole run (the kill included)")
    drill.expect("availability >= 95%")
    if drill.dry_run:
        return
    steady_s, recover_s = drill.seconds(10), max(drill.seconds(40), 20)
    with drill.load(svc.url, steady_s + recover_s + 4, rate=RATE):
        time.sleep(2)
        with drill.phase("steady"):
            time.sleep(steady_s)
        with drill.chaos(PodKill(selector=SELECTOR, count=1, grace_s=0)):
            pass  # a kill is over at once; the controller replaces the pod
        with drill.phase("recover"):
            time.sleep(recover_s)


@pytest.mark.ci
@pytest.mark.cluster
def test_a_node_drain_under_load_keeps_the_pdb_and_the_slo(
    drill: Drill, reference_on_cluster: Any
) -> None:
    """Runbook: a node drain (a GPU node's maintenance) never takes the service below its
    PDB, finishes within a minute, and costs no errors: pods are evicted, drained and
    replaced on the other GPU node."""
    svc = reference_on_cluster
    drain = NodeDrain(pods_of=SELECTOR, deadline_s=60)
    drill.expect("pdb_below_s == 0", phase="drain", pdb=svc.name)
    drill.expect("pdb_bypasses == 0", phase="drain", pdb=svc.name)
    drill.expect("error_rate < 1%", phase="drain")
    drill.expect("p95_ms <= 150", phase="drain", name="client p95 while draining")
    if drill.dry_run:
        return
    hold_s = max(drill.seconds(20), 10)
    # the load outlasts the drain and the hold (a drain slower than 10 s leaves part of the
    # phase without load: INCONCLUSIVE, as it should be)
    with drill.load(svc.url, hold_s + 14, rate=RATE):
        time.sleep(2)
        with drill.phase("drain"), drill.chaos(drain) as fault:
            fault.hold(hold_s)  # the node stays cordoned while load runs
        node = fault.plan.targets[0] if fault.plan else ""
        drill.expect("drain_within: 60s", phase="drain", node=node)


@pytest.mark.ci
@pytest.mark.cluster
def test_gpu_saturation_shows_in_dcgm_and_the_slo_degrades_only_as_allowed(
    drill: Drill, reference_on_cluster: Any
) -> None:
    """Runbook: a noisy neighbour at 50 % of a GPU shows in DCGM_FI_DEV_GPU_UTIL and slows
    that replica's requests (20 ms → 40 ms); the HPA (requests in flight per pod) adds a
    replica within 30 s; the service stays within 300 ms p95 and 1 % errors; once the
    neighbour is gone, the SLO is back within 10 s."""
    svc = reference_on_cluster
    ns = svc.namespace
    pods = f'namespace="{ns}",pod=~"{svc.name}-.*"'
    # the DCGM utilisation of the service's GPUs that the service's own work does not
    # explain: the neighbour's share (a burner at 1 % leaves it near 0; the service's own
    # work alone puts DCGM at 60+ here, so DCGM by itself would not prove the fault)
    neighbour = (
        f"max(max by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{pods}}}) - on (namespace, pod) "
        f"(100 * max by (namespace, pod) (refservice_gpu_own_busy_ratio{{{pods}}})))"
    )
    drill.expect(
        "value >= 35",
        phase="saturate",
        query=neighbour,
        step_s=2,
        name="DCGM_FI_DEV_GPU_UTIL shows the neighbour (beyond the service's own work)",
    )
    drill.expect(
        "first_scale_up_within: 30s",
        phase="saturate",
        object_name=svc.name,
        name="the autoscaler adds a replica",
    )
    drill.expect("p95_ms <= 300", phase="saturate", name="client p95 under saturation")
    drill.expect("error_rate < 1%")
    drill.expect("recover_within: 10s", phase="after", slo="p95_ms <= 150", hold_s=3)
    if drill.dry_run:
        return
    burn_s = max(drill.seconds(40), 35)  # outlasts the scale-up deadline: the claim can fail
    pods, _ = svc.adapter.list("Pod", ns, label_selector=SELECTOR)
    nodes = sorted({p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")})
    with drill.load(svc.url, burn_s + 20, rate=GPU_RATE):
        time.sleep(2)
        with drill.phase("saturate"), contextlib.ExitStack() as faults:
            # every replica's GPU: the Service spreads connections, not requests, so a
            # neighbour on one replica alone may meet only a share of the load
            for node in nodes:
                burn = GpuSaturation(node=node, pods_of=SELECTOR, level=0.5, duration_s=burn_s + 5)
                faults.enter_context(drill.chaos(burn))
            time.sleep(burn_s)
        with drill.phase("after"):
            time.sleep(12)
