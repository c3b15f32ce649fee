"""The kubedrill command as a user runs it: a real subprocess, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubedrill import __version__

KUBEDRILL = [sys.executable, "-m", "kubedrill.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBEDRILL, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_version() -> None:
    p = run("version")
    assert p.returncode == 0 and p.stdout.strip() == f"kubedrill {__version__}"


def test_validate_good_file(tmp_path: Path) -> None:
    f = tmp_path / "drill.yaml"
    f.write_text("target:\n  name: svc\n  namespace: prod\n")
    p = run("validate", "--config", str(f))
    assert p.returncode == 0 and "OK" in p.stdout


@pytest.mark.parametrize(
    ("text", "key"), [("run:\n  time_scale: fast\n", "run.time_scale"), ("tagret: {}\n", "tagret")]
)
def test_validate_malformed_file_exits_2_with_one_line(tmp_path: Path, text: str, key: str) -> None:
    f = tmp_path / "drill.yaml"
    f.write_text(text)
    p = run("validate", "--config", str(f))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(f) in lines[0] and key in lines[0]


def test_unknown_option_is_usage_error() -> None:
    assert run("validate", "--confgi", "x").returncode == 2


SCENARIOS = {
    "pass": "def test_a(drill):\n    drill.expect('p95_ms <= 100')\n    feed(drill, 10.0)\n",
    "fail": "def test_a(drill):\n    drill.expect('p95_ms <= 100')\n    feed(drill, 900.0)\n",
    "inconclusive": "def test_a(drill):\n    drill.expect('p95_ms <= 100', phase='inject')\n",
}
FEED = """
import time
from kubedrill.core import latency
from kubedrill.timeline import LoadWindow

def feed(drill, ms):
    h = latency.new_histogram()
    for _ in range(50):
        h.record_value(int(ms * 1000))
    now = time.monotonic()
    drill.record(LoadWindow("/v1/infer", now - 1, now, 50, {}, h.encode().decode(), 50, 0, "w"))
"""


@pytest.mark.parametrize(("outcome", "code"), [("pass", 0), ("fail", 1), ("inconclusive", 3)])
def test_run_exit_code_follows_the_verdict(tmp_path: Path, outcome: str, code: int) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_s.py").write_text(FEED + SCENARIOS[outcome])
    p = run("run", "--report-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert p.returncode == code, p.stdout + p.stderr
    assert f"kubedrill: {outcome.upper()}" in p.stdout
    runs = [d for d in (tmp_path / "reports").iterdir() if not d.is_symlink()]
    assert len(runs) == 1
    assert json.loads((runs[0] / "run.json").read_text())["verdict"] == outcome.upper()


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "drill.yaml"
    f.write_text("load:\n  workers: -1\n")
    p = run("run", "--config", str(f), cwd=tmp_path)
    assert p.returncode == 2 and "load.workers" in p.stderr
