"""An HPA's spec and status, parsed once from the API's JSON into typed, frozen objects.

``HpaSpec.from_api(spec)`` applies the upstream defaults (``pkg/apis/autoscaling/v2``):
no ``behavior`` is the legacy normaliser; a ``behavior`` with a side left out gets that
side's defaults (scale-up: Pods 4 / 15 s and Percent 100 / 15 s, Max, window 0;
scale-down: Percent 100 / 15 s, Max, window from the controller's flag, 300 s by default,
kept as ``None`` here). ``current_metrics(status)`` reads ``.status.currentMetrics``;
``parse_quantity`` reads Kubernetes quantities ("250m", "1.5", "2Ki", "1e3").
``KedaSpec.from_api`` reads a ScaledObject's ``.spec`` with KEDA's defaults.

A bad document is one :class:`SpecError` naming the key and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubedrill.core.errors import KubedrillError, truncate

__all__ = [
    "GROUP_PODS_SOURCES",
    "HpaSpec",
    "KedaSpec",
    "MetricTarget",
    "MetricValue",
    "Policy",
    "Rules",
    "SpecError",
    "current_metrics",
    "parse_quantity",
]

SelectPolicy = Literal["Max", "Min", "Disabled"]
TargetType = Literal["Utilization", "AverageValue", "Value"]
#: sources the controller groups by pod (missing/unready pods adjust the proposal)
GROUP_PODS_SOURCES = frozenset({"Resource", "ContainerResource", "Pods"})
_SOURCES = ("Resource", "ContainerResource", "Pods", "Object", "External")
_FIELD = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}


class SpecError(KubedrillError, ValueError):
    """An HPA or ScaledObject document that does not read as the API's JSON."""

    def __init__(self, what: str, key: str, expected: str, got: object) -> None:
        self.key = key
        super().__init__(f"{what}: {key}: expected {expected} (got {truncate(repr(got), 80)})")


_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)
_SUFFIX = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
    "Ei": 2.0**60,
}  # fmt: skip


def parse_quantity(value: object, key: str = "quantity") -> float:
    """A Kubernetes quantity as a float: ``"250m"`` → 0.25, ``"2Ki"`` → 2048.0, ``3`` → 3.0."""
    if isinstance(value, bool):
        raise SpecError("quantity", key, "a quantity such as '250m' or '1.5'", value)
    if isinstance(value, int | float):
        return float(value)
    m = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise SpecError("quantity", key, "a quantity such as '250m', '1.5' or '2Ki'", value)
    number = float(m.group(1))
    if m.group(2):
        return number * 10.0 ** int(m.group(2)[1:])
    return number * _SUFFIX.get(m.group(3) or "", 1.0)


@dataclass(frozen=True, slots=True)
class Policy:
    type: Literal["Pods", "Percent"]
    value: int
    period_s: int


@dataclass(frozen=True, slots=True)
class Rules:
    """One side of ``behavior``: ``window_s`` None = the controller flag's default."""

    select: SelectPolicy
    window_s: int | None
    policies: tuple[Policy, ...]
    tolerance: float | None = None

    @property
    def max_period_s(self) -> int:
        return max((p.period_s for p in self.policies), default=0)


