"""Local processes of the sandbox: start detached, check, stop, find leftovers, read logs.

Processes are started through ``sh -c 'exec … &'`` so they are not children of the
Python process that started them (no zombies, no ResourceWarning for a Popen that
outlives its object) and survive the ``kubedrill sandbox up`` that started them.
Every process is identified by its pid file and checked against its command line before
it is signalled, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from kubedrill.core.errors import ActionFailed

__all__ = [
    "ComponentFailed",
    "alive",
    "free_ports",
    "pids_under",
    "pids_with_env",
    "read_pid",
    "spawn",
    "stop_all",
    "stop_pid",
    "tail",
]

TAIL_LINES = 15


class ComponentFailed(ActionFailed):
    """A sandbox component did not start or become ready; names it, its log tail and path."""

    def __init__(self, component: str, what: str, log_path: Path | None) -> None:
        self.component = component
        self.log_path = log_path
        lines = tail(log_path) if log_path is not None else []
        body = "\n".join(f"  | {line}" for line in lines) or "  | (log is empty)"
        where = f"\nfull log: {log_path}" if log_path is not None else ""
        super().__init__(f"sandbox: {component} {what}; last lines of its log:\n{body}{where}")


def tail(path: Path | None, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a log (long lines cut), or [] when it cannot be read."""
    if path is None:
        return []
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line[:300] for line in text.splitlines()[-lines:]]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int, low: int = 20000) -> list[int]:
    """Distinct free loopback ports for servers to listen on, below the kernel's ephemeral
    range: a port taken from that range could be handed to an outgoing connection (say,
    kube-apiserver to etcd) before our server binds it. Each is checked by binding it."""
    high = max(low + 1000, _ephemeral_low())
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        while len(socks) < count:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", rng.randrange(low, high)))
            except OSError:
                s.close()
                continue
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn(
    argv: Sequence[str], log_path: Path, pid_path: Path, env: Mapping[str, str], cwd: Path
) -> int:
    """Start argv detached (own session, reparented to init), output to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    script = f"exec {shlex.join(argv)} >>{shlex.quote(str(log_path))} 2>&1 </dev/null & echo $!"
    out = subprocess.run(
        ["/bin/sh", "-c", script],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    ).stdout
    pid = int(out.strip())
    pid_path.write_text(f"{pid}\n")
    return pid


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def alive(pid: int | None, marker: str = "") -> bool:
    """True when pid runs (not a zombie) and its command line contains marker."""
    if pid is None or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if state in ("Z", "X"):
        return False
    return marker in _cmdline(pid) if marker else True


def stop_pid(pid: int | None, marker: str, timeout_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after timeout_s; only if the pid still runs marker's program.

    Returns True when the process is gone (or was never ours).
    """
    return stop_all([pid], marker, timeout_s) == []


def stop_all(pids: Iterable[int | None], marker: str, timeout_s: float = 10.0) -> list[int]:
    """Stop several processes at once (SIGTERM to all, SIGKILL to those left after
    timeout_s); a pid that no longer runs marker's program is not touched. Returns the
    pids that would not die."""
    ours = [p for p in pids if p is not None and alive(p, marker)]
    for pid in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for sig, wait_s in ((signal.SIGKILL, timeout_s), (None, 5.0)):
        deadline = time.monotonic() + wait_s
        while ours and time.monotonic() < deadline:
            for pid in ours:
                _reap(pid)
            ours = [p for p in ours if alive(p)]
            if ours:
                time.sleep(0.05)
        if sig is None:
            break
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    return ours


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pids_with_env(name: str, value: str) -> list[int]:
    """Running processes whose environment has name=value (how pod processes are marked)."""
    needle = f"{name}={value}".encode()
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in env and alive(int(entry.name)):
            out.append(int(entry.name))
    return sorted(out)


def pids_under(directory: Path, programs: Iterable[str]) -> list[int]:
    """Running processes of ours: a program named in programs whose command line mentions
    directory (a shell or an editor that merely has the path open is left alone)."""
    needle = str(directory)
    names = set(programs)
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if os.path.basename(argv0.decode(errors="replace")) not in names:
            continue
        if needle in _cmdline(pid) and alive(pid):
            out.append(pid)
    return sorted(out)
