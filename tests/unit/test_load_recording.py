"""Window recording on the Locust side and its spool format, read back by the Timeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubedrill.core import latency
from kubedrill.timeline import LoadWindow, SpoolWriter, Timeline
from loadtests.recording import Recorder, SpoolFile, classify_error, spool_line
from loadtests.safety import check_target, is_loopback_url


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_requests_count_in_the_window_of_their_intended_send_time() -> None:
    clock = Clock(100.2)
    rec = Recorder(1.0, worker="w1", clock=clock)
    rec.intended("/v1/infer", 100.3)
    rec.record("/v1/infer", 0.012, None, t=100.312, intended=100.3)
    rec.intended("/v1/infer", 100.9)
    rec.dropped("/v1/infer", 101.5)
    assert rec.take(now=100.99) == []  # nothing finished yet
    clock.t = 101.05
    assert rec.take() == []  # window 100 waits for the send due at 100.9, still in flight
    # it completes in the next window, 0.5 s late: charged to the window it was due in
    rec.record("/v1/infer", 0.5, "http_503", t=101.4, intended=100.9)
    (w,) = rec.take()
    assert w["start"] == 100.2  # clipped to when recording started
    assert w["end"] == 101.0
    assert (w["count"], w["errors"], w["intended"], w["dropped"]) == (2, {"http_503": 1}, 2, 0)
    assert w["worker"] == "w1"
    h = latency.decode(w["histogram"])
    assert h.get_total_count() == 2 and h.get_max_value() == pytest.approx(500_000, rel=1e-3)
    clock.t = 101.7
    (last,) = rec.take(final=True)
    assert (last["start"], last["end"]) == (101.0, 101.7)  # the last window ends now
    assert (last["count"], last["errors"], last["intended"], last["dropped"]) == (0, {}, 1, 1)
    assert rec.take(final=True) == []


def test_closed_model_requests_count_where_they_completed() -> None:
    clock = Clock(100.0)
    rec = Recorder(1.0, worker="w1", clock=clock)
    rec.record("/v1/infer", 0.5, None, t=101.1)
    clock.t = 102.0
    (w,) = rec.take()
    assert (w["start"], w["count"]) == (101.0, 1)


def test_a_send_that_made_no_request_releases_its_window() -> None:
    clock = Clock(10.0)
    rec = Recorder(1.0, clock=clock)
    rec.intended("e", 10.5)
    clock.t = 11.5
    assert rec.take() == []
    rec.settle("e", 10.5)
    (w,) = rec.take()
    assert (w["count"], w["intended"]) == (0, 1)


def test_late_intended_sends_land_in_an_open_window() -> None:
    """A scheduler running behind must not lose counts into flushed windows."""
    clock = Clock(10.0)
    rec = Recorder(1.0, clock=clock)
    clock.t = 12.2
    assert rec.take() == []  # windows 10 and 11 are closed (and were empty)
    rec.intended("e", 10.5)  # due long ago
    (w,) = rec.take(final=True)
    assert w["intended"] == 1 and w["start"] == 12.0


def test_latency_is_clamped_to_the_histogram_range() -> None:
    rec = Recorder(1.0, clock=Clock(0.0))
    rec.record("e", 0.0, t=0.1)
    rec.record("e", 10_000.0, t=0.2)  # beyond an hour
    (w,) = rec.take(final=True)
    h = latency.decode(w["histogram"])
    assert h.get_total_count() == 2 and h.get_min_value() == 1


class Resp:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class Timeout(Exception):  # gevent.Timeout and geventhttpclient timeouts are named so
    pass


class HTTPConnectionClosed(Exception):
    pass


class CatchResponseError(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "resp", "kind"),
    [
        (None, Resp(200), None),
        (RuntimeError("bad status"), Resp(500), "http_500"),
        (RuntimeError("bad status"), Resp(429), "http_429"),
        (Timeout(), Resp(0), "timeout"),
        (TimeoutError(), None, "timeout"),
        (ConnectionRefusedError(), Resp(0), "connection"),
        (HTTPConnectionClosed(), None, "connection"),
        (CatchResponseError("wrong body"), Resp(200), "failure"),
        (ValueError("?"), None, "other"),
    ],
)
def test_errors_are_classified_by_kind(exc: Exception | None, resp: object, kind: str) -> None:
    assert classify_error(exc, resp) == kind


def test_spool_lines_are_what_spoolwriter_writes(tmp_path: Path) -> None:
    rec = Recorder(1.0, worker="w", clock=Clock(5.0))
    rec.record("/x", 0.25, "timeout", t=5.5)
    (w,) = rec.take(final=True, now=6.0)
    theirs = tmp_path / "theirs.jsonl"
    with SpoolWriter(theirs, "load") as writer:
        writer.write(LoadWindow(**w), t=w["end"])
    ours = spool_line(w, "load", wall_offset=0.0)
    a, b = theirs.read_text().strip(), ours.decode().strip()
    da, db = json.loads(a), json.loads(b)
    da.pop("wall"), db.pop("wall")
    assert da == db
    assert list(json.loads(a)) == list(json.loads(b))  # same keys, same order


def test_timeline_ingests_the_spool_file(tmp_path: Path) -> None:
    tl = Timeline()
    path = tl.spool(tmp_path / "load.jsonl")
    spool = SpoolFile(str(path), source="load:abc")
    rec = Recorder(1.0, worker="w", clock=Clock(5.0))
    rec.intended("/x", 5.1)
    rec.record("/x", 0.02, t=5.2)
    spool.write(rec.take(final=True, now=5.9))
    spool.close()
    assert tl.ingest() == 1
    (obs,) = tl.select(LoadWindow, source="load:abc")
    assert obs.t == 5.9 and obs.data.count == 1 and obs.data.intended == 1


def test_only_loopback_is_a_default_target() -> None:
    assert is_loopback_url("http://127.0.0.1:8000")
    assert is_loopback_url("http://127.3.4.5")
    assert is_loopback_url("http://localhost:80/x")
    assert is_loopback_url("http://[::1]:8000")
    assert not is_loopback_url("https://example.com")
    assert not is_loopback_url("http://10.0.0.1")
    assert check_target(None, ["http://127.0.0.1:8000", None]) is None
    assert "pass --host" in (check_target(None, ["https://example.com"]) or "")
    assert check_target("https://example.com", ["https://example.com"]) is None


def test_the_fast_path_keeps_endpoints_and_windows_apart() -> None:
    rec = Recorder(1.0, clock=Clock(0.0))
    for i in range(300):  # 3 windows, 2 endpoints interleaved
        rec.record("/a" if i % 3 else "/b", 0.001, t=i / 100)
    got = {(w["endpoint"], w["start"]): w["count"] for w in rec.take(final=True, now=3.0)}
    assert got == {
        ("/a", 0.0): 66, ("/b", 0.0): 34,
        ("/a", 1.0): 67, ("/b", 1.0): 33,
        ("/a", 2.0): 67, ("/b", 2.0): 33,
    }  # fmt: skip
