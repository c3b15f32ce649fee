"""A check is a typed object: ``evaluate(timeline) -> CheckResult``.

Missing data is INCONCLUSIVE, never PASS. A check that raises is ERROR, with the reason.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from kubedrill.errors import truncate
from kubedrill.thresholds import Threshold
from kubedrill.timeline import Timeline
from kubedrill.types import Verdict, Window

__all__ = ["Check", "CheckResult", "Evidence"]


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
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a check measured, or why it could not (``value is None`` → INCONCLUSIVE)."""

    value: float | None
    detail: str


class Check(abc.ABC):
    """Base class: subclasses implement :meth:`measure` over a window of the timeline."""

    kind: ClassVar[str] = "check"

    def __init__(self, threshold: Threshold, phase: str | None = None, name: str | None = None):
        self.threshold = threshold
        self.phase = phase
        self.name = name or (str(threshold) + (f" during {phase}" if phase else ""))

    @abc.abstractmethod
    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        """The measured value over ``window`` (or ``None`` with the reason data is missing)."""

    def evaluate(self, timeline: Timeline) -> CheckResult:
        window = timeline.window_for(self.phase)
        if window is None:
            what = f"phase {self.phase!r} never started" if self.phase else "the timeline is empty"
            return self._result(Verdict.INCONCLUSIVE, None, f"no data: {what}", None)
        try:
            ev = self.measure(timeline, window)
        except Exception as e:  # noqa: BLE001 - a broken check is reported, not raised
            return self._result(
                Verdict.ERROR, None, f"{type(e).__name__}: {truncate(str(e))}", window
            )
        if ev.value is None:
            return self._result(Verdict.INCONCLUSIVE, None, f"no data: {ev.detail}", window)
        ok = self.threshold.holds(ev.value)
        verdict = Verdict.PASS if ok else Verdict.FAIL
        unit = "" if self.threshold.unit in ("ratio", "value") else f" {self.threshold.unit}"
        shown = f"{ev.value:.4g}{unit}"
        rel = "meets" if ok else "violates"
        reason = f"{self.threshold.metric} = {shown}, {rel} {self.threshold}"
        if ev.detail:
            reason += f" ({ev.detail})"
        return self._result(verdict, ev.value, reason, window)

    def _result(
        self, verdict: Verdict, value: float | None, reason: str, window: Window | None
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
        )
