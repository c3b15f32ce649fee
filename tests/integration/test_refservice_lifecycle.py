"""Start-up and shutdown of the reference service process: flag errors, SIGTERM drain."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubedrill.refservice.testing import ServiceFailed, run_service
from kubedrill.timeline import Note, Timeline


def test_bad_flag_exits_2_naming_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kubedrill.refservice", "--service-time-ms", "-5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "argument --service-time-ms: expected a number ≥ 0" in proc.stderr
    assert proc.stdout == ""


def test_launcher_reports_a_service_that_cannot_start() -> None:
    with pytest.raises(ServiceFailed, match=r"exited with 2(.|\n)*--slots"), run_service(slots=0):
        pass


def test_sigterm_drains_in_flight_requests_then_exits_0() -> None:
    with (
        run_service(slots=4, service_time_ms=600, extra_args=["--drain-timeout-s", "5"]) as svc,
        ThreadPoolExecutor(3) as pool,
    ):
        in_flight = [pool.submit(svc.request, "POST", "/v1/infer") for _ in range(3)]
        time.sleep(0.15)
        t_signal = time.monotonic()
        svc.process.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        assert svc.request("GET", "/ready") == (503, {"ready": False, "reason": "draining"})
        status, body = svc.request("POST", "/v1/infer")
        assert (status, body["error"]) == (503, "draining")
        assert svc.request("GET", "/health")[0] == 200  # still alive while draining
        results = [f.result(timeout=5) for f in in_flight]
        assert svc.process.wait(timeout=5) == 0
        exited_after = time.monotonic() - t_signal
    assert [status for status, _ in results] == [200, 200, 200]
    assert exited_after < 1.5
    assert svc.returncode == 0
    assert svc.events[-1] == {
        "event": "stopped",
        "reason": "signal",
        "drained": True,
        "abandoned": 0,
    }


def test_drain_timeout_exits_1_and_says_what_was_abandoned() -> None:
    args = ["--drain-timeout-s", "0.3"]
    with (
        run_service(slots=1, service_time_ms=5000, extra_args=args) as svc,
        ThreadPoolExecutor(1) as pool,
    ):
        stuck = pool.submit(svc.request, "POST", "/v1/infer")
        time.sleep(0.15)
        t0 = time.monotonic()
        assert svc.stop(timeout_s=10) == 1
        assert time.monotonic() - t0 < 2.0
        with pytest.raises(OSError):  # the connection was closed under it
            stuck.result(timeout=5)
    assert svc.events[-1] == {
        "event": "stopped",
        "reason": "signal",
        "drained": False,
        "abandoned": 1,
    }


def test_lifecycle_and_fault_changes_land_on_the_timeline(tmp_path: Path) -> None:
    timeline = Timeline()
    spool = timeline.spool(tmp_path / "spool.jsonl")
    with run_service(
        slots=1, service_time_ms=1, extra_args=["--timeline-spool", str(spool)]
    ) as svc:
        svc.request("POST", "/admin/faults", {"error_ratio": 0.5})
        svc.request("DELETE", "/admin/faults")
    timeline.ingest()
    notes = timeline.select(Note)
    assert all(
        o.source.startswith("refservice/") and o.source.endswith(f"/{svc.pid}") for o in notes
    )
    texts = [o.data.text.split(": ", 1)[1] for o in notes]
    assert texts[0].startswith("listening on http://127.0.0.1:")
    assert "emulated model loaded; ready" in texts
    assert any(
        t.startswith('faults set: {"added_latency_ms": 0.0, "error_ratio": 0.5') for t in texts
    )
    assert texts[-3:] == [
        "faults cleared",
        "signal received: draining 0 in-flight request(s), up to 20s",
        "drained; stopping",
    ]
