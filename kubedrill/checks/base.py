"""A check is a typed object: ``evaluate(timeline) -> CheckResult``.

Missing data is INCONCLUSIVE, never PASS, and partial data is missing data: every check
says how much of the window it judges its evidence covers (:class:`Coverage`), and below
the coverage floor (``run.coverage_floor``, default 90 %) — or with any other doubt about
the evidence (a dead load generator, dropped sends, a watch gap) — a value that meets the
threshold is INCONCLUSIVE, with the figures in the reason. A violation stays a FAIL only
where the partial evidence already proves it (a replica floor seen broken, a maximum seen
exceeded). A check that raises is ERROR, with the reason.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from kubedrill.core.errors import truncate
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import Timeline

__all__ = [
    "DEFAULT_COVERAGE_FLOOR",
    "Check",
    "CheckResult",
    "Coverage",
    "Evidence",
    "clock",
    "require_deadline",
]

DEFAULT_COVERAGE_FLOOR = 0.9


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of a window a check's evidence covers: ``covered_s`` of ``window_s`` by
    ``source`` (``load``, ``watch Deployment``, ``samples``)."""

    covered_s: float
    window_s: float
    source: str

    @property
    def ratio(self) -> float:
        if self.window_s <= 0:
            return 0.0
        return max(0.0, min(1.0, self.covered_s / self.window_s))

    def describe(self) -> str:
        return (
            f"{self.source} covered {self.covered_s:.1f} s of {self.window_s:.1f} s "
            f"({self.ratio:.0%})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": round(self.ratio, 4),
            "covered_s": round(self.covered_s, 3),
            "window_s": round(self.window_s, 3),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    kind: str
    verdict: Verdict
    value: float | None
    threshold: str
    reason: str
    window: Window | None = None
    phase: str | None = None
    unit: str = ""
    coverage: Coverage | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict.value,
            "value": self.value,
            "unit": self.unit,
            "threshold": self.threshold,
            "reason": self.reason,
            "phase": self.phase,
            "window": None if self.window is None else self.window.to_dict(),
            "coverage": None if self.coverage is None else self.coverage.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a check measured, or why it could not (``value is None`` → INCONCLUSIVE).

    ``doubts`` name what weakens the evidence (a failed load run, dropped sends, a watch
    gap); any doubt keeps a passing value from being a PASS. ``verdict`` lets a check that
    decides for itself (a deadline never met) say so; the reason is then ``detail``.
    """

    value: float | None
    detail: str
    coverage: Coverage | None = None
    doubts: tuple[str, ...] = field(default=())
    verdict: Verdict | None = None


def require_deadline(threshold: Threshold) -> None:
    """A ``*_within`` claim is a deadline: only ``<=`` (the ``name: duration`` form)."""
    if threshold.op != "<=":
        raise ValueError(
            f"{threshold.metric} is a deadline: write '{threshold.metric}: 60s' "
            f"(or '<= 60s'), not '{threshold.op}'"
        )


def clock(timeline: Timeline, window: Window, t: float) -> str:
    """``t`` as seconds into ``window`` and as UTC wall time: ``20.1 s (21:40:03Z)``."""
    wall = datetime.fromtimestamp(timeline.to_wall(t), UTC).strftime("%H:%M:%SZ")
    return f"{t - window.start:.1f} s ({wall})"


class Check(abc.ABC):
    """Base class: subclasses implement :meth:`measure` over a window of the timeline."""

    kind: ClassVar[str] = "check"

    def __init__(self, threshold: Threshold, phase: str | None = None, name: str | None = None):
        self.threshold = threshold
        self.phase = phase
        self.name = name or (str(threshold) + (f" during {phase}" if phase else ""))

    def partial_violation_fails(self) -> bool:
        """True when a violation seen on partial evidence is still a violation (a floor
        seen broken, a maximum seen exceeded); then doubts do not soften a FAIL."""
        return False

    @abc.abstractmethod
    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        """The measured value over ``window`` (or ``None`` with the reason data is missing)."""

    def collect(self, timeline: Timeline) -> None:
        """Fetch evidence that lives outside the timeline (Prometheus) while its source is
        still up; called when the scenario body returns. Most checks need nothing."""
        return None

    def window(self, timeline: Timeline) -> Window | None:
        """The window this check judges: its phase's, or the whole run without a phase."""
        return timeline.window_for(self.phase)

    def evaluate(
        self, timeline: Timeline, coverage_floor: float = DEFAULT_COVERAGE_FLOOR
    ) -> CheckResult:
        window = self.window(timeline)
        if window is None:
            what = f"phase {self.phase!r} never started" if self.phase else "the timeline is empty"
            return self._result(Verdict.INCONCLUSIVE, None, f"no data: {what}", None)
        try:
            ev = self.measure(timeline, window)
        except Exception as e:  # noqa: BLE001 - a broken check is reported, not raised
            return self._result(
                Verdict.ERROR, None, f"{type(e).__name__}: {truncate(str(e))}", window
            )
        cov = ev.coverage
        doubts = list(ev.doubts)
        if cov is not None and cov.ratio < coverage_floor:
            doubts.insert(0, f"{cov.describe()}, below the {coverage_floor:.0%} coverage floor")
        if ev.verdict is not None:
            reason = "; ".join([ev.detail, *doubts]) if doubts else ev.detail
            return self._result(ev.verdict, ev.value, reason, window, cov)
        if ev.value is None:
            reason = "no data: " + "; ".join([ev.detail, *doubts])
            return self._result(Verdict.INCONCLUSIVE, None, reason, window, cov)
        ok = self.threshold.holds(ev.value)
        unit = "" if self.threshold.unit in ("ratio", "value") else f" {self.threshold.unit}"
        shown = f"{self.threshold.metric} = {ev.value:.4g}{unit}"
        detail = f" ({ev.detail})" if ev.detail else ""
        if doubts and not (not ok and self.partial_violation_fails()):
            how = "meets" if ok else "violates"
            reason = (
                f"not enough evidence: {'; '.join(doubts)} — measured {shown}{detail}, "
                f"which {how} {self.threshold} on what was seen"
            )
            return self._result(Verdict.INCONCLUSIVE, ev.value, reason, window, cov)
        reason = f"{shown}, {'meets' if ok else 'violates'} {self.threshold}{detail}"
        if doubts:
            reason += f"; seen despite incomplete evidence: {'; '.join(doubts)}"
        elif cov is not None:
            reason += f"; {cov.describe()}"
        return self._result(Verdict.PASS if ok else Verdict.FAIL, ev.value, reason, window, cov)

    def _result(
        self,
        verdict: Verdict,
        value: float | None,
        reason: str,
        window: Window | None,
        coverage: Coverage | None = None,
    ) -> CheckResult:
        return CheckResult(
            name=self.name,
            kind=self.kind,
            verdict=verdict,
            value=value,
            threshold=str(self.threshold),
            reason=reason,
            window=window,
            phase=self.phase,
            unit=self.threshold.unit,
            coverage=coverage,
        )
