"""The busy ledger: how the users of a (virtual) GPU tell each other how busy they keep it.

A ledger entry is one small file. Its content is either a JSON object::

    {"busy": 0.6, "expires": 1767225600.0, "writer": "gpu_bench burn pid 4242",
     "fb_used_mib": 1024}

or, for hand use (``echo 0.6 > ledger/0``), a bare number. ``busy`` is the fraction of
time the entry's writer keeps the device busy, in [0, 1]. ``expires`` (optional, Unix
seconds) is when the entry stops counting, so a writer that dies without cleaning up
stops slowing the others once its entry expires. ``fb_used_mib`` (optional) is the
device memory the writer holds. A missing, unreadable, malformed or expired file reads
as 0 (not busy). Writers replace the file atomically (write a temporary file in the
same directory, then rename it).

A ledger directory is shared per device: the entries of device ``D`` are the file ``D``
(a burner, or a hand-written number) and the files ``D@<writer id>``, one per user of the
device (a reference-service pod writes ``D@<namespace>.<pod>``). What slows one user is
the sum of every *other* entry of its device, capped at 1; with several devices, the
busiest. ``--busy-ledger PATH`` naming a file (not a directory) is one entry that
applies to all of the service's devices, and the service writes nothing there.
See docs/reference-service.md.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeGuard

__all__ = [
    "MAX_BUSY",
    "WRITER_SEP",
    "LedgerReading",
    "device_entries",
    "device_ids",
    "entry_name",
    "is_safe_device",
    "parse_entry",
    "read_ledger",
    "remove_entry",
    "sanitize_writer_id",
    "stretch_factor",
    "write_entry",
    "writer_id",
]

MAX_BUSY = 0.95
"""Busy fractions are capped here when stretching service time (1/(1-0.95) = 20x)."""

WRITER_SEP = "@"
"""Separates a device id from a writer id in an entry's file name: ``0@ns.pod``."""

_MAX_BYTES = 4096
_MAX_WRITER_ID = 128
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

Status = Literal["ok", "missing", "malformed", "expired", "off"]
_RANK: dict[Status, int] = {"ok": 4, "expired": 3, "malformed": 2, "missing": 1, "off": 0}


@dataclass(frozen=True, slots=True)
class LedgerReading:
    busy: float
    status: Status
    detail: str = ""
    fb_used_mib: float = 0.0


def parse_entry(text: str, now_wall: float) -> LedgerReading:
    """Read one ledger file's content; never raises."""
    text = text.strip()
    if not text:
        return LedgerReading(0.0, "malformed", "empty file")
    expires: float | None = None
    fb_used = 0.0
    raw: object
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return LedgerReading(0.0, "malformed", "not valid JSON")
        if not isinstance(obj, dict) or "busy" not in obj:
            return LedgerReading(0.0, "malformed", "JSON object without 'busy'")
        raw = obj["busy"]
        exp = obj.get("expires")
        if exp is not None:
            if not _is_finite(exp):
                return LedgerReading(0.0, "malformed", "'expires' is not a number")
            expires = float(exp)
        fb = obj.get("fb_used_mib")
        if fb is not None:
            if not _is_finite(fb):
                return LedgerReading(0.0, "malformed", "'fb_used_mib' is not a number")
            fb_used = max(0.0, float(fb))
    else:
        try:
            raw = float(text)
        except ValueError:
            return LedgerReading(0.0, "malformed", "neither JSON nor a number")
    if not _is_finite(raw):
        return LedgerReading(0.0, "malformed", "'busy' is not a finite number")
    if expires is not None and expires <= now_wall:
        return LedgerReading(0.0, "expired", f"expired {now_wall - expires:.1f}s ago")
    return LedgerReading(min(1.0, max(0.0, float(raw))), "ok", fb_used_mib=fb_used)


def _is_finite(v: object) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _read_one(path: Path, now_wall: float) -> LedgerReading:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_BYTES)
    except FileNotFoundError:
        return LedgerReading(0.0, "missing", str(path))
    except OSError as e:
        return LedgerReading(0.0, "malformed", f"{path}: {e.strerror}")
    return parse_entry(data.decode("utf-8", "replace"), now_wall)


def is_safe_device(device: str) -> bool:
    """Whether ``device`` can name a ledger entry (no path separator, no ``@``, not hidden)."""
    return bool(device) and not device.startswith(".") and _UNSAFE.sub("", device) == device


def sanitize_writer_id(text: str) -> str:
    """A writer id safe in a file name: ``[A-Za-z0-9_.-]`` kept, anything else (``/``,
    ``@``, spaces, non-ASCII) becomes ``_``, a leading ``.`` or ``-`` too; at most 128
    characters; empty becomes ``anon``."""
    out = _UNSAFE.sub("_", text)[:_MAX_WRITER_ID]
    if out[:1] in (".", "-"):
        out = "_" + out[1:]
    return out or "anon"


