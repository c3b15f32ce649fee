"""The busy ledger: parsing, lookup per device, stretch factor, device ids."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kubedrill.refservice.ledger import (
    device_ids,
    parse_entry,
    read_ledger,
    stretch_factor,
    write_entry,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "busy", "status"),
    [
        ('{"busy": 0.6}', 0.6, "ok"),
        ('{"busy": 0.6, "expires": 1800000010, "writer": "burner"}', 0.6, "ok"),
        ('{"busy": 0.6, "expires": 1799999990}', 0.0, "expired"),
        ("0.25\n", 0.25, "ok"),
        ("1.7", 1.0, "ok"),  # clamped
        ("-3", 0.0, "ok"),
        ("", 0.0, "malformed"),
        ("{not json", 0.0, "malformed"),
        ('{"load": 0.5}', 0.0, "malformed"),
        ('{"busy": "high"}', 0.0, "malformed"),
        ('{"busy": true}', 0.0, "malformed"),
        ('{"busy": 0.5, "expires": "soon"}', 0.0, "malformed"),
        ("nan", 0.0, "malformed"),
        ("busy", 0.0, "malformed"),
    ],
)
def test_parse_entry(text: str, busy: float, status: str) -> None:
    r = parse_entry(text, NOW)
    assert (r.busy, r.status) == (pytest.approx(busy), status)


def test_missing_file_and_no_ledger_read_as_not_busy(tmp_path: Path) -> None:
    assert read_ledger(None, ["0"], NOW).status == "off"
    r = read_ledger(tmp_path / "nope", ["0"], NOW)
    assert (r.busy, r.status) == (0.0, "missing")


def test_single_file_applies_to_all_devices(tmp_path: Path) -> None:
    f = tmp_path / "busy.json"
    write_entry(f, 0.4)
    assert read_ledger(f, ["0", "1"], time.time()).busy == pytest.approx(0.4)
    assert read_ledger(f, [], time.time()).busy == pytest.approx(0.4)


def test_directory_takes_the_busiest_of_own_devices(tmp_path: Path) -> None:
    write_entry(tmp_path / "0", 0.2)
    write_entry(tmp_path / "1", 0.7)
    write_entry(tmp_path / "2", 0.9)  # not ours
    now = time.time()
    assert read_ledger(tmp_path, ["0", "1"], now).busy == pytest.approx(0.7)
    assert read_ledger(tmp_path, ["0"], now).busy == pytest.approx(0.2)
    assert read_ledger(tmp_path, ["3"], now).status == "missing"
    assert read_ledger(tmp_path, ["../2"], now).busy == 0.0


def test_write_entry_is_atomic_json_with_expiry(tmp_path: Path) -> None:
    f = tmp_path / "0"
    write_entry(f, 0.5, ttl_s=30.0, writer="test")
    entry = json.loads(f.read_text())
    assert entry["busy"] == 0.5
    assert entry["writer"] == "test"
    assert entry["expires"] == pytest.approx(time.time() + 30.0, abs=5.0)
    assert [p.name for p in tmp_path.iterdir()] == ["0"]  # no temporary left behind
    write_entry(f, 0.5, ttl_s=-1.0)
    assert read_ledger(f, ["0"], time.time()).status == "expired"


def test_stretch_factor_is_one_over_idle_share_capped() -> None:
    assert stretch_factor(0.0) == 1.0
    assert stretch_factor(0.5) == pytest.approx(2.0)
    assert stretch_factor(0.75) == pytest.approx(4.0)
    assert stretch_factor(0.95) == pytest.approx(20.0)
    assert stretch_factor(1.0) == pytest.approx(20.0)
    assert stretch_factor(-1.0) == 1.0


@pytest.mark.parametrize(
    ("env", "ids"),
    [
        ({}, []),
        ({"NVIDIA_VISIBLE_DEVICES": "0,1"}, ["0", "1"]),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, ["all"]),
        ({"NVIDIA_VISIBLE_DEVICES": "void"}, []),
        ({"KUBEDRILL_GPU_DEVICES": " 3 , 4 ", "NVIDIA_VISIBLE_DEVICES": "0"}, ["3", "4"]),
        ({"KUBEDRILL_GPU_DEVICES": "none", "NVIDIA_VISIBLE_DEVICES": "0"}, []),
        ({"NVIDIA_VISIBLE_DEVICES": "GPU-8f3a"}, ["GPU-8f3a"]),
    ],
)
def test_device_ids(env: dict[str, str], ids: list[str]) -> None:
    assert device_ids(env) == ids
