"""Checks: typed claims evaluated over a timeline. ``expect()`` builds one from a threshold."""

from __future__ import annotations

from typing import Any

from kubedrill.checks.autoscaling import (
    AutoscalerHealthCheck,
    BoundsCheck,
    OscillationCheck,
    OvershootCheck,
    PendingCheck,
    ScaleTimingCheck,
    SettleCheck,
)
from kubedrill.checks.base import Check, CheckResult, Evidence
from kubedrill.checks.chaos import RolledBackCheck
from kubedrill.checks.conformance import HpaConformant, KedaConformant
from kubedrill.checks.disruption import (
    DrainCheck,
    EvictionsRefusedCheck,
    PdbBypassCheck,
    PdbHealthyCheck,
    ReadyRecoveryCheck,
)
from kubedrill.checks.metric import MetricCheck
from kubedrill.checks.promql import PromQLCheck
from kubedrill.checks.recovery import RecoveryCheck
from kubedrill.checks.scaling import ReplicasCheck, ScaleWithinCheck
from kubedrill.checks.slo import AvailabilityCheck, ErrorRateCheck, LatencyCheck, ThroughputCheck
from kubedrill.core.errors import ThresholdSyntaxError
from kubedrill.core.thresholds import parse_threshold

__all__ = [
    "AutoscalerHealthCheck",
    "AvailabilityCheck",
    "BoundsCheck",
    "Check",
    "CheckResult",
    "DrainCheck",
    "ErrorRateCheck",
    "EvictionsRefusedCheck",
    "Evidence",
    "HpaConformant",
    "KedaConformant",
    "LatencyCheck",
    "MetricCheck",
    "OscillationCheck",
    "OvershootCheck",
    "PdbBypassCheck",
    "PdbHealthyCheck",
    "PendingCheck",
    "PromQLCheck",
    "ReadyRecoveryCheck",
    "RecoveryCheck",
    "ReplicasCheck",
    "RolledBackCheck",
    "ScaleTimingCheck",
    "ScaleWithinCheck",
    "SettleCheck",
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
    **dict.fromkeys(ScaleTimingCheck.METRICS, ScaleTimingCheck),
    "settle_within": SettleCheck,
    "pending_within": PendingCheck,
    "hpa_bounds_violations": BoundsCheck,
    "overshoot": OvershootCheck,
    "reversals": OscillationCheck,
    "autoscaler_failures": AutoscalerHealthCheck,
    "pdb_below_s": PdbHealthyCheck,
    "evictions_refused": EvictionsRefusedCheck,
    "pdb_bypasses": PdbBypassCheck,
    "drain_within": DrainCheck,
    "replicas_recover_within": ReadyRecoveryCheck,
    "faults_not_rolled_back": RolledBackCheck,
}
_CONFORMANCE: dict[str, type[HpaConformant] | type[KedaConformant]] = {
    "hpa_violations": HpaConformant,
    "keda_violations": KedaConformant,
}


class _Expect:
    """``expect("p95_ms <= 100", phase="inject")`` builds a check from a threshold;
    ``expect.hpa_conformant("web", "prod")`` and ``expect.keda_conformant(...)`` build the
    spec-conformance checks (also ``expect("hpa_violations == 0", object_name="web")``)."""

    def __call__(
        self, expression: str, phase: str | None = None, name: str | None = None, **params: Any
    ) -> Check:
        """A check from a threshold expression: ``expect("p95_ms <= 100", phase="inject")``.

        Extra keyword arguments go to the check (``endpoint=``, ``object_name=``, ``target=``,
        ``metric=``…); a wrong one is a :class:`ThresholdSyntaxError` naming the expression.
        """
        threshold = parse_threshold(expression)
        try:
            if threshold.metric in _CONFORMANCE:
                params = dict(params)
                obj = params.pop("object_name")
                return _CONFORMANCE[threshold.metric](
                    obj, phase=phase, name=name, threshold=threshold, **params
                )
            cls = _BY_METRIC[threshold.metric]
            if threshold.metric == "value" and "query" in params:
                cls = PromQLCheck
            if threshold.metric == "recover_within" and isinstance(params.get("slo"), str):
                params = dict(params)
                endpoint = params.pop("endpoint", None)
                params["slo"] = self(params["slo"], endpoint=endpoint)
            return cls(threshold, phase, name, **params)
        except KeyError as e:
            raise ThresholdSyntaxError(f"check {expression!r}: needs {e.args[0]}=") from None
        except (TypeError, ValueError) as e:
            raise ThresholdSyntaxError(f"check {expression!r}: {e}") from None

    def hpa_conformant(
        self, hpa: str, namespace: str | None = None, phase: str | None = None, **params: Any
    ) -> HpaConformant:
        """Every step of HPA ``hpa`` inside what its spec allows (docs/conformance.md)."""
        return HpaConformant(hpa, namespace, phase, **params)

    def keda_conformant(
        self,
        scaledobject: str,
        namespace: str | None = None,
        phase: str | None = None,
        **params: Any,
    ) -> KedaConformant:
        """KEDA's 0 ↔ N steps and its HPA's steps inside what the ScaledObject allows."""
        return KedaConformant(scaledobject, namespace, phase, **params)


expect = _Expect()
