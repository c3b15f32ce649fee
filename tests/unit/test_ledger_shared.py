"""The busy ledger shared both ways: other entries summed, own excluded, own published."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest

from kubedrill.refservice.backends import EmulatedBackend, QueueFull
from kubedrill.refservice.config import ServiceConfig
from kubedrill.refservice.faults import Faults
from kubedrill.refservice.ledger import (
    device_entries,
    entry_name,
    is_safe_device,
    parse_entry,
    read_ledger,
    sanitize_writer_id,
    write_entry,
    writer_id,
)
from kubedrill.refservice.runtime import OwnEntry, Runtime, WorkMeter
from kubedrill.refservice.testing import run_service

NOW = 1_800_000_000.0


def entry(
    path: Path, busy: float, *, expires: float | None = None, fb: float | None = None
) -> None:
    doc: dict[str, object] = {"busy": busy}
    if expires is not None:
        doc["expires"] = expires
    if fb is not None:
        doc["fb_used_mib"] = fb
    path.write_text(json.dumps(doc))


# -- reading: the sum of the others ------------------------------------------------------


def test_sum_of_other_entries_excludes_own(tmp_path: Path) -> None:
    entry(tmp_path / "0", 0.3)  # a burner
    entry(tmp_path / "0@ns.a", 0.2)  # another pod on the device
    entry(tmp_path / "0@ns.me", 0.9)  # ours
    entry(tmp_path / "1@ns.a", 0.8)  # another device
    r = read_ledger(tmp_path, ["0"], NOW, exclude_writer="ns.me")
    assert (r.busy, r.status) == (pytest.approx(0.5), "ok")
    assert "0@ns.a=0.2" in r.detail
    assert "ns.me" not in r.detail
    # Without an own writer, every entry counts.
    assert read_ledger(tmp_path, ["0"], NOW).busy == pytest.approx(1.0)  # capped


def test_sum_is_capped_at_one(tmp_path: Path) -> None:
    entry(tmp_path / "0", 0.7)
    entry(tmp_path / "0@x", 0.6)
    assert read_ledger(tmp_path, ["0"], NOW, exclude_writer="me").busy == 1.0


def test_several_devices_take_the_busiest_sum(tmp_path: Path) -> None:
    entry(tmp_path / "0", 0.3)
    entry(tmp_path / "1", 0.2)
    entry(tmp_path / "1@b", 0.3)
    entry(tmp_path / "1@me", 0.9)
    r = read_ledger(tmp_path, ["0", "1"], NOW, exclude_writer="me")
    assert r.busy == pytest.approx(0.5)
    assert r.detail.startswith("device 1:")


def test_expired_and_malformed_entries_do_not_count(tmp_path: Path) -> None:
    entry(tmp_path / "0", 0.4, expires=NOW - 1)
    entry(tmp_path / "0@a", 0.25, expires=NOW + 5)
    (tmp_path / "0@b").write_text("{broken")
    assert read_ledger(tmp_path, ["0"], NOW).busy == pytest.approx(0.25)
    (tmp_path / "0@a").unlink()
    r = read_ledger(tmp_path, ["0"], NOW)
    assert (r.busy, r.status) == (0.0, "expired")  # the best status among the entries
    assert read_ledger(tmp_path, ["1"], NOW).status == "missing"


def test_temporaries_and_other_files_are_not_entries(tmp_path: Path) -> None:
    entry(tmp_path / ".0@me.abc.tmp", 0.9)  # a writer's temporary, before its rename
    (tmp_path / "assignments.json").write_text('{"0": {"pod": "p"}}')
    entry(tmp_path / "10", 0.9)  # device 10, not device 1
    assert read_ledger(tmp_path, ["0", "1"], NOW).busy == 0.0
    assert device_entries(tmp_path, "1", NOW) == {}


def test_single_file_mode_is_unchanged(tmp_path: Path) -> None:
    f = tmp_path / "busy"
    entry(f, 0.4)
    assert read_ledger(f, ["0", "1"], NOW, exclude_writer="me").busy == pytest.approx(0.4)
    assert read_ledger(f, [], NOW).busy == pytest.approx(0.4)


def test_unsafe_device_ids_are_never_looked_up(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    entry(tmp_path / "sub" / "0", 0.9)
    entry(tmp_path / "0@x", 0.9)
    for bad in ["../x", "sub/0", ".", "..", "0@x", ".0", ""]:
        assert not is_safe_device(bad)
        assert read_ledger(tmp_path, [bad], NOW).busy == 0.0
    assert is_safe_device("GPU-8f3a")


# -- entries: names, writer ids, fb_used_mib --------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"POD_NAMESPACE": "team-a", "POD_NAME": "svc-7d9c-x2k"}, "team-a.svc-7d9c-x2k"),
        ({"POD_NAME": "solo"}, "solo"),
        ({"POD_NAMESPACE": "ns"}, "pid42"),
        ({}, "pid42"),
        ({"POD_NAMESPACE": "ns", "POD_NAME": "a/b@c d"}, "ns.a_b_c_d"),
        ({"POD_NAMESPACE": "", "POD_NAME": "../../etc"}, "_._.._etc"),
    ],
)
def test_writer_id_from_env(env: dict[str, str], expected: str) -> None:
    assert writer_id(env, pid=42) == expected


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("ns.pod", "ns.pod"),
        ("", "anon"),
        (".hidden", "_hidden"),
        ("-flag", "_flag"),
        ("a/b\\c@d\ne", "a_b_c_d_e"),
        ("ünï", "_n_"),
        ("x" * 300, "x" * 128),
    ],
)
def test_sanitize_writer_id(raw: str, safe: str) -> None:
    assert sanitize_writer_id(raw) == safe
    assert "/" not in safe and "@" not in safe


def test_entry_names() -> None:
    assert entry_name("0") == "0"
    assert entry_name("0", "ns.pod") == "0@ns.pod"
    assert entry_name("1", "a/b") == "1@a_b"


@pytest.mark.parametrize(
    ("text", "busy", "fb", "status"),
    [
        ('{"busy": 0.2, "fb_used_mib": 1024}', 0.2, 1024.0, "ok"),
        ('{"busy": 0.2, "fb_used_mib": -5}', 0.2, 0.0, "ok"),
        ('{"busy": 0.2, "fb_used_mib": "lots"}', 0.0, 0.0, "malformed"),
        ('{"busy": 0.2, "fb_used_mib": true}', 0.0, 0.0, "malformed"),
        ('{"busy": 0.2, "fb_used_mib": null}', 0.2, 0.0, "ok"),
        ("0.3", 0.3, 0.0, "ok"),
        ("[1, 2]", 0.0, 0.0, "malformed"),
        ('{"busy": 1e999}', 0.0, 0.0, "malformed"),
        ("\x00\xff", 0.0, 0.0, "malformed"),
    ],
)
def test_parse_entry_memory_and_robustness(text: str, busy: float, fb: float, status: str) -> None:
    r = parse_entry(text, NOW)
    assert (r.busy, r.fb_used_mib, r.status) == (pytest.approx(busy), fb, status)


def test_write_entry_with_memory_and_explicit_clock(tmp_path: Path) -> None:
    write_entry(tmp_path / "0@me", 0.25, ttl_s=2.0, writer="me", fb_used_mib=512, now_wall=NOW)
    doc = json.loads((tmp_path / "0@me").read_text())
    assert doc == {"busy": 0.25, "expires": NOW + 2.0, "writer": "me", "fb_used_mib": 512.0}
    assert device_entries(tmp_path, "0", NOW)["0@me"].fb_used_mib == 512.0


# -- the own share: work meter and runtime ----------------------------------------------


def test_work_meter_counts_work_per_slot_over_the_window() -> None:
    m = WorkMeter(capacity=2, start=0.0)
    m.book(0.0, 1.0, 1.0)  # one slot busy all second
    assert m.take(1.0) == pytest.approx(0.5)
    m.book(1.0, 3.0, 2.0)  # spans two windows
    m.book(1.5, 2.0, 0.5)
    assert m.take(2.0) == pytest.approx((1.0 + 0.5) / 2)
    assert m.take(3.0) == pytest.approx(0.5)
    assert m.take(4.0) == 0.0
    assert m.take(4.0) == 0.0  # an empty window


def test_work_meter_counts_unstretched_work() -> None:
    m = WorkMeter(capacity=1, start=0.0)
    m.book(0.0, 1.0, 0.5)  # held a second, stretched 2x: half the device's time is ours
    assert m.take(1.0) == pytest.approx(0.5)
    assert m.take(5.0) == 0.0
    with pytest.raises(ValueError):
        WorkMeter(0, 0.0)


class Clocks:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = NOW

    def advance(self, s: float) -> None:
        self.mono += s
        self.wall += s


def make_runtime(tmp_path: Path, clocks: Clocks, devices: list[str]) -> Runtime:
    return Runtime(
        Faults(),
        seed=0,
        devices=devices,
        busy_ledger=tmp_path,
        clock=lambda: clocks.mono,
        wall_clock=lambda: clocks.wall,
        own=OwnEntry(writer="ns.me", label="refservice ns.me", fb_used_mib=1024, ttl_s=1.0),
        slots=2,
    )


def test_runtime_publishes_reads_and_removes_its_own_entries(tmp_path: Path) -> None:
    clocks = Clocks()
    entry(tmp_path / "0", 0.5, expires=NOW + 60)  # a burner
    rt = make_runtime(tmp_path, clocks, ["0", "1"])
    assert rt.busy == pytest.approx(0.5)
    # One request served with the device half taken: stretched 2x, half of it is work.
    start, end = rt.paused_interval(clocks.mono, 0.2)
    assert (start, end) == (100.0, pytest.approx(100.2))
    rt.meter_work(start, end, 0.2)
    clocks.advance(0.2)
    rt.poll_once()
    assert rt.own_busy == pytest.approx(0.1 / (2 * 0.2))
    assert rt.own_entries == ["0@ns.me", "1@ns.me"]
    doc = json.loads((tmp_path / "0@ns.me").read_text())
    assert doc["busy"] == pytest.approx(0.25)
    assert doc["expires"] == pytest.approx(clocks.wall + 1.0)
    assert doc["fb_used_mib"] == 1024
    assert rt.busy == pytest.approx(0.5)  # our own entry does not slow us
    rt.remove_own()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0"]


def test_a_request_refused_for_a_full_queue_is_not_metered(tmp_path: Path) -> None:
    clocks = Clocks()
    rt = make_runtime(tmp_path, clocks, ["0"])
    cfg = ServiceConfig(slots=1, max_queue=0, service_time_s=0.5)
    backend = EmulatedBackend(cfg, rt, lambda _n: None)

    async def two() -> None:
        first = asyncio.ensure_future(backend.infer(None))
        await asyncio.sleep(0)  # the first books the only slot
        with pytest.raises(QueueFull):
            await backend.infer(None)  # would have to wait: refused
        first.cancel()

    asyncio.run(two())
    clocks.advance(1.0)
    rt.poll_once()
    assert rt.own_busy == pytest.approx(0.5 / (2 * 1.0))  # the first request's work only


def test_runtime_writes_nothing_in_single_file_mode(tmp_path: Path) -> None:
    clocks = Clocks()
    f = tmp_path / "busy"
    entry(f, 0.2)
    rt = Runtime(
        Faults(),
        seed=0,
        devices=["0"],
        busy_ledger=f,
        own=OwnEntry("ns.me", "me", 0.0, 1.0),
        clock=lambda: clocks.mono,
        wall_clock=lambda: clocks.wall,
    )
    rt.meter_work(*rt.paused_interval(clocks.mono, 0.1), 0.1)
    clocks.advance(0.1)
    rt.poll_once()
    assert rt.own_busy == pytest.approx(0.8)  # metered (work: 1 - 0.2), not written
    assert rt.own_entries == []
    assert [p.name for p in tmp_path.iterdir()] == ["busy"]
    assert rt.busy == pytest.approx(0.2)


def test_runtime_survives_a_ledger_it_cannot_write(tmp_path: Path) -> None:
    clocks = Clocks()
    rt = make_runtime(tmp_path, clocks, ["0"])
    (tmp_path / "0@ns.me").mkdir()  # os.replace onto a directory fails
    clocks.advance(0.2)
    rt.poll_once()
    assert rt.own_entries == []
    rt.remove_own()


# -- the real service --------------------------------------------------------------------


def _poll(predicate: object, timeout_s: float = 10.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_service_publishes_its_share_and_removes_it_on_shutdown(tmp_path: Path) -> None:
    entry(tmp_path / "0", 0.2)  # a burner
    entry(tmp_path / "0@team.other", 0.3, fb=2048)  # another pod on the same device
    own = tmp_path / "0@team.svc-1"
    env = {"POD_NAMESPACE": "team", "POD_NAME": "svc-1", "NVIDIA_VISIBLE_DEVICES": "0"}
    args = ["--busy-ledger", str(tmp_path), "--busy-poll-ms", "50", "--fb-used-mib", "512"]
    with run_service(slots=1, service_time_ms=50, extra_args=args, env=env) as svc:
        _poll(own.exists)
        status, gpu = svc.request("GET", "/health/gpu")
        assert status == 200
        assert gpu["busy_fraction"] == pytest.approx(0.5)  # burner + other pod, not us
        assert gpu["ledger"]["writer_id"] == "team.svc-1"
        assert gpu["ledger"]["own_entries"] == ["0@team.svc-1"]
        doc = json.loads(own.read_text())
        assert doc["fb_used_mib"] == 512
        assert doc["writer"].startswith("refservice team.svc-1 pid ")
        assert doc["expires"] > time.time()

        # Keep the one slot busy; the published share rises.
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                svc.request("POST", "/v1/infer", {"inputs": [1]})

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        try:
            seen: list[float] = []

            def busy_enough() -> bool:
                seen.append(json.loads(own.read_text())["busy"])
                return seen[-1] > 0.3

            _poll(busy_enough)
            # With half the device taken by others, its slot does (1 - 0.5) of the work.
            assert max(seen) <= 0.5 + 1e-9
        finally:
            stop.set()
            for w in workers:
                w.join()
        metrics = svc.request("GET", "/metrics")[1]
        assert "refservice_gpu_own_busy_ratio" in metrics
    assert svc.returncode == 0
    assert not own.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "0@team.other"]