SCALE_UP_DEFAULT = Rules("Max", 0, (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
SCALE_DOWN_DEFAULT = Rules("Max", None, (Policy("Percent", 100, 15),))


@dataclass(frozen=True, slots=True)
class MetricTarget:
    source: str  # Resource, ContainerResource, Pods, Object, External
    name: str  # the resource (cpu) or the metric's name
    target_type: TargetType
    target: float  # percent for Utilization, else the quantity

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.name)


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One entry of ``.status.currentMetrics``: what the HPA saw at its last sync."""

    source: str
    name: str
    utilization: float | None
    average: float | None
    value: float | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.name)

    def for_target(self, target: MetricTarget) -> float | None:
        if target.target_type == "Utilization":
            return self.utilization
        return self.average if target.target_type == "AverageValue" else self.value


@dataclass(frozen=True, slots=True)
class HpaSpec:
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricTarget, ...]
    up: Rules
    down: Rules
    legacy: bool  # no behavior: the legacy normaliser (max over 5 min, up to max(2c, 4))
    target_kind: str = "Deployment"
    target_name: str = ""

    @classmethod
    def from_api(cls, spec: Mapping[str, Any], what: str = "HPA spec") -> HpaSpec:
        r = _Reader(what)
        ref = r.mapping(spec.get("scaleTargetRef") or {}, "scaleTargetRef")
        lo = r.integer(spec.get("minReplicas", 1), "minReplicas", minimum=0)
        hi = r.integer(spec.get("maxReplicas"), "maxReplicas", minimum=1)
        if lo > hi:
            raise SpecError(what, "minReplicas", f"at most maxReplicas ({hi})", lo)
        raw_metrics = spec.get("metrics") or [
            {"type": "Resource", "resource": {"name": "cpu", "target": _CPU80}}
        ]
        metrics = tuple(
            r.metric(m, f"metrics[{i}]") for i, m in enumerate(r.sequence(raw_metrics, "metrics"))
        )
        behavior = spec.get("behavior")
        if behavior is None:
            up, down = SCALE_UP_DEFAULT, SCALE_DOWN_DEFAULT
        else:
            b = r.mapping(behavior, "behavior")
            up = r.rules(b.get("scaleUp"), "behavior.scaleUp", SCALE_UP_DEFAULT)
            down = r.rules(b.get("scaleDown"), "behavior.scaleDown", SCALE_DOWN_DEFAULT)
        return cls(
            min_replicas=lo,
            max_replicas=hi,
            metrics=metrics,
            up=up,
            down=down,
            legacy=behavior is None,
            target_kind=str(ref.get("kind") or "Deployment"),
            target_name=str(ref.get("name") or ""),
        )


_CPU80 = {"type": "Utilization", "averageUtilization": 80}


class _Reader:
    def __init__(self, what: str) -> None:
        self.what = what

    def mapping(self, v: object, key: str) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            raise SpecError(self.what, key, "an object", v)
        return v

    def sequence(self, v: object, key: str) -> Sequence[Any]:
        if not isinstance(v, list | tuple):
            raise SpecError(self.what, key, "a list", v)
        return v

    def integer(self, v: object, key: str, minimum: int = 0) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise SpecError(self.what, key, f"an integer >= {minimum}", v)
        return v

    def metric(self, m: object, key: str) -> MetricTarget:
        m = self.mapping(m, key)
        source = m.get("type")
        if source not in _SOURCES:
            raise SpecError(self.what, f"{key}.type", f"one of {', '.join(_SOURCES)}", source)
        body = self.mapping(m.get(_FIELD[source]), f"{key}.{_FIELD[source]}")
        name = _metric_name(body)
        if not name:
            raise SpecError(self.what, f"{key}.{_FIELD[source]}", "a resource or metric name", body)
        t = self.mapping(body.get("target"), f"{key}.{_FIELD[source]}.target")
        where = f"{key}.{_FIELD[source]}.target"
        kind = t.get("type")
        if kind == "Utilization":
            value = float(
                self.integer(t.get("averageUtilization"), f"{where}.averageUtilization", 1)
            )
        elif kind == "AverageValue":
            value = parse_quantity(t.get("averageValue"), f"{where}.averageValue")
        elif kind == "Value":
            value = parse_quantity(t.get("value"), f"{where}.value")
        else:
            raise SpecError(self.what, f"{where}.type", "Utilization, AverageValue or Value", kind)
        if not value > 0:
            raise SpecError(self.what, where, "a target above 0", value)
        return MetricTarget(source, name, kind, value)

    def rules(self, v: object, key: str, default: Rules) -> Rules:
        if v is None:
            return default
        side = self.mapping(v, key)
        select = side.get("selectPolicy", "Max")
        if select not in ("Max", "Min", "Disabled"):
            raise SpecError(self.what, f"{key}.selectPolicy", "Max, Min or Disabled", select)
        window = side.get("stabilizationWindowSeconds", default.window_s)
        if window is not None:
            window = self.integer(window, f"{key}.stabilizationWindowSeconds")
        policies = default.policies
        if side.get("policies") is not None:
            policies = tuple(
                self.policy(p, f"{key}.policies[{i}]")
                for i, p in enumerate(self.sequence(side["policies"], f"{key}.policies"))
            )
        tolerance = None
        if side.get("tolerance") is not None:
            tolerance = parse_quantity(side["tolerance"], f"{key}.tolerance")
            if tolerance < 0:
                raise SpecError(self.what, f"{key}.tolerance", "a quantity >= 0", tolerance)
        return Rules(select, window, policies, tolerance)

    def policy(self, p: object, key: str) -> Policy:
        p = self.mapping(p, key)
        kind = p.get("type")
        if kind not in ("Pods", "Percent"):
            raise SpecError(self.what, f"{key}.type", "Pods or Percent", kind)
        value = self.integer(p.get("value"), f"{key}.value", 1)
        period = self.integer(p.get("periodSeconds"), f"{key}.periodSeconds", 1)
        return Policy(kind, value, period)


def _metric_name(body: Mapping[str, Any]) -> str:
    if isinstance(body.get("name"), str):
        return str(body["name"])  # Resource, ContainerResource
    metric = body.get("metric")
    return str(metric.get("name") or "") if isinstance(metric, Mapping) else ""


def current_metrics(status: object, what: str = "HPA status") -> tuple[MetricValue, ...]:
    """``.status.currentMetrics`` (a list of autoscaling/v2 MetricStatus) as values."""
    r = _Reader(what)
    out: list[MetricValue] = []
    for i, m in enumerate(r.sequence(status or [], "currentMetrics")):
        m = r.mapping(m, f"currentMetrics[{i}]")
        source = m.get("type")
        if not source:  # the controller writes an empty entry for a metric it could not get
            continue
        if source not in _SOURCES:
            raise SpecError(what, f"currentMetrics[{i}].type", f"one of {_SOURCES}", source)
        body = r.mapping(m.get(_FIELD[source]) or {}, f"currentMetrics[{i}].{_FIELD[source]}")
        cur = r.mapping(body.get("current") or {}, f"currentMetrics[{i}].current")
        key = f"currentMetrics[{i}].current"
        out.append(
            MetricValue(
                source,
                _metric_name(body),
                _opt(cur.get("averageUtilization"), f"{key}.averageUtilization"),
                _opt(cur.get("averageValue"), f"{key}.averageValue"),
                _opt(cur.get("value"), f"{key}.value"),
            )
        )
    return tuple(out)


def _opt(v: object, key: str) -> float | None:
    return None if v is None else parse_quantity(v, key)


@dataclass(frozen=True, slots=True)
class KedaSpec:
    """A ScaledObject's ``.spec`` with KEDA 2.x defaults."""

    target_name: str
    min_replicas: int  # minReplicaCount, default 0
    max_replicas: int  # maxReplicaCount, default 100
    idle_replicas: int | None
    cooldown_s: int  # cooldownPeriod, default 300
    polling_s: int  # pollingInterval, default 30
    hpa_name: str | None  # advanced.horizontalPodAutoscalerConfig.name
    always_active: bool  # only cpu/memory triggers: KEDA treats it as always active

    @property
    def activation_replicas(self) -> int:
        return max(self.min_replicas, 1)

    @classmethod
    def from_api(cls, spec: Mapping[str, Any], what: str = "ScaledObject spec") -> KedaSpec:
        r = _Reader(what)
        ref = r.mapping(spec.get("scaleTargetRef"), "scaleTargetRef")
        idle = spec.get("idleReplicaCount")
        advanced = r.mapping(spec.get("advanced") or {}, "advanced")
        hpa_cfg = r.mapping(
            advanced.get("horizontalPodAutoscalerConfig") or {},
            "advanced.horizontalPodAutoscalerConfig",
        )
        triggers = r.sequence(spec.get("triggers") or [], "triggers")
        types = {str(r.mapping(t, f"triggers[{i}]").get("type")) for i, t in enumerate(triggers)}
        lo = r.integer(spec.get("minReplicaCount", 0), "minReplicaCount")
        hi = r.integer(spec.get("maxReplicaCount", 100), "maxReplicaCount", 1)
        if lo > hi:
            raise SpecError(what, "minReplicaCount", f"at most maxReplicaCount ({hi})", lo)
        return cls(
            target_name=str(ref.get("name") or ""),
            min_replicas=lo,
            max_replicas=hi,
            idle_replicas=None if idle is None else r.integer(idle, "idleReplicaCount"),
            cooldown_s=r.integer(spec.get("cooldownPeriod", 300), "cooldownPeriod"),
            polling_s=r.integer(spec.get("pollingInterval", 30), "pollingInterval", 1),
            hpa_name=str(hpa_cfg["name"]) if hpa_cfg.get("name") else None,
            always_active=bool(types) and types <= {"cpu", "memory"},
        )
