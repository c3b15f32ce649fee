"""Busy-ledger entries, as the burner writes them (standard library only).

The format is kubedrill's busy ledger (docs/reference-service.md), re-implemented here
because gpu_bench never imports kubedrill: one file per device, named by the device id,
holding ``{"busy": f, "expires": unix_s, "writer": "...", "fb_used_mib": n}``, replaced
atomically (a temporary file in the same directory, then a rename).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

__all__ = ["is_safe_device", "remove_entry", "write_entry"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def is_safe_device(device: str) -> bool:
    """Whether ``device`` can name a ledger entry: ``[A-Za-z0-9_.-]``, not hidden."""
    return bool(device) and not device.startswith(".") and not _UNSAFE.search(device)


def write_entry(
    path: Path,
    busy: float,
    *,
    expires: float,
    writer: str,
    fb_used_mib: float | None = None,
) -> None:
    """Atomically write one entry (temporary ``.<name>.*.tmp`` beside it, then rename)."""
    entry: dict[str, object] = {"busy": float(busy), "expires": expires, "writer": writer}
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
