"""kubedrill's chaos as a Chaos Toolkit extension (docs/chaos-toolkit.md).

* :mod:`kubedrill.chaos.ctk.actions` — ``pod_kill``, ``node_drain``, ``gpu_saturation``,
  ``node_failure`` and ``cleanup``, for ``"provider": {"type": "python", "module":
  "kubedrill.chaos.ctk.actions", ...}``; each rolls its fault back before it returns.
* :mod:`kubedrill.chaos.ctk.probes` — ``no_leftovers``, ``nodes_schedulable``,
  ``ready_replicas`` (read only).
* :mod:`kubedrill.chaos.ctk.control` — reconciles before the experiment, journals every
  activity, rolls back what the experiment left whatever its status.
* :mod:`kubedrill.chaos.ctk.runner` — :func:`run_experiment`: ``chaos run`` in its own
  process, its markers on a kubedrill timeline, a :class:`CtkRun` back.

Only the runner is imported here: the other modules import chaoslib, which a kubedrill run
does not need (it starts ``chaos`` as a command).
"""

from kubedrill.chaos.ctk.runner import CtkRun, failed_activities, run_experiment, settings_env

__all__ = ["CtkRun", "failed_activities", "run_experiment", "settings_env"]
