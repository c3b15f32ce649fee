"""Fault knobs of the reference service, set at start and at runtime, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kubedrill.refservice.testing import RunningService, run_service


@pytest.fixture(scope="module")
def svc() -> Iterator[RunningService]:
    with run_service(slots=16, service_time_ms=20, extra_args=["--seed", "7"]) as s:
        yield s


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "svc" in request.fixturenames:
        request.getfixturevalue("svc").request("DELETE", "/admin/faults")


def timed(svc: RunningService) -> tuple[float, int, Any]:
    t0 = time.monotonic()
    status, body = svc.request("POST", "/v1/infer")
    return time.monotonic() - t0, status, body


def server_uptime(svc: RunningService) -> float:
    """Seconds since the service's epoch: its monotonic clock is this machine's."""
    _, health = svc.request("GET", "/health")
    return time.monotonic() - float(health["epoch_monotonic"])


def test_added_latency(svc: RunningService) -> None:
    status, knobs = svc.request("POST", "/admin/faults", {"added_latency_ms": 100})
    assert status == 200
    assert knobs["added_latency_ms"] == 100
    assert svc.request("GET", "/admin/faults")[1] == knobs
    slow = [timed(svc) for _ in range(3)]
    assert all(0.118 <= dt < 0.2 for dt, _, _ in slow)
    assert slow[0][2]["timings"]["added_latency_ms"] == 100
    assert svc.request("DELETE", "/admin/faults")[1]["added_latency_ms"] == 0
    assert timed(svc)[0] < 0.08


def test_error_ratio_over_200_requests(svc: RunningService) -> None:
    assert svc.request("POST", "/admin/faults", {"error_ratio": 0.3})[0] == 200
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda _: timed(svc), range(200)))
    errors = [body for _, status, body in runs if status == 500]
    assert {status for _, status, _ in runs} == {200, 500}
    assert 40 <= len(errors) <= 80  # 60 expected; binomial sd ≈ 6.5
    assert all(body["error"] == "injected error" for body in errors)


def test_ready_flap_at_runtime(svc: RunningService) -> None:
    period, down, margin = 1.0, 0.4, 0.04
    flap = {"ready_flap": {"period_s": period, "down_s": down}}
    assert svc.request("POST", "/admin/faults", flap)[0] == 200
    _, health = svc.request("GET", "/health")
    epoch = float(health["epoch_monotonic"])
    seen = {True: 0, False: 0}
    end = time.monotonic() + 2.1
    while time.monotonic() < end:
        t0 = time.monotonic() - epoch
        status, body = svc.request("GET", "/ready")
        t1 = time.monotonic() - epoch
        phases = (t0 % period, t1 % period)
        if all(margin < p < down - margin for p in phases) and int(t0 // period) == int(
            t1 // period
        ):
            assert (status, body["reason"]) == (503, "ready_flap")
            seen[False] += 1
        elif all(down + margin < p < period - margin for p in phases):
            assert status == 200
            seen[True] += 1
        assert svc.request("POST", "/v1/infer")[0] == 200  # serving goes on
        time.sleep(0.02)
    assert seen[True] >= 5 and seen[False] >= 5
    svc.request("DELETE", "/admin/faults")
    assert svc.request("GET", "/ready")[0] == 200


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"error_ratio": 2}, "error_ratio"),
        ({"stall": {"every_s": 1, "for_s": 3}}, "stall.for_s"),
        ({"ready_flap": {"period_s": "1", "down_s": 0.5}}, "ready_flap.period_s"),
        ({"latency": 1}, "latency"),
        ([], "body"),
    ],
)
def test_bad_knobs_are_400_and_change_nothing(
    svc: RunningService, payload: object, key: str
) -> None:
    svc.request("POST", "/admin/faults", {"added_latency_ms": 5})
    status, body = svc.request("POST", "/admin/faults", payload)
    assert status == 400
    assert body["key"] == key
    assert body["error"].startswith(f"{key}: expected ")
    assert svc.request("GET", "/admin/faults")[1]["added_latency_ms"] == 5


def test_stall_holds_requests_until_it_ends() -> None:
    """Flags --stall-every-s 1.5 --stall-for-s 0.5: stalls at [1.5, 2.0), [3.0, 3.5), ..."""
    every, length = 1.5, 0.5
    args = ["--stall-every-s", str(every), "--stall-for-s", str(length)]
    with run_service(slots=4, service_time_ms=20, extra_args=args) as svc:
        assert svc.request("GET", "/admin/faults")[1]["stall"] == {
            "every_s": every,
            "for_s": length,
        }
        # outside a stall: fast
        while not (every * 0.5 < server_uptime(svc) % every < every * 0.8):
            time.sleep(0.01)
        dt, _, body = timed(svc)
        assert dt < 0.1
        assert body["timings"]["stall_ms"] < 1
        # wait until 0.1 s into the next stall, then send six requests at once
        while not (0.1 <= server_uptime(svc) % every < 0.15 and server_uptime(svc) >= every):
            time.sleep(0.005)
        sent_at = server_uptime(svc)
        stall_end = (sent_at // every) * every + length
        with ThreadPoolExecutor(6) as pool:
            runs = list(pool.map(lambda _: timed(svc), range(6)))
    assert [status for _, status, _ in runs] == [200] * 6
    expected = stall_end - sent_at  # ≈ 0.4 s, then one or two service times (4 slots)
    for dt, _, body in runs:
        assert expected <= dt < expected + 0.15
    # the four in slots waited out the stall; the other two waited in line behind them
    stalled = [body["timings"]["stall_ms"] for _, _, body in runs]
    assert sum(ms >= (expected - 0.05) * 1000 for ms in stalled) == 4
    for _, _, body in runs:
        waited = body["timings"]["stall_ms"] + body["timings"]["queue_ms"]
        assert waited >= (expected - 0.05) * 1000


def test_runtime_faults_off_refuses_changes_and_env_flags_reach_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBEDRILL_REFSERVICE_ARGS", "--runtime-faults off --added-latency-ms 50")
    with run_service(slots=4, service_time_ms=5) as locked:
        status, body = locked.request(
            "POST", "/admin/faults", {"stall": {"every_s": 3, "for_s": 1}}
        )
        assert status == 403 and "--runtime-faults off" in body["error"]
        assert locked.request("DELETE", "/admin/faults")[0] == 403
        _, faults = locked.request("GET", "/admin/faults")
        assert faults["added_latency_ms"] == 50 and faults["stall"] is None
