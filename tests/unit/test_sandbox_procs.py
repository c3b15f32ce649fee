"""Detached processes: started, found, stopped by pid and command line, never a stranger."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from kubedrill.sandbox.procs import (
    ComponentFailed,
    alive,
    free_ports,
    pids_under,
    read_pid,
    spawn,
    stop_pid,
    tail,
)


def _sleep(tmp_path: Path) -> tuple[int, Path]:
    # a private copy of sleep, so its command line names tmp_path as a sandbox process does
    exe = tmp_path / "bin" / "sleep"
    exe.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    pid = spawn(
        [str(exe), "300"],
        tmp_path / "logs" / "s.log",
        tmp_path / "pids" / "s.pid",
        os.environ,
        tmp_path,
    )
    return pid, exe


def test_spawn_detaches_and_stop_ends_it(tmp_path: Path) -> None:
    pid, _ = _sleep(tmp_path)
    assert read_pid(tmp_path / "pids" / "s.pid") == pid
    assert alive(pid, str(tmp_path))
    assert os.getsid(pid) != os.getsid(0)  # its own session: survives the CLI that started it
    assert pids_under(tmp_path, ["sleep"]) == [pid]
    assert stop_pid(pid, str(tmp_path), timeout_s=5)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    assert pids_under(tmp_path, ["sleep"]) == []


def test_a_pid_running_something_else_is_left_alone(tmp_path: Path) -> None:
    pid, _ = _sleep(tmp_path)
    try:
        assert stop_pid(pid, "/some/other/sandbox")  # "gone or not ours"
        assert alive(pid)
        assert pids_under(tmp_path, ["etcd"]) == []  # not one of our programs
    finally:
        stop_pid(pid, str(tmp_path))


def test_component_failed_names_component_log_tail_and_path(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "panic: boom\n")
    err = ComponentFailed("etcd", "exited during start", log)
    text = str(err)
    assert text.startswith("sandbox: etcd exited during start")
    assert "  | panic: boom" in text and "line 99" in text and "line 10\n" not in text
    assert text.endswith(f"full log: {log}")
    assert tail(tmp_path / "missing.log") == []
    assert "(log is empty)" in str(ComponentFailed("x", "failed", tmp_path / "missing.log"))


def test_free_ports_are_distinct_and_below_the_ephemeral_range() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(20000 <= p < low for p in ports)
