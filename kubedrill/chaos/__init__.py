"""Chaos that always cleans up: pod kill, node drain, GPU saturation, node failure.

Every action plans first (reads only; refuses what the allow-list and the caps do not
allow), journals an fsynced undo before each write, marks what it changes in the cluster
(owner token, expiry), and is rolled back on every way out. See docs/chaos.md.

    from kubedrill.chaos import Chaos, NodeDrain
    chaos = Chaos(adapter, settings, timeline)
    chaos.reconcile()                      # undo what a killed runner left
    with chaos.fault(NodeDrain(pods_of="app=web", deadline_s=60)) as f:
        f.hold(10)                         # uncordoned on the way out, whatever happens
"""

from kubedrill.chaos.engine import Action, Chaos, ChaosContext, Fault, Plan, Reconciled
from kubedrill.chaos.gpu_saturation import GpuSaturation
from kubedrill.chaos.journal import Intent, Journal, Owner
from kubedrill.chaos.node_drain import NodeDrain
from kubedrill.chaos.node_failure import NodeFailure
from kubedrill.chaos.pod_kill import PodKill
from kubedrill.chaos.safety import ChaosRefused, Guard, Scope
from kubedrill.chaos.undo import Leftover, find_leftovers

ACTIONS: dict[str, type] = {a.name: a for a in (PodKill, NodeDrain, GpuSaturation, NodeFailure)}

__all__ = [
    "ACTIONS",
    "Action",
    "Chaos",
    "ChaosContext",
    "ChaosRefused",
    "Fault",
    "GpuSaturation",
    "Guard",
    "Intent",
    "Journal",
    "Leftover",
    "NodeDrain",
    "NodeFailure",
    "Owner",
    "Plan",
    "PodKill",
    "Reconciled",
    "Scope",
    "find_leftovers",
]
