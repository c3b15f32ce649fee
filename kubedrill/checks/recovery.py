"""Time to recover: from the start of the phase (the fault's end) until an SLO holds again
for ``hold_s`` seconds without a break."""

from __future__ import annotations

from kubedrill.checks.base import Check, Evidence
from kubedrill.thresholds import Threshold
from kubedrill.timeline import LoadWindow, Timeline
from kubedrill.types import Window

__all__ = ["RecoveryCheck"]


class RecoveryCheck(Check):
    """``recover_within: 30s`` with ``slo="p95_ms <= 200"`` and ``hold_s=10``.

    Candidate recovery moments are the starts of load windows in the phase; the SLO is
    judged over each ``[t, t + hold_s)`` with the SLO's own check (merged histograms).
    The value is ``t - phase start`` for the first ``t`` that holds.
    """

    kind = "recovery"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        slo: Check,
        hold_s: float = 10.0,
    ) -> None:
        if phase is None:
            raise ValueError(
                "recover_within needs phase= (the phase that starts when the fault ends)"
            )
        if hold_s <= 0:
            raise ValueError(f"hold_s must be positive, got {hold_s!r}")
        super().__init__(threshold, phase, name or f"{threshold} ({slo.threshold} for {hold_s:g}s)")
        self.slo = slo
        self.hold_s = hold_s

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        starts = sorted(
            {
                o.data.start
                for o in timeline.select(LoadWindow)
                if o.data.start >= window.start - 1e-9
            }
        )
        if not starts:
            return Evidence(None, "no load windows after the phase started")
        last_end = max(o.data.end for o in timeline.select(LoadWindow))
        undecided = 0
        for t in starts:
            if t + self.hold_s > last_end + 1e-9:
                break  # not enough evidence after t to judge a full hold
            ev = self.slo.measure(timeline, Window(t, t + self.hold_s))
            if ev.value is None:
                undecided += 1
                continue
            if self.slo.threshold.holds(ev.value):
                return Evidence(
                    max(0.0, t - window.start),
                    f"{self.slo.threshold} held from then for {self.hold_s:g}s",
                )
        observed = last_end - window.start
        if observed >= self.threshold.value + self.hold_s:
            return Evidence(
                observed, f"{self.slo.threshold} never held for {self.hold_s:g}s in {observed:.1f}s"
            )
        why = (
            f"observed {observed:.1f}s after the fault, "
            f"less than {self.threshold.value:g}s + {self.hold_s:g}s hold"
        )
        if undecided:
            why += f"; {undecided} candidate window(s) lacked data"
        return Evidence(None, why)
