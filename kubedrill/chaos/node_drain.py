"""``node_drain``: cordon a node and evict its pods through the Eviction API.

``NodeDrain(node="gpu-1")``, or ``NodeDrain(pods_of="app=web")`` for the node that runs
most of those pods (in the target namespace). It cordons the node (one patch that also
sets the dead-man annotations, journaled first), then evicts every pod on it except
DaemonSet and mirror pods and pods already finished or terminating. A 429 is the PDB
holding: recorded (a ``k8s.eviction`` ``refused``) and retried, backing off from 0.5 s to
5 s, until ``deadline_s``. A drain that does not finish is reported with the pods that
block it and the PDBs that cover them, by name; it does not raise (judge it with
``drain_within``). The node stays cordoned while the fault is held and is uncordoned on
rollback.

Refused before anything is written: a node outside ``chaos.nodes``; a node already
unschedulable (someone else's cordon is not ours to undo); pods on it in namespaces
outside ``chaos.namespaces`` (evicting them would touch what was not allowed); more than
``chaos.max_node_fraction`` of the nodes unschedulable at once. ``force=True`` deletes
instead of evicting (bypassing PDBs): it exists to prove that ``pdb_bypasses`` sees it,
and is refused unless ``chaos.allow_force``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from kubedrill.chaos.engine import ChaosContext, Plan
from kubedrill.chaos.safety import ChaosRefused, cap_count
from kubedrill.observe.evictions import evict

__all__ = ["NodeDrain", "drainable", "pick_node"]

MIRROR = "kubernetes.io/config.mirror"


def _meta(o: Mapping[str, Any]) -> dict[str, Any]:
    return dict(o.get("metadata") or {})


def drainable(pod: Mapping[str, Any]) -> bool:
    """What ``kubectl drain`` evicts: not a DaemonSet's or mirror pod, not finished, not
    already terminating."""
    m = _meta(pod)
    if m.get("deletionTimestamp") or MIRROR in (m.get("annotations") or {}):
        return False
    if any(r.get("kind") == "DaemonSet" for r in m.get("ownerReferences") or []):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def pick_node(ctx: ChaosContext, selector: str, namespace: str) -> str:
    pods, _ = ctx.adapter.list("Pod", namespace, label_selector=selector)
    on = Counter(
        str((p.get("spec") or {}).get("nodeName"))
        for p in pods
        if (p.get("spec") or {}).get("nodeName") and drainable(p)
    )
    if not on:
        raise ChaosRefused(
            f"node_drain: pods_of={selector!r} matches no scheduled pod in namespace {namespace!r}"
        )
    allowed = [(n, c) for n, c in on.items() if ctx.guard.scope.node_allowed(n)]
    if not allowed:
        raise ChaosRefused(
            f"node_drain: the pods of {selector!r} run on {sorted(on)}, none of them in "
            f"chaos.nodes {list(ctx.guard.scope.nodes)}"
        )
    return sorted(allowed, key=lambda nc: (-nc[1], nc[0]))[0][0]


def _pdbs_covering(ctx: ChaosContext, pod: Mapping[str, Any]) -> list[str]:
    m = _meta(pod)
    labels = m.get("labels") or {}
    pdbs, _ = ctx.adapter.list("PodDisruptionBudget", m.get("namespace"))
    out = []
    for b in pdbs:
        sel = ((b.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if sel and all(labels.get(k) == v for k, v in sel.items()):
            st = b.get("status") or {}
            out.append(
                f"{_meta(b)['name']} (healthy {st.get('currentHealthy')}/"
                f"{st.get('desiredHealthy')} needed, {st.get('disruptionsAllowed')} allowed)"
            )
    return out


@dataclass(frozen=True)
class NodeDrain:
    name: ClassVar[str] = "node_drain"
    node: str | None = None
    pods_of: str | None = None  # label selector in ``namespace``: drain the node they run on
    namespace: str | None = None
    deadline_s: float = 120.0
    hold_s: float = 0.0  # how long the caller means to hold the cordon (for the dead-man)
    grace_s: int | None = None
    force: bool = False

    def plan(self, ctx: ChaosContext) -> Plan:
        if (self.node is None) == (self.pods_of is None):
            raise ChaosRefused("node_drain: give exactly one of node= or pods_of=")
        if self.force and not ctx.settings.allow_force:
            raise ChaosRefused(
                "node_drain force=True deletes pods around their PDBs; it is refused unless "
                "chaos.allow_force: true (it exists to prove PDB-bypass detection)"
            )
        lasts = self.deadline_s + self.hold_s
        if lasts > ctx.settings.max_fault_s:
            raise ChaosRefused(
                f"node_drain: deadline_s + hold_s = {lasts:g} s is over chaos.max_fault_s "
                f"= {ctx.settings.max_fault_s:g} s"
            )
        node = self.node or pick_node(ctx, str(self.pods_of), self.namespace or ctx.namespace)
        ctx.guard.scope.require_node(node)
        obj = ctx.adapter.get("Node", None, node)
        if obj is None:
            raise ChaosRefused(f"node_drain: node {node!r} does not exist")
        if (obj.get("spec") or {}).get("unschedulable"):
            raise ChaosRefused(
                f"node_drain: node {node!r} is already cordoned, and not by this drain: "
                "refusing to take over (and later undo) someone else's cordon"
            )
        nodes, _ = ctx.adapter.list("Node", None)
        cordoned = sum(1 for n in nodes if (n.get("spec") or {}).get("unschedulable"))
        cap_count(
            cordoned + 1,
            len(nodes),
            ctx.settings.max_node_fraction,
            "nodes unschedulable",
            "chaos.max_node_fraction",
        )
        pods, _ = ctx.adapter.list("Pod", None, field_selector=f"spec.nodeName={node}")
        victims = [p for p in pods if drainable(p)]
        outside = [
            f"{_meta(p).get('namespace')}/{_meta(p).get('name')}"
            for p in victims
            if not ctx.guard.scope.namespace_allowed(_meta(p).get("namespace"))
        ]
        if outside:
            raise ChaosRefused(
                f"node_drain: node {node!r} runs pods outside chaos.namespaces "
                f"{list(ctx.guard.scope.namespaces)}: {', '.join(outside[:5])}"
                + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
            )
        how = "delete (force: PDBs bypassed)" if self.force else "evict through the Eviction API"
        steps = (
            f"cordon {node} (annotated with owner {ctx.owner.token}, dead-man expiry)",
            f"{how} {len(victims)} pod(s), retrying 429s until {self.deadline_s:g} s",
            f"uncordon {node} on rollback",
        )
        return Plan(self.name, (node,), steps, lasts, {"node": node})

    def inject(self, ctx: ChaosContext, plan: Plan) -> None:
        node = str(plan.data["node"])
        undo = {"kind": "uncordon", "node": node, "token": ctx.owner.token}
        intent = ctx.intend(self.name, node, undo, plan.lasts_s)
        ctx.guard.patch_node(
            node,
            {
                "spec": {"unschedulable": True},
                "metadata": {"annotations": ctx.marks(self.name, plan.lasts_s)},
            },
        )
        ctx.injected(intent, "cordoned")
        t0 = time.monotonic()
        result = self._evict_all(ctx, node, t0)
        result["drain_s"] = round(time.monotonic() - t0, 3)
        if ctx.fault is not None:
            ctx.fault.result.update(result)
        if result["blocked"]:
            ctx.note(
                f"node_drain {node}: not drained after {self.deadline_s:g} s; blocked by "
                + "; ".join(
                    f"{p}: PDB {', '.join(b) or '(none found)'}"
                    for p, b in result["blocked"].items()
                ),
                "warning",
            )
        else:
            ctx.note(
                f"node_drain {node}: drained in {result['drain_s']:.1f} s "
                f"({result['refused']} eviction(s) refused by a PDB on the way)"
            )

    def _evict_all(self, ctx: ChaosContext, node: str, t0: float) -> dict[str, Any]:
        backoff: dict[str, float] = {}
        next_try: dict[str, float] = {}
        refused = 0
        while True:
            pods, _ = ctx.adapter.list("Pod", None, field_selector=f"spec.nodeName={node}")
            left = [p for p in pods if drainable(p)]
            # pods being deleted still count until they are gone (the drain waits for them)
            waiting = [p for p in pods if _meta(p).get("deletionTimestamp")]
            if not left and not waiting:
                return {"blocked": {}, "refused": refused}
            now = time.monotonic()
            if now - t0 >= self.deadline_s:
                blocked = {
                    f"{_meta(p)['namespace']}/{_meta(p)['name']}": _pdbs_covering(ctx, p)
                    for p in left
                }
                for p in waiting:
                    blocked[f"{_meta(p)['namespace']}/{_meta(p)['name']}"] = ["(terminating)"]
                return {"blocked": blocked, "refused": refused}
            for p in left:
                ns, name = str(_meta(p)["namespace"]), str(_meta(p)["name"])
                key = f"{ns}/{name}"
                if next_try.get(key, 0.0) > now:
                    continue
                ctx.guard.scope.require_namespace(ns, f"pod {key}")
                if self.force:
                    ctx.guard.delete_pod(ns, name, self.grace_s, _meta(p).get("uid"))
                    continue
                outcome = evict(
                    ctx.guard,
                    ctx.timeline,
                    ns,
                    name,
                    by="chaos:node_drain",
                    grace_period_s=self.grace_s,
                )
                if outcome == "refused":
                    refused += 1
                    backoff[key] = min(5.0, backoff.get(key, 0.25) * 2)
                    next_try[key] = now + backoff[key]
            time.sleep(0.25)
