"""Threshold expressions: ``p95_ms <= 100``, ``error_rate < 0.01``, ``scale_up_within: 120s``.

Two forms:

* comparison — ``<metric> <op> <number>[unit]`` with op one of ``< <= > >= ==``;
* deadline — ``<metric>: <duration>`` (``*_within`` metrics), meaning "at most this long".

Metric names are checked against a known set so a typo is an error, never a silent pass.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from kubedrill.core.durations import format_duration, parse_duration
from kubedrill.core.errors import ThresholdSyntaxError

__all__ = ["KNOWN_METRICS", "Threshold", "parse_threshold"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}

# metric name → (unit, what it means). Units: ms, ratio, rps, s, count, value.
KNOWN_METRICS: dict[str, tuple[str, str]] = {
    "p50_ms": ("ms", "50th percentile latency"),
    "p90_ms": ("ms", "90th percentile latency"),
    "p95_ms": ("ms", "95th percentile latency"),
    "p99_ms": ("ms", "99th percentile latency"),
    "p999_ms": ("ms", "99.9th percentile latency"),
    "max_ms": ("ms", "maximum latency"),
    "error_rate": ("ratio", "failed requests / all requests"),
    "availability": ("ratio", "share of windows meeting the SLO"),
    "rps": ("rps", "achieved requests per second"),
    "replicas": ("count", "ready replicas"),
    "scale_up_within": ("s", "time from phase start until replicas reach the target"),
    "scale_down_within": ("s", "time from phase start until replicas fall to the target"),
    "recover_within": ("s", "time from phase start until the SLO holds again for hold_s"),
    "value": ("value", "a metric's value"),
    "hpa_violations": ("count", "HPA steps outside what its spec and the HPA algorithm allow"),
    "keda_violations": ("count", "KEDA and HPA steps outside what the ScaledObject allows"),
    "first_scale_up_within": ("s", "time from the trigger until replicas first rise"),
    "desired_within": ("s", "time from the trigger until replicas reach the HPA's desired"),
    "ready_within": ("s", "time from the trigger until that many replicas are Ready"),
    "scale_down_start_within": ("s", "time from the phase start until replicas first fall"),
    "scale_down_done_within": ("s", "time from the phase start until replicas reach the floor"),
    "settle_within": ("s", "time from the trigger until replicas stop changing"),
    "pending_within": ("s", "the longest a pod of the Deployment stayed Pending"),
    "hpa_bounds_violations": ("count", "spans with replicas outside the HPA's min/max"),
    "overshoot": ("count", "peak replicas minus the replicas settled at"),
    "reversals": ("count", "direction changes of the replica count"),
    "autoscaler_failures": ("count", "failures the HPA controller reported (conditions, events)"),
    "pdb_below_s": ("value", "seconds with fewer healthy pods than the PDB's floor"),
    "evictions_refused": ("count", "evictions the API refused (HTTP 429: a PDB held)"),
    "pdb_bypasses": ("count", "pods gone around the PDB (plain or forced deletes, node failure)"),
    "drain_within": ("s", "time from a node's cordon until no watched pod is left on it"),
    "replicas_recover_within": ("s", "time until every desired replica is Ready again"),
    "faults_not_rolled_back": ("count", "injected chaos faults not rolled back"),
    "chaostoolkit_failures": ("count", "failed activities or a deviation of a CTK experiment"),
}

_COMPARISON = re.compile(
    r"^\s*(?P<metric>[a-z][a-z0-9_]*)\s*(?P<op><=|>=|==|<|>)\s*(?P<num>[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*(?P<unit>%|ms|s)?\s*$"
)
_DEADLINE = re.compile(r"^\s*(?P<metric>[a-z][a-z0-9_]*_within)\s*:\s*(?P<dur>\S+)\s*$")


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    op: str
    value: float

    @property
    def unit(self) -> str:
        return KNOWN_METRICS[self.metric][0]

    def holds(self, measured: float) -> bool:
        return _OPS[self.op](measured, self.value)

    def __str__(self) -> str:
        if self.unit == "s":
            return f"{self.metric}: {format_duration(self.value)}"
        return f"{self.metric} {self.op} {self.value:g}"


def parse_threshold(text: str, metrics: dict[str, tuple[str, str]] | None = None) -> Threshold:
    """Parse ``text``; raises :class:`ThresholdSyntaxError` naming what was expected."""
    known = KNOWN_METRICS if metrics is None else metrics
    if not isinstance(text, str):
        raise ThresholdSyntaxError(f"threshold {text!r}: expected a string such as 'p95_ms <= 100'")
    m = _DEADLINE.match(text)
    if m:
        metric = m.group("metric")
        _require_known(metric, text, known)
        try:
            seconds = parse_duration(m.group("dur"))
        except ValueError as e:
            raise ThresholdSyntaxError(f"threshold {text!r}: expected {e}") from None
        return Threshold(metric, "<=", seconds)
    m = _COMPARISON.match(text)
    if not m:
        raise ThresholdSyntaxError(
            f"threshold {text!r}: expected '<metric> <op> <number>' (op one of <, <=, >, >=, ==) "
            "or '<metric>_within: <duration>', e.g. 'p95_ms <= 100' or 'scale_up_within: 120s'"
        )
    metric, op, value = m.group("metric"), m.group("op"), float(m.group("num"))
    _require_known(metric, text, known)
    unit = m.group("unit")
    expected_unit = known[metric][0]
    if unit == "%":
        if expected_unit != "ratio":
            raise ThresholdSyntaxError(f"threshold {text!r}: '%' only applies to ratios")
        value /= 100.0
    elif unit == "s" and expected_unit == "ms":
        value *= 1000.0
    elif unit == "ms" and expected_unit == "s":
        value /= 1000.0
    elif unit is not None and unit != expected_unit:
        raise ThresholdSyntaxError(
            f"threshold {text!r}: {metric} is measured in {expected_unit}, not {unit}"
        )
    if expected_unit == "ratio" and not 0.0 <= value <= 1.0:
        raise ThresholdSyntaxError(
            f"threshold {text!r}: {metric} is a ratio between 0 and 1 (or a percentage)"
        )
    return Threshold(metric, op, value)


def _require_known(metric: str, text: str, known: dict[str, tuple[str, str]]) -> None:
    if metric not in known:
        import difflib

        close = difflib.get_close_matches(metric, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ThresholdSyntaxError(
            f"threshold {text!r}: unknown metric {metric!r}{hint}; known: {', '.join(known)}"
        )
