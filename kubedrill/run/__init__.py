"""A run: the drill a scenario receives, scenario results, the run record and the gate
policy (what INCONCLUSIVE and skipped scenarios do to the verdict and the exit code)."""

from kubedrill.run.drill import Drill
from kubedrill.run.policy import Gate, gate_for
from kubedrill.run.record import SCHEMA_ID, RunRecord, ScenarioResult, new_run_id

__all__ = ["SCHEMA_ID", "Drill", "Gate", "RunRecord", "ScenarioResult", "gate_for", "new_run_id"]
