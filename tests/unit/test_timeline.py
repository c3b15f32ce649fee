from __future__ import annotations

import json
import multiprocessing
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from kubedrill.core.errors import ConfigError
from kubedrill.core.types import Window
from kubedrill.timeline import (
    ChaosMarker,
    LoadWindow,
    MetricSample,
    Note,
    ObjectTransition,
    Payload,
    PayloadTypes,
    PhaseMark,
    SpoolWriter,
    Timeline,
    TimelineCorrupt,
)


def test_record_select_by_kind_and_window() -> None:
    tl = Timeline()
    tl.record(MetricSample("gpu_util", 0.5), t=10.0)
    tl.record(MetricSample("gpu_util", 0.9), t=20.0)
    tl.record(Note("hello"), t=15.0)
    assert [o.data.value for o in tl.select(MetricSample)] == [0.5, 0.9]
    assert [o.data.value for o in tl.select(MetricSample, Window(15, 25))] == [0.9]
    assert len(tl.select(Note)) == 1
    assert [o.t for o in tl.observations()] == [10.0, 15.0, 20.0]


def test_phases_and_open_phase() -> None:
    tl = Timeline()
    with tl.phase("baseline"):
        pass
    tl.record(PhaseMark("inject", "start"))
    phases = tl.phases()
    assert set(phases) == {"baseline", "inject"}
    assert phases["baseline"].duration >= 0
    assert phases["inject"].end <= time.monotonic()
    assert tl.window_for("recover") is None


def test_many_threads_append_without_loss() -> None:
    tl = Timeline()

    def produce(n: int) -> None:
        for i in range(500):
            tl.record(MetricSample("x", float(i), {"thread": str(n)}))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tl.select(MetricSample)) == 4000


def _child(path: str, n: int) -> None:
    with SpoolWriter(Path(path), f"child-{n}") as w:
        for i in range(200):
            w.write(ChaosMarker("pod_kill", f"pod-{i}", "injected"))


def test_child_processes_append_through_a_spool(tmp_path: Path) -> None:
    tl = Timeline()
    spool = tl.spool(tmp_path / "spool.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_child, args=(str(spool), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert tl.ingest() == 800
    assert tl.ingest() == 0  # read once
    sources = {o.source for o in tl.select(ChaosMarker)}
    assert sources == {f"child-{n}" for n in range(4)}
    # children stamp the same monotonic clock
    assert all(abs(o.t - time.monotonic()) < 60 for o in tl.select(ChaosMarker))


def test_partial_line_waits_for_the_next_ingest(tmp_path: Path) -> None:
    tl = Timeline()
    spool = tl.spool(tmp_path / "s.jsonl")
    line = json.dumps(
        {
            "t": 1.0,
            "wall": 2.0,
            "source": "w",
            "kind": "note",
            "data": {"text": "hi", "level": "info"},
        }
    )
    spool.write_text(line[:10])
    assert tl.ingest() == 0
    spool.write_text(line + "\n")
    assert tl.ingest() == 1


def test_json_roundtrip_keeps_every_kind() -> None:
    tl = Timeline()
    with tl.phase("inject"):
        tl.record(ObjectTransition("Deployment", "drill", "svc", "MODIFIED", {"ready_replicas": 2}))
        tl.record(LoadWindow("/v1/infer", 1.0, 2.0, 10, {"http_500": 1}, "HISTFAKE", 10, 0, "w1"))
        tl.record(ChaosMarker("pod_kill", "drill/svc-1", "injected"))
        tl.record(MetricSample("DCGM_FI_DEV_GPU_UTIL", 97.0, {"gpu": "0"}))
        tl.record(Note("warning", "warning"))
    doc = json.loads(json.dumps(tl.to_json()))
    back = Timeline.from_json(doc)
    assert [o.to_dict() for o in back.observations()] == [o.to_dict() for o in tl.observations()]


def test_unknown_kind_is_a_clear_error() -> None:
    doc = {
        "clock": {"mono0": 0, "wall0": 0},
        "observations": [{"t": 1, "wall": 1, "source": "", "kind": "bogus", "data": {}}],
    }
    with pytest.raises(ConfigError, match=r"observations\[0\]"):
        Timeline.from_json(doc)


def test_custom_payload_types_are_injectable() -> None:
    types = PayloadTypes()

    @types.register
    @dataclass(frozen=True, slots=True)
    class GpuXid(Payload):
        kind: ClassVar[str] = "gpu.xid"
        code: int

    tl = Timeline(types)
    tl.record(GpuXid(79))
    back = Timeline.from_json(tl.to_json(), types)
    assert back.select(GpuXid)[0].data.code == 79
    with pytest.raises(ValueError, match="already registered"):
        types.register(type("Other", (Note,), {"kind": "gpu.xid"}))


def test_two_threads_ingesting_at_once_fold_each_line_once(tmp_path: Path) -> None:
    tl = Timeline()
    spool = tl.spool(tmp_path / "s.jsonl")
    with SpoolWriter(spool, "child") as w:
        for i in range(2000):
            w.write(Note(f"n{i}"), t=float(i))
    barrier = threading.Barrier(8)

    def ingest() -> None:
        barrier.wait()
        for _ in range(5):
            tl.ingest()

    threads = [threading.Thread(target=ingest) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = [o.data.text for o in tl.select(Note)]
    assert len(texts) == 2000 and len(set(texts)) == 2000


def test_a_corrupt_spool_line_is_damaged_evidence_not_a_config_error(tmp_path: Path) -> None:
    tl = Timeline()
    spool = tl.spool(tmp_path / "s.jsonl")
    spool.write_bytes(b'{"t": 1, "wall": 1, "source": "x", "kind": "note", "data": {}}\n')
    with pytest.raises(TimelineCorrupt, match=r"s\.jsonl: line at byte 0"):
        tl.ingest()
    spool.write_bytes(b"not json\n")
    tl2 = Timeline()
    tl2.spool(spool)
    with pytest.raises(TimelineCorrupt, match="not JSON"):
        tl2.ingest()
    with pytest.raises(TimelineCorrupt):  # reported again, never skipped
        tl2.ingest()


def test_a_phase_name_is_used_once() -> None:
    tl = Timeline()
    with tl.phase("stall"):
        pass
    with pytest.raises(ValueError, match="already used"), tl.phase("stall"):
        pass
    assert list(tl.phases()) == ["stall"]


def test_out_of_order_records_are_selected_in_time_order() -> None:
    tl = Timeline()
    for t in (5.0, 1.0, 3.0, 2.0, 4.0):
        tl.record(Note(str(t)), t=t)
    tl.record(PhaseMark("x", "start"), t=2.5)
    assert [o.t for o in tl.select(Note)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [o.t for o in tl.select(Note, Window(2.0, 4.0))] == [2.0, 3.0]
    assert [o.t for o in tl.observations()] == [1.0, 2.0, 2.5, 3.0, 4.0, 5.0]
