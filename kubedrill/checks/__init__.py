"""Checks: typed claims evaluated over a timeline. ``expect()`` builds one from a threshold."""

from __future__ import annotations

from typing import Any

from kubedrill.checks.base import Check, CheckResult, Evidence
from kubedrill.checks.metric import MetricCheck
from kubedrill.checks.promql import PromQLCheck
from kubedrill.checks.recovery import RecoveryCheck
from kubedrill.checks.scaling import ReplicasCheck, ScaleWithinCheck
from kubedrill.checks.slo import AvailabilityCheck, ErrorRateCheck, LatencyCheck, ThroughputCheck
from kubedrill.core.errors import ThresholdSyntaxError
from kubedrill.core.thresholds import parse_threshold

__all__ = [
    "AvailabilityCheck",
    "Check",
    "CheckResult",
    "ErrorRateCheck",
    "Evidence",
    "LatencyCheck",
    "MetricCheck",
    "PromQLCheck",
    "RecoveryCheck",
    "ReplicasCheck",
    "ScaleWithinCheck",
    "ThroughputCheck",
    "expect",
]

_BY_METRIC: dict[str, type[Check]] = {
    **dict.fromkeys(("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"), LatencyCheck),
    "error_rate": ErrorRateCheck,
    "availability": AvailabilityCheck,
    "rps": ThroughputCheck,
    "replicas": ReplicasCheck,
    "scale_up_within": ScaleWithinCheck,
    "scale_down_within": ScaleWithinCheck,
    "value": MetricCheck,
    "recover_within": RecoveryCheck,
}


def expect(
    expression: str, phase: str | None = None, name: str | None = None, **params: Any
) -> Check:
    """A check from a threshold expression: ``expect("p95_ms <= 100", phase="inject")``.

    Extra keyword arguments go to the check (``endpoint=``, ``object_name=``, ``target=``,
    ``metric=``…); a wrong one is a :class:`ThresholdSyntaxError` naming the expression.
    """
    threshold = parse_threshold(expression)
    cls = _BY_METRIC[threshold.metric]
    if threshold.metric == "value" and "query" in params:
        cls = PromQLCheck
    if threshold.metric == "recover_within" and isinstance(params.get("slo"), str):
        params = dict(params)
        endpoint = params.pop("endpoint", None)
        params["slo"] = expect(params["slo"], endpoint=endpoint)
    try:
        return cls(threshold, phase, name, **params)
    except (TypeError, ValueError) as e:
        raise ThresholdSyntaxError(f"check {expression!r}: {e}") from None
