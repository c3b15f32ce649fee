"""``faults_rolled_back``: every fault injected in the window was rolled back.

Judged from the chaos markers: each ``injected`` (action, target) needs a later
``rolled_back``; a ``failed`` undo, or none at all, is a fault left in the cluster, and the
reason names it. No fault injected at all is INCONCLUSIVE: nothing was there to roll back,
so the claim has no evidence. ``kubedrill.run.Drill.chaos`` adds this check to every
scenario that injects, so a rollback failure is a verdict, not a log line.
"""

from __future__ import annotations

from kubedrill.checks.base import Check, Evidence
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import ChaosMarker, Timeline

__all__ = ["RolledBackCheck"]


class RolledBackCheck(Check):
    kind = "chaos"

    def partial_violation_fails(self) -> bool:
        return True

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        open_: dict[tuple[str, str], str] = {}
        injected = rolled = 0
        for o in timeline.select(ChaosMarker):
            m = o.data
            key = (m.action, m.target)
            if m.stage == "injected" and window.start <= o.t <= window.end:
                injected += 1
                open_[key] = "never rolled back"
            elif m.stage == "rolled_back" and key in open_:
                rolled += 1
                del open_[key]
            elif m.stage == "failed" and key in open_:
                open_[key] = m.detail or "rollback failed"
        if not injected:
            return Evidence(None, "no fault was injected in this window")
        left = len(open_)
        detail = f"{rolled} of {injected} injected fault(s) rolled back"
        if left:
            detail += ": " + "; ".join(f"{a} on {t}: {why}" for (a, t), why in open_.items())
        return Evidence(float(left), detail, verdict=Verdict.FAIL if left else None)
