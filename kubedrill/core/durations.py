"""Durations as users write them: ``120s``, ``2m``, ``1m30s``, ``500ms``, ``1h``, or a number."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from ``value``; raises ``ValueError`` naming what was expected."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 30s, 2m, 1m30s or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise ValueError(
                    "a duration such as 30s, 2m, 1m30s or a number of seconds"
                ) from None
    else:
        raise ValueError("a duration such as 30s, 2m, 1m30s or a number of seconds")
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError("a finite, non-negative duration")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    return f"{int(seconds // 60)}m{seconds % 60:g}s" if seconds % 60 else f"{seconds / 60:g}m"
