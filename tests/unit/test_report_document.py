"""Run document v3: the columnar timeline reads back exactly, v2 still reads, and a file
that is not a run document is one error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubedrill.core.errors import ConfigError
from kubedrill.report.document import load_run_document, scenario_timeline
from kubedrill.report.synthetic import synthetic_run
from kubedrill.report.writer import validate_run_document
from kubedrill.run.record import SCHEMA_VERSION, decode_timeline, encode_timeline
from kubedrill.timeline import Timeline

DATA = Path(__file__).parent / "report_data"


def test_the_columnar_timeline_round_trips_every_observation() -> None:
    doc = synthetic_run(duration_s=60, requests=3000, events=80, seed=5)
    validate_run_document(doc)
    assert doc["schema_version"] == SCHEMA_VERSION == 3
    raw = doc["scenarios"][0]["timeline"]
    assert raw["encoding"] == "columns/1"
    tl = Timeline.from_json(decode_timeline(raw))
    again = encode_timeline(tl)
    assert again == raw
    kinds = {s["kind"] for s in raw["series"]}
    assert {"load.window", "k8s", "chaos", "metric", "phase", "watch"} <= kinds


def test_a_v2_document_reads_and_gives_the_same_timeline(tmp_path: Path) -> None:
    v2 = load_run_document(DATA / "reference_slo.v2.run.json")
    v3 = load_run_document(DATA / "reference_slo.run.json")
    assert v2["schema_version"] == 2
    for a, b in zip(v2["scenarios"], v3["scenarios"], strict=True):
        ta, tb = scenario_timeline(a), scenario_timeline(b)
        assert ta is not None and tb is not None
        assert [o.to_dict() for o in ta.observations()] == [o.to_dict() for o in tb.observations()]


def test_the_compact_encoding_is_much_smaller_than_v2() -> None:
    doc = synthetic_run(duration_s=300, requests=30_000, events=1000, seed=2)
    raw = doc["scenarios"][0]["timeline"]
    v3 = len(json.dumps(raw, separators=(",", ":")))
    v2 = len(json.dumps(decode_timeline(raw), indent=1))
    assert v3 < 0.75 * v2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "a JSON run document"),
        ('{"schema_version": 9}', "schema_version"),
        ('{"schema_version": 3, "run_id": "x"}', "a valid run document"),
    ],
)
def test_a_bad_file_is_one_error_naming_it(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        load_run_document(path)
    assert str(path) in str(e.value)
