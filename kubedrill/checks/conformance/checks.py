"""The conformance checks: read an HPA (and its ScaledObject) off the timeline and judge
every step it made against its own spec.

``hpa_violations == 0``: a violation seen is a FAIL even on partial evidence (it was seen);
no violation is a PASS only if the watch of the HPA covered the window (and of its target
and ScaledObject, else those rules went unjudged), and the reason says what was judged.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubedrill.checks.base import Check, Coverage, Evidence, clock
from kubedrill.checks.conformance.engine import judge_hpa
from kubedrill.checks.conformance.keda import KedaSample, judge_keda
from kubedrill.checks.conformance.model import HpaSample, ReplicaSample, Slack, Violation
from kubedrill.checks.evidence import watch_gaps
from kubedrill.checks.hpaspec import HpaSpec, KedaSpec, SpecError, current_metrics
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Window
from kubedrill.timeline import ObjectTransition, Observation, Scalar, Timeline

__all__ = ["HpaConformant", "KedaConformant"]

HPA_KIND = "HorizontalPodAutoscaler"
#: the fields one status write sets; equal values are the same write (or an identical one)
_STATUS_KEYS = (
    "current_replicas",
    "desired_replicas",
    "metrics",
    "last_scale_time",
    "able_to_scale",
    "scaling_active",
    "scaling_limited",
    "able_to_scale_reason",
    "scaling_active_reason",
    "scaling_limited_reason",
)
_SHOWN = 5


def _objects(
    timeline: Timeline, kind: str, name: str, namespace: str | None, end: float
) -> list[Observation[ObjectTransition]]:
    return [
        o
        for o in timeline.select(ObjectTransition)
        if o.t < end
        and o.data.api_kind == kind
        and o.data.name == name
        and (namespace is None or o.data.namespace == namespace)
    ]


def _t(v: Violation) -> float:
    return v.t


def _int(v: Scalar) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _bool(v: Scalar) -> bool | None:
    return v if isinstance(v, bool) else None


def _json(v: Scalar, what: str, key: str) -> Any:
    if v is None:
        return None
    if not isinstance(v, str):
        raise SpecError(what, key, "a JSON string", v)
    try:
        return json.loads(v)
    except ValueError:
        raise SpecError(what, key, "a JSON string", v) from None


def _deleted_gaps(
    obs: Sequence[Observation[ObjectTransition]], end: float
) -> list[tuple[float, float]]:
    """An object deleted (KEDA pauses by deleting its HPA) is unknown until it is back."""
    out: list[tuple[float, float]] = []
    for n, o in enumerate(obs):
        if o.data.event == "DELETED":
            back = next((b.t for b in obs[n + 1 :] if b.data.event != "DELETED"), end)
            out.append((o.t, back))
    return out


@dataclass(slots=True)
class _Judged:
    violations: list[Violation] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)
    covers: list[Coverage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: str | None = None


def _gap_spans(
    timeline: Timeline, kind: str, start: float, end: float
) -> list[tuple[float, float]]:
    if end <= start:
        return []
    _, gaps = watch_gaps(timeline, kind, Window(start, end))
    return [(g.start, g.end) for g in gaps]


def _judge_hpa_record(
    timeline: Timeline,
    window: Window,
    hpa: str,
    namespace: str | None,
    slack: Slack,
    restarts: Sequence[float],
    out: _Judged,
) -> None:
    what = f"HorizontalPodAutoscaler {namespace + '/' if namespace else ''}{hpa}"
    obs = _objects(timeline, HPA_KIND, hpa, namespace, window.end)
    cov, gaps = watch_gaps(timeline, HPA_KIND, window)
    out.covers.append(cov)
    out.doubts.extend(str(g) for g in gaps)
    if not obs:
        out.missing = f"no observations of {what}"
        return
    samples: list[HpaSample] = []
    parsed: dict[str, HpaSpec] = {}
    for o in obs:
        if o.data.event == "DELETED":
            continue
        f = o.data.fields
        raw = f.get("spec")
        spec = None
        if isinstance(raw, str):
            if raw not in parsed:
                parsed[raw] = HpaSpec.from_api(_json(raw, what, "spec"), f"{what} .spec")
            spec = parsed[raw]
        metrics = f.get("metrics")
        values = None
        if metrics is not None:
            values = current_metrics(_json(metrics, what, "metrics"), f"{what} .status")
        samples.append(
            HpaSample(
                o.t,
                _int(f.get("current_replicas")),
                _int(f.get("desired_replicas")),
                values,
                _bool(f.get("scaling_active")),
                _bool(f.get("able_to_scale")),
                spec,
                status_key=tuple(f.get(k) for k in _STATUS_KEYS),
            )
        )
    first = next((s.spec for s in samples if s.spec is not None), None)
    if first is None:
        out.missing = f"the record of {what} carries no spec (the watcher's 'spec' field)"
        return
    start = min(obs[0].t, window.start)
    hpa_gaps = _gap_spans(timeline, HPA_KIND, start, window.end) + _deleted_gaps(obs, window.end)
    replicas: list[ReplicaSample] = []
    rep_gaps: list[tuple[float, float]] = []
    target = f"{first.target_kind} {first.target_name}"
    dep = _objects(timeline, first.target_kind, first.target_name, namespace, window.end)
    if dep:
        replicas = _replica_samples(dep)
        rep_gaps = _gap_spans(timeline, first.target_kind, start, window.end)
        _, tgaps = watch_gaps(timeline, first.target_kind, window)
        out.doubts.extend(f"{g} (the stuck rules need {target})" for g in tgaps)
    else:
        out.doubts.append(f"no observations of {target}: the stuck rules were not judged")
    if all(s.scaling_active is None for s in samples):
        out.doubts.append(
            f"the record of {what} has no ScalingActive condition: "
            "stabilization and stuck rules were not judged"
        )
    found = judge_hpa(
        first, samples, replicas=replicas, gaps=hpa_gaps, replica_gaps=rep_gaps,
        restarts=restarts, until=window.end, slack=slack,
    )  # fmt: skip
    steps = sum(1 for s in samples if window.contains(s.t) and s.desired != s.current)
    out.notes.append(f"{steps} step(s) of {what} in the window, {len(samples)} observation(s)")
    out.violations.extend(v for v in found if window.contains(v.t))


def _replica_samples(obs: Iterable[Observation[ObjectTransition]]) -> list[ReplicaSample]:
    return [
        ReplicaSample(
            o.t,
            _int(o.data.fields.get("replicas")),
            _int(o.data.fields.get("ready_replicas")),
            _int(o.data.fields.get("available_replicas")),
            _int(o.data.fields.get("updated_replicas")),
            _int(o.data.fields.get("status_replicas")),
        )
        for o in obs
        if o.data.event != "DELETED"
    ]


class _Conformant(Check):
    kind = "conformance"
    metric = "hpa_violations"

    def __init__(
        self,
        phase: str | None,
        name: str | None,
        threshold: Threshold | None,
        slack: Slack | None,
        restarts: Sequence[float],
    ) -> None:
        threshold = threshold or Threshold(self.metric, "==", 0)
        if threshold.op not in ("==", "<=", "<") or threshold.metric != self.metric:
            raise ValueError(f"{self.metric} counts violations: write '{self.metric} == 0'")
        super().__init__(threshold, phase, name)
        self.slack = slack or Slack()
        self.restarts = tuple(restarts)

    def partial_violation_fails(self) -> bool:
        return True  # a step seen outside the envelope was seen

    @abc.abstractmethod
    def judge(self, timeline: Timeline, window: Window) -> _Judged:
        """What was judged over ``window``: violations, doubts, coverage."""

    def violations(self, timeline: Timeline) -> list[Violation]:
        """The violations inside this check's window (empty when it has none)."""
        window = self.window(timeline)
        return [] if window is None else sorted(self.judge(timeline, window).violations, key=_t)

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        return self._evidence(timeline, window, self.judge(timeline, window))

    def _evidence(self, timeline: Timeline, window: Window, judged: _Judged) -> Evidence:
        cov = min(judged.covers, key=lambda c: c.ratio) if judged.covers else None
        if judged.missing is not None:
            return Evidence(None, judged.missing, cov, tuple(judged.doubts))
        vs = sorted(judged.violations, key=_t)
        shown = [v.describe(clock(timeline, window, v.t)) for v in vs[:_SHOWN]]
        if len(vs) > _SHOWN:
            shown.append(f"and {len(vs) - _SHOWN} more")
        detail = "; ".join(shown) if vs else "every step inside the envelope"
        return Evidence(
            float(len(vs)), f"{detail}; {'; '.join(judged.notes)}", cov, tuple(judged.doubts)
        )


