"""The container-runtime side of `pods/log` in the sandbox: CRI log records, the pump,
kwok's Logs object (the API server -> kwok path runs in tests/integration)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from kubedrill.sandbox.kubeletlogs import MAX_LINE, LogPump, cri_line, cri_log_path, logs_doc

CRI = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")


def test_cri_records_full_and_partial() -> None:
    assert cri_line(0.5, "stdout", b"hi\n") == b"1970-01-01T00:00:00.500000000Z stdout F hi\n"
    assert cri_line(0.0, "stderr", b"part") == b"1970-01-01T00:00:00.000000000Z stderr P part\n"


def test_pump_writes_plain_and_cri_logs_of_a_real_process(tmp_path: Path) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); print('x' * 20000)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    plain, cri = tmp_path / "c.log", cri_log_path(tmp_path, "c", 0)
    pump = LogPump(plain, cri)
    pump.start({"stdout": proc.stdout, "stderr": proc.stderr})
    proc.wait()
    pump.wait()
    assert sorted(plain.read_bytes().splitlines()) == sorted([b"out", b"err", b"x" * 20000])
    records = [CRI.match(line) for line in cri.read_bytes().splitlines()]
    assert all(records)
    got = [(m.group(1), m.group(2), m.group(3)) for m in records if m]
    assert (b"stderr", b"F", b"err") in got and (b"stdout", b"F", b"out") in got
    long = [g for g in got if g[2].startswith(b"x")]  # split at 16 KiB, as a runtime does
    assert [g[1] for g in long] == [b"P", b"F"] and len(long[0][2]) == MAX_LINE


def test_logs_object_is_owned_by_the_pod() -> None:
    doc = logs_doc("ns", "p", "u1", "c", Path("/s/c/1.log"), Path("/s/c/0.log"))
    assert doc["kind"] == "Logs" and doc["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert doc["spec"]["logs"] == [
        {"containers": ["c"], "logsFile": "/s/c/1.log", "previousLogsFile": "/s/c/0.log"}
    ]