def writer_id(env: Mapping[str, str], pid: int | None = None) -> str:
    """This process's writer id: ``<POD_NAMESPACE>.<POD_NAME>`` when both are set (the pod
    runner sets them), ``<POD_NAME>`` with only that one, else ``pid<N>``; sanitized."""
    ns = env.get("POD_NAMESPACE", "").strip()
    pod = env.get("POD_NAME", "").strip()
    if pod:
        return sanitize_writer_id(f"{ns}.{pod}" if ns else pod)
    return sanitize_writer_id(f"pid{os.getpid() if pid is None else pid}")


def entry_name(device: str, writer: str | None = None) -> str:
    """The file name of ``writer``'s entry for ``device`` (``device`` alone: the burner's)."""
    return device if writer is None else f"{device}{WRITER_SEP}{sanitize_writer_id(writer)}"


def _entry_files(directory: Path) -> dict[str, list[str]]:
    """Entry file names in ``directory``, by device (hidden files are temporaries)."""
    by_device: dict[str, list[str]] = {}
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                by_device.setdefault(e.name.split(WRITER_SEP, 1)[0], []).append(e.name)
    except OSError:
        return {}
    return by_device


def device_entries(
    directory: Path, device: str, now_wall: float, *, names: Sequence[str] | None = None
) -> dict[str, LedgerReading]:
    """Every entry of ``device`` in a ledger directory, by file name (never raises)."""
    if not is_safe_device(device):
        return {}
    if names is None:
        names = _entry_files(directory).get(device, [])
    return {n: _read_one(directory / n, now_wall) for n in sorted(names)}


def _combine(device: str, entries: Mapping[str, LedgerReading]) -> LedgerReading:
    """The sum of ``entries`` for one device, capped at 1, with the best status among them."""
    if not entries:
        return LedgerReading(0.0, "missing", f"no entry for device {device}")
    ok = {n: r for n, r in entries.items() if r.status == "ok"}
    if not ok:
        name, worst = max(entries.items(), key=lambda kv: _RANK[kv[1].status])
        return LedgerReading(0.0, worst.status, f"{name}: {worst.detail}")
    busy = min(1.0, sum(r.busy for r in ok.values()))
    fb = sum(r.fb_used_mib for r in ok.values())
    parts = ", ".join(f"{n}={r.busy:g}" for n, r in ok.items())
    return LedgerReading(busy, "ok", f"device {device}: {parts}", fb)


def read_ledger(
    path: Path | None,
    devices: Sequence[str],
    now_wall: float,
    *,
    exclude_writer: str | None = None,
) -> LedgerReading:
    """How busy others keep the devices of a service on ``devices``.

    ``path`` a file: that one entry, for every device. ``path`` a directory: for each
    device, the sum (capped at 1) of its entries (``<device>`` and ``<device>@<writer>``)
    except ``<device>@<exclude_writer>`` (the reader's own); then the busiest device.
    """
    if path is None:
        return LedgerReading(0.0, "off")
    if not path.is_dir():
        return _read_one(path, now_wall)
    safe = [d for d in devices if is_safe_device(d)]
    if not safe:
        return LedgerReading(0.0, "missing", "no device ids to look up")
    files = _entry_files(path)
    own = None if exclude_writer is None else sanitize_writer_id(exclude_writer)
    readings = []
    for d in safe:
        names = [n for n in files.get(d, []) if own is None or n != entry_name(d, own)]
        readings.append(_combine(d, device_entries(path, d, now_wall, names=names)))
    return max(readings, key=lambda r: (r.busy, _RANK[r.status]))


def stretch_factor(busy: float) -> float:
    """How much longer a request takes when the device is ``busy`` elsewhere: 1/(1-f)."""
    return 1.0 / (1.0 - min(MAX_BUSY, max(0.0, busy)))


def write_entry(
    path: Path,
    busy: float,
    ttl_s: float | None = None,
    writer: str = "",
    *,
    fb_used_mib: float | None = None,
    now_wall: float | None = None,
) -> None:
    """Atomically write a ledger entry (the service's own, tests', Python burners')."""
    entry: dict[str, object] = {"busy": float(busy)}
    if ttl_s is not None:
        entry["expires"] = (time.time() if now_wall is None else now_wall) + ttl_s
    if writer:
        entry["writer"] = writer
    if fb_used_mib is not None:
        entry["fb_used_mib"] = float(fb_used_mib)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_entry(path: Path) -> bool:
    """Remove an entry; False when it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def device_ids(env: Mapping[str, str]) -> list[str]:
    """Device ids from ``KUBEDRILL_GPU_DEVICES``, else ``NVIDIA_VISIBLE_DEVICES``.

    Comma-separated; ``none``/``void``/empty mean no devices. Unset: ``[]``.
    """
    for var in ("KUBEDRILL_GPU_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        value = env.get(var)
        if value is None:
            continue
        value = value.strip()
        if value.lower() in ("", "none", "void"):
            return []
        return [d.strip() for d in value.split(",") if d.strip()]
    return []
