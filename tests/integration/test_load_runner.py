"""Real Locust processes against a real HTTP server (the reference service when it is
importable, else a small aiohttp stand-in with the same stall semantics)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubedrill.cli import main
from kubedrill.core import latency
from kubedrill.load import LoadRun, LoadSpec, run_load, summarize
from kubedrill.timeline import LoadWindow, Timeline

# Stalls, as the reference service has them: windows [k·every, k·every + for), k ≥ 1,
# from the server's start; nothing is answered during one.
STUB = textwrap.dedent(
    """
    import asyncio, sys, time
    from aiohttp import web

    every, length, service, slots = (float(a) for a in sys.argv[1:5])
    t0 = time.monotonic()
    sem = asyncio.Semaphore(int(slots))

    def stall_left():
        t = time.monotonic() - t0
        if every <= 0 or t < every:
            return 0.0
        phase = t % every
        return length - phase if phase < length else 0.0

    async def infer(request):
        await request.read()
        async with sem:
            await asyncio.sleep(stall_left())
            await asyncio.sleep(service / 1000.0)
            await asyncio.sleep(stall_left())
        return web.json_response({"outputs": []})

    async def main():
        app = web.Application()
        app.router.add_post("/v1/infer", infer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@dataclass
class Service:
    url: str
    started: float


@contextlib.contextmanager
def service(
    service_ms: float = 10, slots: int = 64, every_s: float = 0, for_s: float = 0
) -> Iterator[Service]:
    stall = ["--stall-every-s", f"{every_s:g}", "--stall-for-s", f"{for_s:g}"] if every_s else []
    try:
        from kubedrill.refservice.testing import run_service  # type: ignore[import-not-found]
    except ImportError:
        run_service = None
    if run_service is not None:
        t0 = time.monotonic()
        with run_service(
            mode="emulated", slots=slots, service_time_ms=service_ms, extra_args=stall
        ) as svc:
            try:
                yield Service(svc.url, t0)
            finally:
                stop_and_close = svc.process.stdout
        if stop_and_close is not None:  # run_service leaves its stdout pipe open
            stop_and_close.close()
        return
    args = [f"{every_s:g}", f"{for_s:g}", f"{service_ms:g}", str(slots)]
    proc = subprocess.Popen([sys.executable, "-c", STUB, *args], stdout=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield Service(f"http://127.0.0.1:{port}", t0)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]


def group_alive(pgid: int) -> list[int]:
    """Pids still in process group ``pgid``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (d / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    out.append(int(d.name))
    return out


def test_windows_stream_into_the_timeline_mid_run(tmp_path: Path) -> None:
    """Two worker processes; the master relays their windows; the timeline fills as we go."""
    with service() as svc:
        tl = Timeline()
        spec = LoadSpec(url=svc.url, rate=100, duration=5, workers=2, request_timeout_s=2)
        with LoadRun(spec, tl, tmp_path) as run:
            mid = None
            deadline = time.monotonic() + 30
            while run.running and time.monotonic() < deadline:
                if len(run.windows()) >= 3:
                    mid = run.last(30)
                    break
                time.sleep(0.1)
            assert mid is not None, "no windows reached the timeline while Locust ran"
            assert run.running and mid.count > 0
            result = run.wait()
    assert result.outcome == "completed", result.log_tail
    s = result.summary
    assert s.intended == 500 and s.dropped == 0  # exactly rate x duration over both workers
    assert s.count == 500 and s.workers == 2 and s.error_count == 0
    assert len(tl.select(LoadWindow)) == len(result.windows) > len(result.per_window())


def test_open_model_charges_a_server_stall_to_every_request_it_delayed(tmp_path: Path) -> None:
    every, stall, d = 2.0, 0.5, 0.010
    with service(service_ms=d * 1000, every_s=every, for_s=stall) as svc:
        time.sleep(max(0.0, svc.started + every - time.monotonic()))  # stalls have begun
        result = run_load(LoadSpec(url=svc.url, rate=100, duration=4, request_timeout_s=3),
                          workdir=tmp_path)  # fmt: skip
    assert result.outcome == "completed", result.log_tail
    s = result.summary
    assert s.count == 400 and s.dropped == 0
    # 25 % of arrivals fall in a stall and wait (stall - u) + d: p_q = stall + d - (1-q)·every
    p95, p99 = stall + d - 0.05 * every, stall + d - 0.01 * every
    assert s.percentile("p50") < 0.1 * 1000
    assert s.percentile("p95") == pytest.approx(p95 * 1000, rel=0.2)
    assert s.percentile("p99") == pytest.approx(p99 * 1000, rel=0.15)
    assert s.percentile("max") >= 0.45 * 1000


FREEZE = textwrap.dedent(
    """
    import time
    import gevent.monkey
    from loadtests import plugin
    from loadtests.openmodel import OpenModelUser

    plugin.install()
    block = gevent.monkey.get_original("time", "sleep")  # blocks the whole process
    state = {"first": None, "frozen": False}

    class FreezingUser(OpenModelUser):
        endpoint = "/v1/infer"

        def send(self):
            now = time.monotonic()
            state["first"] = state["first"] or now
            if not state["frozen"] and now - state["first"] >= 1.5:
                state["frozen"] = True
                block(0.5)  # the load generator stalls: nothing is sent for 0.5 s
            self.client.post("/v1/infer", json={}, name="/v1/infer")
    """
)


def test_sends_delayed_by_a_stalled_generator_are_charged_from_intended_time(
    tmp_path: Path,
) -> None:
    """The server is fast; the client froze. Measured from the actual send, every request
    would look fast (coordinated omission); from the intended time they do not."""
    locustfile = tmp_path / "freeze.py"
    locustfile.write_text(FREEZE)
    with service() as svc:
        spec = LoadSpec(url=svc.url, rate=100, duration=3, locustfile=locustfile,
                        request_timeout_s=2)  # fmt: skip
        result = run_load(spec, workdir=tmp_path)
    assert result.outcome == "completed", result.log_tail
    s = result.summary
    assert s.count == 300 and s.dropped == 0
    # ~50 sends were due during the 0.5 s freeze: latency (0.5 - u) + service time
    assert s.percentile("max") >= 0.45 * 1000
    assert s.percentile("p95") >= 0.25 * 1000
    assert s.percentile("p50") < 0.1 * 1000
    hist = latency.merge(w.histogram for w in result.windows)
    slow = sum(
        i.count_at_value_iterated_to
        for i in hist.get_recorded_iterator()
        if i.value_iterated_to > 250_000
    )
    assert 15 <= slow <= 35  # about half of the ~50 delayed sends waited > 250 ms


def test_sends_beyond_the_in_flight_cap_are_dropped_and_counted(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    with service(service_ms=200, slots=8) as svc:
        main(["load", "--url", svc.url, "--rate", "100", "--duration", "2s",
              "--max-inflight", "2", "--timeout", "2s", "--json", str(out),
              "--workdir", str(tmp_path)])  # fmt: skip
    doc = json.loads(out.read_text())
    run = doc["run"]
    assert doc["outcome"] == "completed"
    assert run["intended"] == 200
    assert run["dropped"] >= 150  # 2 in flight x 5/s each ≈ 20 sent
    assert run["count"] == run["intended"] - run["dropped"]  # every sent request completed
    assert run["p50_ms"] >= 190  # the drops are not in the latency histogram
    assert sum(w["dropped"] for w in doc["windows"]) == run["dropped"]


def test_the_runner_kills_its_locust_processes_on_timeout(tmp_path: Path) -> None:
    with service() as svc:
        spec = LoadSpec(url=svc.url, users=2, duration=120, workers=2, hard_timeout=6.0)
        t0 = time.monotonic()
        run = LoadRun(spec, Timeline(), tmp_path).start()
        pgid = run.pid
        assert pgid is not None
        result = run.wait()
        elapsed = time.monotonic() - t0
    assert result.outcome == "timed_out"
    assert elapsed < 20
    assert group_alive(pgid) == []
    assert summarize(result.windows).count > 0  # what ran before the kill is kept


def test_leaving_the_block_on_an_error_stops_locust(tmp_path: Path) -> None:
    pids: list[int | None] = []

    def scenario(run: LoadRun) -> None:
        with run:
            pids.append(run.pid)
            time.sleep(2.5)
            raise RuntimeError("scenario failed")

    with service() as svc:
        spec = LoadSpec(url=svc.url, rate=20, duration=60, request_timeout_s=1)
        run = LoadRun(spec, Timeline(), tmp_path)
        with pytest.raises(RuntimeError, match="scenario failed"):
            scenario(run)
    (pgid,) = pids
    assert pgid is not None and group_alive(pgid) == []
    result = run.stop()
    assert result.outcome == "stopped" and result.log_path.exists()
