"""Fault knobs of the reference service: their values, validation and schedule math.

Everything here is pure (no clock, no I/O) so it can be tested exactly. Times are
seconds since the service's epoch (its start on the monotonic clock), so a stall
schedule is fixed for the life of the process and a benchmark can predict it.

Windows: a schedule ``(every, length)`` is "on" during ``[k·every, k·every + length)``
for ``k = 1, 2, 3…``: the first window opens one period after start, never at start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "FaultError",
    "Faults",
    "ReadyFlap",
    "Stall",
    "merge_faults",
    "paused_interval",
    "window_remaining",
]

# Upper bounds that catch unit mistakes (ms given as s) without limiting real use.
MAX_ADDED_LATENCY_MS = 600_000.0
MAX_PERIOD_S = 86_400.0


class FaultError(ValueError):
    """A fault knob payload was invalid; names the key and what was expected."""

    def __init__(self, key: str, expected: str, got: object = None) -> None:
        self.key = key
        self.expected = expected
        self.got = got
        got_part = "" if got is None else f" (got {_short(got)})"
        super().__init__(f"{key}: expected {expected}{got_part}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


@dataclass(frozen=True, slots=True)
class Stall:
    """Every ``every_s`` seconds, for ``for_s`` seconds, no request is served."""

    every_s: float
    for_s: float

    def to_dict(self) -> dict[str, float]:
        return {"every_s": self.every_s, "for_s": self.for_s}


@dataclass(frozen=True, slots=True)
class ReadyFlap:
    """Every ``period_s`` seconds, ``/ready`` answers 503 for ``down_s`` seconds."""

    period_s: float
    down_s: float

    def to_dict(self) -> dict[str, float]:
        return {"period_s": self.period_s, "down_s": self.down_s}


@dataclass(frozen=True, slots=True)
class Faults:
    """The full set of knobs; the default is "no fault"."""

    added_latency_ms: float = 0.0
    error_ratio: float = 0.0
    stall: Stall | None = None
    ready_flap: ReadyFlap | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "added_latency_ms": self.added_latency_ms,
            "error_ratio": self.error_ratio,
            "stall": None if self.stall is None else self.stall.to_dict(),
            "ready_flap": None if self.ready_flap is None else self.ready_flap.to_dict(),
        }

    def stall_remaining(self, t: float) -> float:
        """Seconds until the stall in progress at ``t`` ends (0 when none is)."""
        if self.stall is None:
            return 0.0
        return window_remaining(t, self.stall.every_s, self.stall.for_s)

    def paused_interval(self, t: float, duration: float) -> tuple[float, float]:
        """Start and end of ``duration`` seconds of work ready at ``t``, paused by stalls."""
        if self.stall is None:
            return t, t + duration
        return paused_interval(t, duration, self.stall.every_s, self.stall.for_s)

    def ready_flapped_down(self, t: float) -> bool:
        if self.ready_flap is None:
            return False
        return window_remaining(t, self.ready_flap.period_s, self.ready_flap.down_s) > 0.0


def window_remaining(t: float, every_s: float, length_s: float) -> float:
    """Time left in the window ``[k·every_s, k·every_s + length_s)``, k ≥ 1, holding ``t``.

    Returns 0.0 when ``t`` is in no window. ``t`` is seconds since the epoch.
    """
    if every_s <= 0.0 or length_s <= 0.0 or t < every_s:
        return 0.0
    phase = math.fmod(t, every_s)
    return length_s - phase if phase < length_s else 0.0


def paused_interval(
    t: float, duration: float, every_s: float, length_s: float
) -> tuple[float, float]:
    """When work of ``duration`` seconds, ready at ``t``, starts and ends under a stall schedule.

    It cannot start inside a window (it starts when the window ends), and a window that
    opens while it runs pauses it for the window's length, so its end is never inside a
    window either: nothing is served, and nothing answered, during a stall.
    """
    start = t + window_remaining(t, every_s, length_s)
    end = start + duration
    if every_s <= 0.0 or length_s <= 0.0:
        return start, end
    w = max(1.0, math.floor(start / every_s) + 1.0) * every_s  # next window start after `start`
    while w < end:
        end += length_s
        w += every_s
    return start, end


def _number(key: str, value: object, lo: float, hi: float, *, lo_open: bool = False) -> float:
    expected = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(key, expected, value)
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        raise FaultError(key, expected, value)
    return v


def _object(key: str, value: object, keys: tuple[str, str]) -> Mapping[str, object]:
    expected = f"an object with keys {keys[0]!r} and {keys[1]!r}, or null"
    if not isinstance(value, Mapping):
        raise FaultError(key, expected, value)
    for k in value:
        if k not in keys:
            raise FaultError(f"{key}.{k}", f"one of the keys {', '.join(keys)}")
    for k in keys:
        if k not in value:
            raise FaultError(f"{key}.{k}", "a number (the key is required)")
    return value


def _parse_stall(value: object) -> Stall | None:
    if value is None:
        return None
    obj = _object("stall", value, ("every_s", "for_s"))
    every = _number("stall.every_s", obj["every_s"], 0.0, MAX_PERIOD_S, lo_open=True)
    length = _number("stall.for_s", obj["for_s"], 0.0, MAX_PERIOD_S)
    if length >= every:
        raise FaultError("stall.for_s", f"a number below stall.every_s ({every:g})", length)
    return None if length == 0.0 else Stall(every, length)


def _parse_flap(value: object) -> ReadyFlap | None:
    if value is None:
        return None
    obj = _object("ready_flap", value, ("period_s", "down_s"))
    period = _number("ready_flap.period_s", obj["period_s"], 0.0, MAX_PERIOD_S, lo_open=True)
    down = _number("ready_flap.down_s", obj["down_s"], 0.0, MAX_PERIOD_S)
    if down >= period:
        raise FaultError(
            "ready_flap.down_s", f"a number below ready_flap.period_s ({period:g})", down
        )
    return None if down == 0.0 else ReadyFlap(period, down)


_KEYS = ("added_latency_ms", "error_ratio", "stall", "ready_flap")


def merge_faults(current: Faults, payload: object) -> Faults:
    """Apply a ``POST /admin/faults`` body to ``current``.

    Keys present replace their knob (``null`` or 0 clears it); absent keys keep theirs.
    Raises :class:`FaultError` naming the first bad key.
    """
    if not isinstance(payload, Mapping):
        raise FaultError("body", f"a JSON object with some of the keys {', '.join(_KEYS)}")
    for k in payload:
        if k not in _KEYS:
            raise FaultError(str(k), f"one of the knobs {', '.join(_KEYS)}")
    out = current
    if "added_latency_ms" in payload:
        v = payload["added_latency_ms"]
        latency = 0.0 if v is None else _number("added_latency_ms", v, 0, MAX_ADDED_LATENCY_MS)
        out = replace(out, added_latency_ms=latency)
    if "error_ratio" in payload:
        v = payload["error_ratio"]
        out = replace(out, error_ratio=0.0 if v is None else _number("error_ratio", v, 0.0, 1.0))
    if "stall" in payload:
        out = replace(out, stall=_parse_stall(payload["stall"]))
    if "ready_flap" in payload:
        out = replace(out, ready_flap=_parse_flap(payload["ready_flap"]))
    return out
