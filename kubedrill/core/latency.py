"""Exact latency histograms: HdrHistogram in microseconds, merged by addition, never averaged."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "decode",
    "merge",
    "new_histogram",
    "percentile_ms",
    "percentiles_ms",
]

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9, 100.0)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """Sum of the histograms: the exact histogram of all their values."""
    total = new_histogram()
    for e in encoded:
        total.add(decode(e))
    return total


def percentile_ms(h: HdrHistogram, p: float) -> float:
    if p >= 100.0:
        return float(h.get_max_value()) / 1000.0
    return float(h.get_value_at_percentile(p)) / 1000.0


def percentiles_ms(h: HdrHistogram) -> dict[str, float]:
    """p50…p99.9 and max in milliseconds (keys ``p50``, ``p999``, ``max``)."""
    out: dict[str, float] = {}
    for p in PERCENTILES:
        key = "max" if p == 100.0 else "p" + f"{p:g}".replace(".", "")
        out[key] = percentile_ms(h, p)
    return out
