"""Synthetic game-day runs for the report benchmark and tests: a real :class:`Timeline`
filled with what a long run records (load windows with HDR histograms from several
workers, Deployment/HPA/PDB/Pod transitions, chaos markers, GPU samples, phases), judged
by the real checks, as a real run document.

Latencies are drawn from a seeded log-normal; ``latency_factor`` scales them (1.3 is a
30 % regression of every percentile). Two seeds with one factor are two runs of one build.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from kubedrill.checks import expect
from kubedrill.core import latency
from kubedrill.core.settings import Settings
from kubedrill.run.record import RunRecord, ScenarioResult
from kubedrill.timeline import Timeline
from kubedrill.timeline.payloads import (
    ChaosMarker,
    LoadOutcome,
    LoadWindow,
    MetricSample,
    ObjectTransition,
    PhaseMark,
    WatchStatus,
)

__all__ = ["synthetic_run"]

_HPA_SPEC = json.dumps(
    {
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 60},
                },
            }
        ]
    }
)
WALL0 = 1_764_633_600.0  # 2025-12-02T00:00:00Z
MONO0 = 10_000.0


def _histogram(rng: np.random.Generator, n: int, median_ms: float, factor: float) -> str:
    h = latency.new_histogram()
    if n:
        us = np.rint(rng.lognormal(math.log(median_ms * 1000.0), 0.35, n) * factor).astype(int)
        values, counts = np.unique(np.clip(us, 1, latency.HIGHEST_US), return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            h.record_value(v, c)
    encoded: bytes = h.encode()
    return encoded.decode("ascii")


def _timeline(
    duration_s: float, requests: int, events: int, seed: int, factor: float, workers: int
) -> Timeline:
    rng = np.random.default_rng(seed)
    tl = Timeline()
    tl.mono0, tl.wall0 = MONO0, WALL0
    t0 = MONO0 + 1.0
    rate = requests / duration_s

    def rec(data: Any, t: float, source: str) -> None:
        tl.record(data, source=source, t=t, wall=tl.to_wall(t))

    thirds = [t0, t0 + duration_s / 3, t0 + 2 * duration_s / 3, t0 + duration_s]
    for name, a, b in zip(("baseline", "inject", "recover"), thirds, thirds[1:], strict=False):
        rec(PhaseMark(name, "start"), a, "phase")
        rec(PhaseMark(name, "end"), b, "phase")
    for kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Pod"):
        rec(WatchStatus(kind, "synced"), MONO0, "watch")
    # load: one window a second per worker; the fault costs latency during inject
    per_window = rate / workers
    for i in range(int(duration_s)):
        start = t0 + i
        slow = 1.6 if thirds[1] <= start < thirds[1] + 60 else 1.0
        for w in range(workers):
            n = int(rng.poisson(per_window))
            errs = int(rng.binomial(n, 0.001))
            rec(
                LoadWindow(
                    "/v1/infer",
                    start,
                    start + 1.0,
                    n,
                    {"503": errs} if errs else {},
                    _histogram(rng, n, 12.0 * slow, factor),
                    intended=n,
                    dropped=0,
                    worker=f"w{w}",
                    answered=n - errs,
                ),
                start + 1.2,
                f"load:synthetic/w{w}",
            )
    rec(
        LoadOutcome(
            "load:synthetic", "completed", t0, t0 + duration_s, requests, requests, requests, 0
        ),
        t0 + duration_s + 0.5,
        "load",
    )
    # cluster: HPA scale-out during inject, pods churn, PDB follows the ready count
    replicas, t = 2, t0
    step = duration_s / max(events, 1)
    for k in range(events):
        t = t0 + k * step
        want = 4 if thirds[1] + 20 <= t < thirds[2] + 120 else 2
        if k % 4 == 0:
            replicas = want
            rec(
                ObjectTransition(
                    "Deployment",
                    "drill",
                    "reference-inference",
                    "MODIFIED",
                    {"replicas": want, "ready_replicas": replicas, "available_replicas": replicas},
                ),
                t,
                "watch",
            )
        elif k % 4 == 1:
            rec(
                ObjectTransition(
                    "HorizontalPodAutoscaler",
                    "drill",
                    "reference-inference",
                    "MODIFIED",
                    {
                        "min_replicas": 2,
                        "max_replicas": 6,
                        "current_replicas": replicas,
                        "desired_replicas": want,
                        "spec": _HPA_SPEC,
                        "metrics": json.dumps(
                            [
                                {
                                    "type": "Resource",
                                    "resource": {
                                        "name": "cpu",
                                        "current": {"averageUtilization": 90 if want > 2 else 40},
                                    },
                                }
                            ]
                        ),
                    },
                ),
                t,
                "watch",
            )
        elif k % 4 == 2:
            rec(
                ObjectTransition(
                    "PodDisruptionBudget",
                    "drill",
                    "reference-inference",
                    "MODIFIED",
                    {
                        "current_healthy": replicas,
                        "desired_healthy": 1,
                        "disruptions_allowed": replicas - 1,
                        "expected_pods": replicas,
                    },
                ),
                t,
                "watch",
            )
        else:
            rec(
                ObjectTransition(
                    "Pod",
                    "drill",
                    f"reference-inference-{k % 7}",
                    "MODIFIED",
                    {"phase": "Running", "ready": bool(k % 3), "node": f"gpu-node-{k % 3}"},
                ),
                t,
                "watch",
            )
    # chaos: a pod kill and a GPU saturation, each rolled back
    for action, at, length in (
        ("pod_kill", thirds[1] + 5, 30.0),
        ("gpu_saturate", thirds[1] + 120, 300.0),
    ):
        rec(ChaosMarker(action, "drill/reference-inference", "journaled"), at - 0.1, "chaos")
        rec(ChaosMarker(action, "drill/reference-inference", "injected"), at, "chaos")
        rec(ChaosMarker(action, "drill/reference-inference", "rolled_back"), at + length, "chaos")
    # GPU telemetry every 10 s on two devices
    for i in range(0, int(duration_s), 10):
        for gpu in ("0", "1"):
            util = float(np.clip(rng.normal(55.0, 10.0), 0, 100))
            rec(MetricSample("DCGM_FI_DEV_GPU_UTIL", util, {"gpu": gpu}), t0 + i, "dcgm")
            rec(
                MetricSample("DCGM_FI_DEV_FB_USED", 1024.0 + 8 * i / 60, {"gpu": gpu}),
                t0 + i,
                "dcgm",
            )
    return tl


def synthetic_run(
    duration_s: float = 3600.0,
    requests: int = 1_000_000,
    events: int = 10_000,
    seed: int = 1,
    latency_factor: float = 1.0,
    workers: int = 4,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A run document (schema v3) of one game-day scenario with the given size."""
    settings = Settings()
    tl = _timeline(duration_s, requests, events, seed, latency_factor, workers)
    checks = [
        expect("p95_ms <= 40", phase="baseline", name="client p95 at baseline"),
        expect("p99_ms <= 60", phase="inject", name="client p99 under the fault"),
        expect("error_rate < 1%"),
        expect("availability >= 99%", phase="recover"),
        expect(
            "scale_up_within: 120s",
            phase="inject",
            object_name="reference-inference",
            target=4,
        ),
        expect("replicas >= 2", object_name="reference-inference"),
    ]
    results = [c.evaluate(tl, settings.run.coverage_floor) for c in checks]
    record = RunRecord(settings, started=WALL0, ended=WALL0 + duration_s + 5)
    if run_id:
        record.run_id = run_id
    record.scenarios.append(
        ScenarioResult(
            id="scenarios/test_gameday.py::test_synthetic_game_day",
            name="test_synthetic_game_day",
            markers=["gameday"],
            started=WALL0,
            ended=WALL0 + duration_s + 5,
            status="ran",
            checks=results,
            timeline=tl,
        )
    )
    return record.to_dict()
