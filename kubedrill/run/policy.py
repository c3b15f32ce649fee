"""The gate policy, decided here and only here: what a verdict and a skipped scenario do to
a scenario's test outcome, to the run's verdict, and (through ``cli.py``) to the exit code.

* ``run.inconclusive: fail`` (default) — an INCONCLUSIVE verdict fails the gate;
  ``warn`` lets it through with the reason shown.
* ``run.skipped: inconclusive`` (default) — a scenario selected for the run that was
  skipped (no cluster, a precondition unmet) makes the run INCONCLUSIVE: skipped is not
  passed. ``allow`` leaves skipped scenarios out of the verdict. Deselected scenarios
  (``--suite``, ``-k``, ``-m``) were never selected and never count.
* A dry run proves nothing and fails nothing: INCONCLUSIVE never fails it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kubedrill.core.settings import Settings
from kubedrill.core.types import Verdict, worst

__all__ = ["Gate", "GateOutcome", "gate_for"]

GateOutcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True, slots=True)
class Gate:
    inconclusive: Literal["fail", "warn"] = "fail"
    skipped: Literal["inconclusive", "allow"] = "inconclusive"
    dry_run: bool = False

    def fails(self, verdict: Verdict) -> bool:
        """Does a check or scenario with ``verdict`` fail its test?"""
        if verdict in (Verdict.FAIL, Verdict.ERROR):
            return True
        return verdict is Verdict.INCONCLUSIVE and self.inconclusive == "fail" and not self.dry_run

    def run_verdict(self, scenario_verdicts: list[Verdict | None]) -> Verdict:
        """The run's verdict from its scenarios' (None: skipped); nothing ran → INCONCLUSIVE."""
        ran = [v for v in scenario_verdicts if v is not None]
        skipped = len(scenario_verdicts) - len(ran)
        if skipped and self.skipped == "inconclusive":
            ran.append(Verdict.INCONCLUSIVE)
        return worst(ran)

    def outcome(self, verdict: Verdict) -> GateOutcome:
        """What the run's verdict means for the gate (``cli.py`` maps it to an exit code)."""
        if verdict is Verdict.PASS:
            return "pass"
        if verdict is Verdict.INCONCLUSIVE:
            return "inconclusive" if self.inconclusive == "fail" and not self.dry_run else "pass"
        return "fail"


def gate_for(settings: Settings) -> Gate:
    return Gate(settings.run.inconclusive, settings.run.skipped, settings.run.dry_run)
