"""``node_failure``: the node stops heartbeating for a duration.

``NodeFailure(node="cpu-1", duration_s=60)``. On kwok nodes (the sandbox) the node's
Lease in ``kube-node-lease`` is taken from kwok: ``holderIdentity`` becomes
``kubedrill-chaos.<token>``, ``leaseDurationSeconds`` 3600, ``renewTime`` now, with the
dead-man annotations. kwok then treats the node as read-only, so neither the Lease nor
the node status is renewed: the node lifecycle controller marks it ``Ready=Unknown``
after its grace period, taints it ``node.kubernetes.io/unreachable`` and the taint
manager evicts what does not tolerate that (docs/sandbox.md). Rollback deletes the Lease:
kwok creates a new one and the node is Ready again a few seconds later.

On any other node it needs a provider hook, ``chaos.node_failure_hook``: a command run as
``<hook> fail <node>`` and, on rollback, ``<hook> restore <node>`` (stop and start the
instance, drop its network). Without one, node_failure is refused.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from kubedrill.chaos.engine import ChaosContext, Plan
from kubedrill.chaos.gpu_saturation import is_kwok_node
from kubedrill.chaos.safety import ChaosRefused, cap_count
from kubedrill.chaos.undo import LEASE_HOLDER_PREFIX
from kubedrill.core.errors import ActionFailed, truncate

__all__ = ["NodeFailure"]


def _ready(node: dict[str, Any]) -> bool:
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


@dataclass(frozen=True)
class NodeFailure:
    name: ClassVar[str] = "node_failure"
    node: str
    duration_s: float = 60.0

    def plan(self, ctx: ChaosContext) -> Plan:
        ctx.guard.scope.require_node(self.node)
        if not 0 < self.duration_s <= ctx.settings.max_fault_s:
            raise ChaosRefused(
                f"node_failure: duration_s {self.duration_s:g} s is not in (0, "
                f"chaos.max_fault_s = {ctx.settings.max_fault_s:g} s]"
            )
        obj = ctx.adapter.get("Node", None, self.node)
        if obj is None:
            raise ChaosRefused(f"node_failure: node {self.node!r} does not exist")
        nodes, _ = ctx.adapter.list("Node", None)
        down = sum(1 for n in nodes if not _ready(n))
        cap_count(
            down + 1,
            len(nodes),
            ctx.settings.max_node_fraction,
            "nodes not Ready",
            "chaos.max_node_fraction",
        )
        if is_kwok_node(obj):
            lease = ctx.adapter.get("Lease", "kube-node-lease", self.node)
            holder = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
            if not holder or holder.startswith(LEASE_HOLDER_PREFIX):
                raise ChaosRefused(
                    f"node_failure: node {self.node!r} has no heartbeat Lease held by its "
                    f"kubelet now (holder {holder or 'none'!r}): it is not heartbeating to stop"
                )
            method = "lease"
            steps = (
                f"take the Lease of {self.node} from kwok: no heartbeat for "
                f"{self.duration_s:g} s (NotReady after the node monitor grace period)",
                f"delete the Lease on rollback: kwok heartbeats {self.node} again",
            )
        elif ctx.settings.node_failure_hook:
            method = "hook"
            hook = ctx.settings.node_failure_hook
            steps = (f"run {hook} fail {self.node}", f"run {hook} restore {self.node} on rollback")
        else:
            raise ChaosRefused(
                f"node_failure: {self.node} is not a kwok node; on a real cluster it needs "
                "chaos.node_failure_hook (a command run as '<hook> fail|restore <node>')"
            )
        return Plan(self.name, (self.node,), steps, self.duration_s, {"method": method})

    def inject(self, ctx: ChaosContext, plan: Plan) -> None:
        if plan.data["method"] == "hook":
            hook = str(ctx.settings.node_failure_hook)
            intent = ctx.intend(
                self.name,
                self.node,
                {"kind": "hook", "hook": hook, "node": self.node},
                plan.lasts_s,
            )
            cmd = [*shlex.split(hook), "fail", self.node]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
            if p.returncode != 0:
                raise ActionFailed(f"{shlex.join(cmd)} exited {p.returncode}: {truncate(p.stderr)}")
            ctx.injected(intent, shlex.join(cmd))
            return
        undo = {"kind": "release_lease", "node": self.node, "token": ctx.owner.token}
        intent = ctx.intend(self.name, self.node, undo, plan.lasts_s)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ctx.guard.patch_lease(
            self.node,
            {
                "metadata": {"annotations": ctx.marks(self.name, plan.lasts_s)},
                "spec": {
                    "holderIdentity": LEASE_HOLDER_PREFIX + ctx.owner.token,
                    "leaseDurationSeconds": 3600,
                    "renewTime": now,
                },
            },
        )
        ctx.injected(intent, "heartbeat stopped (Lease taken from kwok)")
