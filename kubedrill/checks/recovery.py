"""Time to recover: from the start of the phase (the fault's end) until an SLO holds again
in every load slot of ``hold_s`` seconds without a break."""

from __future__ import annotations

from collections import defaultdict

from kubedrill.checks.base import DEFAULT_COVERAGE_FLOOR, Check, Evidence, require_deadline
from kubedrill.checks.evidence import load_evidence
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import LoadWindow, Timeline

__all__ = ["RecoveryCheck"]

_GAP_S = 0.05  # slots further apart than this are not contiguous


class RecoveryCheck(Check):
    """``recover_within: 30s`` with ``slo="p95_ms <= 200"`` and ``hold_s=10``.

    The phase's load windows are grouped into slots (windows of every worker that start
    together). A candidate recovery moment is a slot's start; it holds when the slots from
    there cover ``hold_s`` contiguously and the SLO (its own check, merged histograms)
    holds in *every* one of them. The value is the first such start minus the phase start.
    Holds must fit in the phase. No recovery in a phase that lasted at least the deadline
    plus the hold is a FAIL; in a shorter one the claim could not fail: INCONCLUSIVE.
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
        require_deadline(threshold)
        super().__init__(threshold, phase, name or f"{threshold} ({slo.threshold} for {hold_s:g}s)")
        self.slo = slo
        self.hold_s = hold_s

    def _slots(self, timeline: Timeline, window: Window) -> list[Window]:
        endpoint = getattr(self.slo, "endpoint", None)
        spans: dict[float, list[LoadWindow]] = defaultdict(list)
        for o in timeline.select(LoadWindow):
            w = o.data
            inside = window.start - 1e-9 <= w.start and w.end <= window.end + 1e-9
            if inside and (endpoint is None or w.endpoint == endpoint):
                spans[round(w.start, 3)].append(w)
        return [
            Window(min(w.start for w in ws), max(w.end for w in ws))
            for _, ws in sorted(spans.items())
        ]

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        deadline = self.threshold.value
        load = load_evidence(timeline, window, getattr(self.slo, "endpoint", None))
        slots = self._slots(timeline, window)
        if not slots:
            return Evidence(None, "no load windows in the phase", load.coverage, load.doubts)
        verdicts: list[bool | None] = []
        for slot in slots:
            ev = self.slo.measure(timeline, slot)
            verdicts.append(None if ev.value is None else self.slo.threshold.holds(ev.value))
        undecided = sum(v is None for v in verdicts)
        for i, first in enumerate(slots):
            if first.start - window.start > deadline + 1e-9:
                break
            end, j, ok = first.start, i, True
            while end < first.start + self.hold_s - 1e-6:
                if j >= len(slots) or slots[j].start - end > _GAP_S or verdicts[j] is not True:
                    ok = False
                    break
                end = slots[j].end
                j += 1
            if ok:
                took = max(0.0, first.start - window.start)
                return Evidence(
                    took,
                    f"{self.slo.threshold} held in each of {j - i} slot(s) from then for "
                    f"{self.hold_s:g}s",
                    load.coverage,
                    load.doubts,
                )
        observed = window.duration
        bad = sum(v is False for v in verdicts)
        figures = f"{bad} of {len(slots)} slots violated {self.slo.threshold}"
        if undecided:
            figures += f", {undecided} lacked data"
        if observed + 1e-6 < deadline + self.hold_s:
            return Evidence(
                None,
                f"no recovery seen in the {observed:.1f} s phase ({figures}); the phase is "
                f"shorter than {deadline:g} s + {self.hold_s:g} s hold, so this claim could "
                "not fail here: make the phase outlast the deadline and the hold",
                load.coverage,
                load.doubts,
                verdict=Verdict.INCONCLUSIVE,
            )
        if load.doubts or load.coverage.ratio < DEFAULT_COVERAGE_FLOOR:
            return Evidence(
                None,
                f"{self.slo.threshold} did not hold for {self.hold_s:g}s within {deadline:g} s "
                f"({figures}), on incomplete load evidence",
                load.coverage,
                load.doubts,
                verdict=Verdict.INCONCLUSIVE,
            )
        return Evidence(
            None,
            f"{self.slo.threshold} never held in every slot for {self.hold_s:g}s starting "
            f"within {deadline:g} s of the phase start ({figures})",
            load.coverage,
            verdict=Verdict.FAIL,
        )
