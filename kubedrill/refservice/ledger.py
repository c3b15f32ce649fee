"""The busy ledger: how an external GPU-saturation burner tells emulated pods it is busy.

A ledger entry is one small file per device. Its content is either a JSON object::

    {"busy": 0.6, "expires": 1767225600.0, "writer": "gpu_bench burner pid 4242"}

or, for hand use (``echo 0.6 > ledger/0``), a bare number. ``busy`` is the fraction of
time the device is taken by someone else, in [0, 1]. ``expires`` (optional, Unix
seconds) is when the entry stops counting, so a burner that dies without cleaning up
stops slowing the service once its entry expires. A missing, unreadable, malformed or
expired file reads as 0 (not busy). Writers replace the file atomically (write a
temporary file in the same directory, then rename it).

``--busy-ledger PATH``: when PATH is a directory, the service reads ``PATH/<device id>``
for each of its device ids and takes the largest value; otherwise PATH is one file that
applies to all of its devices. See docs/reference-service.md.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "MAX_BUSY",
    "LedgerReading",
    "device_ids",
    "parse_entry",
    "read_ledger",
    "stretch_factor",
    "write_entry",
]

MAX_BUSY = 0.95
"""Busy fractions are capped here when stretching service time (1/(1-0.95) = 20x)."""

_MAX_BYTES = 4096

Status = Literal["ok", "missing", "malformed", "expired", "off"]


@dataclass(frozen=True, slots=True)
class LedgerReading:
    busy: float
    status: Status
    detail: str = ""


def parse_entry(text: str, now_wall: float) -> LedgerReading:
    """Read one ledger file's content; never raises."""
    text = text.strip()
    if not text:
        return LedgerReading(0.0, "malformed", "empty file")
    expires: float | None = None
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
            if isinstance(exp, bool) or not isinstance(exp, int | float):
                return LedgerReading(0.0, "malformed", "'expires' is not a number")
            expires = float(exp)
    else:
        try:
            raw = float(text)
        except ValueError:
            return LedgerReading(0.0, "malformed", "neither JSON nor a number")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return LedgerReading(0.0, "malformed", "'busy' is not a finite number")
    if expires is not None and expires <= now_wall:
        return LedgerReading(0.0, "expired", f"expired {now_wall - expires:.1f}s ago")
    return LedgerReading(min(1.0, max(0.0, float(raw))), "ok")


def _read_one(path: Path, now_wall: float) -> LedgerReading:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_BYTES)
    except FileNotFoundError:
        return LedgerReading(0.0, "missing", str(path))
    except OSError as e:
        return LedgerReading(0.0, "malformed", f"{path}: {e.strerror}")
    return parse_entry(data.decode("utf-8", "replace"), now_wall)


def read_ledger(path: Path | None, devices: Sequence[str], now_wall: float) -> LedgerReading:
    """The busy fraction for a service on ``devices`` (the largest of its entries)."""
    if path is None:
        return LedgerReading(0.0, "off")
    if not path.is_dir():
        return _read_one(path, now_wall)
    readings = [_read_one(path / d, now_wall) for d in devices if d and "/" not in d]
    if not readings:
        return LedgerReading(0.0, "missing", "no device ids to look up")
    return max(readings, key=lambda r: (r.busy, r.status == "ok"))


def stretch_factor(busy: float) -> float:
    """How much longer a request takes when the device is ``busy`` elsewhere: 1/(1-f)."""
    return 1.0 / (1.0 - min(MAX_BUSY, max(0.0, busy)))


def write_entry(path: Path, busy: float, ttl_s: float | None = None, writer: str = "") -> None:
    """Atomically write a ledger entry (for tests and Python burners)."""
    entry: dict[str, object] = {"busy": float(busy)}
    if ttl_s is not None:
        entry["expires"] = time.time() + ttl_s
    if writer:
        entry["writer"] = writer
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