class HpaConformant(_Conformant):
    """Every step of an HPA inside what its spec and the HPA algorithm allow."""

    def __init__(
        self,
        hpa: str,
        namespace: str | None = None,
        phase: str | None = None,
        *,
        name: str | None = None,
        threshold: Threshold | None = None,
        slack: Slack | None = None,
        restarts: Sequence[float] = (),
    ) -> None:
        self.hpa = hpa
        self.namespace = namespace
        label = f"HPA {hpa} conforms to its spec" + (f" during {phase}" if phase else "")
        super().__init__(phase, name or label, threshold, slack, restarts)

    def judge(self, timeline: Timeline, window: Window) -> _Judged:
        judged = _Judged()
        _judge_hpa_record(
            timeline, window, self.hpa, self.namespace, self.slack, self.restarts, judged
        )
        return judged


class KedaConformant(_Conformant):
    """KEDA's 0 ↔ N steps and its generated HPA's steps inside what the ScaledObject allows."""

    metric = "keda_violations"

    def __init__(
        self,
        scaledobject: str,
        namespace: str | None = None,
        phase: str | None = None,
        *,
        name: str | None = None,
        threshold: Threshold | None = None,
        slack: Slack | None = None,
        restarts: Sequence[float] = (),
    ) -> None:
        self.scaledobject = scaledobject
        self.namespace = namespace
        label = f"ScaledObject {scaledobject} conforms to its spec" + (
            f" during {phase}" if phase else ""
        )
        super().__init__(phase, name or label, threshold, slack, restarts)

    def judge(self, timeline: Timeline, window: Window) -> _Judged:
        judged = _Judged()
        what = f"ScaledObject {self.namespace + '/' if self.namespace else ''}{self.scaledobject}"
        obs = _objects(timeline, "ScaledObject", self.scaledobject, self.namespace, window.end)
        cov, gaps = watch_gaps(timeline, "ScaledObject", window)
        judged.covers.append(cov)
        judged.doubts.extend(str(g) for g in gaps)
        samples: list[KedaSample] = []
        parsed: dict[str, KedaSpec] = {}
        hpa_name: str | None = None  # status.hpaName, when the watcher records it
        for o in obs:
            if o.data.event == "DELETED":
                continue
            f = o.data.fields
            raw, spec = f.get("spec"), None
            if isinstance(raw, str):
                if raw not in parsed:
                    parsed[raw] = KedaSpec.from_api(_json(raw, what, "spec"), f"{what} .spec")
                spec = parsed[raw]
            samples.append(
                KedaSample(
                    o.t,
                    _bool(f.get("active")),
                    _bool(f.get("fallback")),
                    spec,
                    _bool(f.get("paused")),
                )
            )
            if isinstance(f.get("hpa"), str) and f.get("hpa"):
                hpa_name = str(f["hpa"])
        first = next((s.spec for s in samples if s.spec is not None), None)
        if first is None:
            judged.missing = f"no observations of {what} with its spec"
            return judged
        hpa = hpa_name or first.hpa_name or f"keda-hpa-{self.scaledobject}"
        _judge_hpa_record(timeline, window, hpa, self.namespace, self.slack, self.restarts, judged)
        if judged.missing is not None:  # KEDA's own steps are judged without the HPA
            judged.doubts.append(f"{judged.missing}: the HPA's steps were not judged")
            judged.missing = None
        dep = _objects(timeline, "Deployment", first.target_name, self.namespace, window.end)
        start = min([window.start, *(o.t for o in obs[:1])])
        so_gaps = _gap_spans(timeline, "ScaledObject", start, window.end)
        dep_gaps = _gap_spans(timeline, "Deployment", start, window.end)
        found = judge_keda(
            first, samples, _replica_samples(dep), gaps=so_gaps + dep_gaps, slack=self.slack
        )
        judged.violations.extend(v for v in found if window.contains(v.t))
        if not dep:
            judged.doubts.append(
                f"no observations of Deployment {first.target_name}: KEDA's steps unjudged"
            )
        judged.notes.append(f"{len(samples)} observation(s) of {what}")
        return judged
