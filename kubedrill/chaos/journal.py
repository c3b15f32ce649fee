"""The intent journal: before a fault is injected, a record that names its undo is on disk.

One JSON line per record, appended and fsynced (the file, and its folder when the file is
new) before the write to the cluster it announces:

* ``intent``: ``id``, ``cluster`` (the API server URL), ``owner`` (the process: host, pid,
  its start time, the run token),
  ``action``, ``target``, ``undo`` (a :class:`~kubedrill.chaos.undo.Undo` as data) and
  ``expires`` (wall seconds; the server-side markers carry the same expiry);
* ``done``: ``id`` and ``how`` (``rolled_back``, ``reconciled``, ``nothing_to_undo``).

An intent without its ``done`` is open. :meth:`Journal.orphans` gives the open intents
whose owner process is gone (same host, pid dead or reused) or whose expiry has passed:
what a SIGKILLed runner left, to be undone at the next start. A torn last line (the
runner died mid-write) is ignored; it announced nothing that happened, since the cluster
write comes only after the fsync. The file is compacted (only open intents kept, written
to a temporary file and renamed) when it grows past 1 MiB.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_JOURNAL", "Intent", "Journal", "Owner", "process_alive"]

DEFAULT_JOURNAL = Path("~/.cache/kubedrill/chaos/journal.jsonl")
_COMPACT_AT = 1 << 20


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), so
    a reused pid is not mistaken for the runner; "" where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def process_alive(host: str, pid: int, start: str) -> bool | None:
    """True/False for a process on this host; None (unknown) for another host."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _start_time(pid)
    return not (start and now and now != start)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who injected: this process, and a short token that goes on the server-side markers
    (labels allow 63 characters, so the token, not the whole identity, is what they carry)."""

    token: str
    host: str
    pid: int
    start: str
    run: str = ""

    @classmethod
    def me(cls, run: str = "") -> Owner:
        pid = os.getpid()
        token = "kd-" + uuid.uuid4().hex[:10]
        return cls(token, socket.gethostname(), pid, _start_time(pid), run)

    def alive(self) -> bool | None:
        return process_alive(self.host, self.pid, self.start)

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "host": self.host,
            "pid": self.pid,
            "start": self.start,
            "run": self.run,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Owner:
        return cls(
            str(d["token"]),
            str(d["host"]),
            int(d["pid"]),
            str(d.get("start", "")),
            str(d.get("run", "")),
        )


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    owner: Owner
    action: str
    target: str
    undo: Mapping[str, Any]
    expires: float
    t: float = field(default_factory=time.time)
    cluster: str = ""  # the API server it was meant for: another cluster's is not ours to undo

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "intent",
            "cluster": self.cluster,
            "id": self.id,
            "t": round(self.t, 3),
            "owner": self.owner.to_dict(),
            "action": self.action,
            "target": self.target,
            "undo": dict(self.undo),
            "expires": round(self.expires, 3),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Intent:
        return cls(
            str(d["id"]),
            Owner.from_dict(d["owner"]),
            str(d["action"]),
            str(d["target"]),
            dict(d["undo"]),
            float(d["expires"]),
            float(d.get("t", 0.0)),
            str(d.get("cluster", "")),
        )


class Journal:
    def __init__(self, path: Path | None = None) -> None:
        self.path = (path or DEFAULT_JOURNAL).expanduser()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if new:  # the file's name must survive a crash too
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def _append(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()
        with self._locked() as fd:
            os.write(fd, line)
            os.fsync(fd)
        if self.path.stat().st_size > _COMPACT_AT:
            self.compact()

    def intend(self, intent: Intent) -> None:
        """Record the intent durably; only then may the fault be injected."""
        self._append(intent.to_dict())

    def done(self, intent_id: str, how: str) -> None:
        self._append({"type": "done", "id": intent_id, "how": how, "t": round(time.time(), 3)})

    def _records(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for raw in lines:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue  # a torn line: written by a runner that died in os.write
            if isinstance(rec, dict) and "id" in rec:
                out.append(rec)
        return out

    def open_intents(self) -> list[Intent]:
        """Intents without a ``done``, oldest first."""
        intents: dict[str, Intent] = {}
        for rec in self._records():
            if rec.get("type") == "intent":
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    intents[str(rec["id"])] = Intent.from_dict(rec)
            elif rec.get("type") == "done":
                intents.pop(str(rec["id"]), None)
        return list(intents.values())

    def orphans(self, now: float | None = None) -> list[Intent]:
        """Open intents nobody will undo: the owner process is gone, or they expired."""
        now = time.time() if now is None else now
        return [i for i in self.open_intents() if i.owner.alive() is False or i.expires <= now]

    def compact(self) -> None:
        """Keep only the open intents (under the lock, so no append is lost)."""
        with self._locked():
            keep = self.open_intents()
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8") as f:
                for i in keep:
                    f.write(json.dumps(i.to_dict(), separators=(",", ":"), sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
