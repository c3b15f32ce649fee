"""The emulated reference service as a real process over real HTTP: latency, slots, queue,
metrics, startup delay, busy ledger and capacity."""

from __future__ import annotations

import asyncio
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kubedrill.refservice.ledger import write_entry
from kubedrill.refservice.testing import RunningService, run_service


def timed(svc: RunningService, body: object = None) -> tuple[float, int, Any]:
    t0 = time.monotonic()
    status, payload = svc.request("POST", "/v1/infer", body)
    return time.monotonic() - t0, status, payload


def concurrently(svc: RunningService, n: int, body: object = None) -> list[tuple[float, int, Any]]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: timed(svc, body), range(n)))


def scrape(svc: RunningService) -> dict[str, float]:
    """Samples of /metrics as {'name{label="v"}': value}."""
    status, text = svc.request("GET", "/metrics")
    assert status == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_latency_is_the_service_time() -> None:
    with run_service(slots=4, service_time_ms=50) as svc:
        runs = [timed(svc, {"inputs": [i]}) for i in range(8)]
    assert all(status == 200 for _, status, _ in runs)
    assert [p["outputs"] for _, _, p in runs] == [[i] for i in range(8)]
    client = [dt for dt, _, _ in runs]
    assert min(client) >= 0.049
    assert statistics.median(client) < 0.075
    served = [p["timings"]["service_ms"] for _, _, p in runs]
    assert all(49.0 <= ms < 60.0 for ms in served)


def test_slots_bound_concurrency() -> None:
    """Three slots, four simultaneous requests: the fourth waits one service time."""
    with run_service(slots=3, service_time_ms=300) as svc:
        runs = concurrently(svc, 4)
    assert [status for _, status, _ in runs] == [200] * 4
    by_wait = sorted(runs, key=lambda r: r[2]["timings"]["queue_ms"])
    assert all(p["timings"]["queue_ms"] < 100 for _, _, p in by_wait[:3])
    assert all(0.29 <= dt < 0.45 for dt, _, _ in by_wait[:3])
    dt_last, _, last = by_wait[3]
    assert 250 <= last["timings"]["queue_ms"] < 400
    assert 0.59 <= dt_last < 0.8


def test_queue_full_is_503() -> None:
    with run_service(slots=1, service_time_ms=400, extra_args=["--max-queue", "1"]) as svc:
        runs = concurrently(svc, 3)
        _, gpu = svc.request("GET", "/health/gpu")
    codes = sorted(status for _, status, _ in runs)
    assert codes == [200, 200, 503]
    rejected = next(p for _, status, p in runs if status == 503)
    assert rejected["error"] == "queue full"
    assert gpu["queue_depth"] == 0
    assert gpu["slots"] == 1


def test_bad_bodies_are_400() -> None:
    with run_service(slots=2, service_time_ms=1) as svc:
        s1, b1 = svc.request("POST", "/v1/infer", [1, 2])
        s2, b2 = svc.request("POST", "/v1/infer", {"inputs": "x"})
        s3, b3 = svc.request("POST", "/v1/infer")  # empty body is fine
    assert (s1, s2, s3) == (400, 400, 200)
    assert "JSON object" in b1["error"]
    assert b2["error"].startswith("inputs:")
    assert b3["outputs"] == []


def test_metrics_count_what_was_sent() -> None:
    with run_service(slots=4, service_time_ms=5) as svc:
        concurrently(svc, 12, {"inputs": [1]})
        for _ in range(3):
            svc.request("POST", "/v1/infer", "not an object")
        svc.request("POST", "/admin/faults", {"error_ratio": 1.0})
        for _ in range(5):
            assert svc.request("POST", "/v1/infer")[0] == 500
        m = scrape(svc)
    assert m['refservice_requests_total{code="200"}'] == 12
    assert m['refservice_requests_total{code="400"}'] == 3
    assert m['refservice_requests_total{code="500"}'] == 5
    assert m["refservice_request_duration_seconds_count"] == 20
    assert m["refservice_request_duration_seconds_sum"] >= 12 * 0.005
    assert m['refservice_request_duration_seconds_bucket{le="0.0025"}'] <= 8  # only 400s, 500s
    assert m['refservice_request_duration_seconds_bucket{le="+Inf"}'] == 20
    assert m["refservice_batch_size_count"] == 12
    assert m["refservice_batch_size_sum"] == 12
    assert m["refservice_requests_in_flight"] == 0
    assert m["refservice_queue_depth"] == 0
    assert m["refservice_gpu_busy_ratio"] == 0
    assert m["refservice_ready"] == 1


def test_startup_delay_keeps_it_unready() -> None:
    with run_service(
        slots=1, service_time_ms=1, extra_args=["--startup-delay-s", "0.6"], wait_ready=False
    ) as svc:
        t0 = time.monotonic()
        assert svc.request("GET", "/ready") == (503, {"ready": False, "reason": "loading"})
        assert svc.request("GET", "/health")[0] == 200
        status, body = svc.request("POST", "/v1/infer")
        assert (status, body["error"]) == (503, "loading")
        svc.wait_ready()
        assert time.monotonic() - t0 >= 0.4
        assert svc.request("POST", "/v1/infer")[0] == 200


def test_busy_ledger_stretches_service_time(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    write_entry(ledger / "0", 0.9, writer="not our device")
    with run_service(
        slots=2,
        service_time_ms=40,
        extra_args=["--busy-ledger", str(ledger), "--busy-poll-ms", "20"],
        env={"KUBEDRILL_GPU_DEVICES": "1"},
    ) as svc:
        assert 39 <= timed(svc)[2]["timings"]["service_ms"] < 55
        write_entry(ledger / "1", 0.5, ttl_s=60, writer="test burner")
        time.sleep(0.15)
        _, gpu = svc.request("GET", "/health/gpu")
        assert gpu["devices"] == ["1"]
        assert gpu["busy_fraction"] == 0.5
        assert gpu["ledger"]["status"] == "ok"
        assert 79 <= timed(svc)[2]["timings"]["service_ms"] < 100
        assert scrape(svc)["refservice_gpu_busy_ratio"] == 0.5
        (ledger / "1").unlink()
        time.sleep(0.15)
        _, gpu = svc.request("GET", "/health/gpu")
        assert (gpu["busy_fraction"], gpu["ledger"]["status"]) == (0.0, "missing")
        assert 39 <= timed(svc)[2]["timings"]["service_ms"] < 55


async def _closed_loop(url: str, workers: int, duration_s: float) -> tuple[int, int]:
    ok = bad = 0
    deadline = time.monotonic() + duration_s
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal ok, bad
            while time.monotonic() < deadline:
                async with session.post(url) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        bad += 1

        await asyncio.gather(*(worker() for _ in range(workers)))
    return ok, bad


def test_capacity_is_slots_over_service_time() -> None:
    """8 slots x 50 ms = 160 requests/s, with CPU to spare (service time is not CPU)."""
    with run_service(slots=8, service_time_ms=50) as svc:
        t0 = time.monotonic()
        ok, bad = asyncio.run(_closed_loop(svc.url + "/v1/infer", workers=32, duration_s=1.5))
        elapsed = time.monotonic() - t0
    assert bad == 0
    rps = ok / elapsed
    assert 0.9 * 160 <= rps <= 1.03 * 160
