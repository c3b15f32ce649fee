"""``pod_kill``: kill pods by selector, all at once or rolling; or crash their container.

``PodKill(selector="app=web", count=1)`` deletes one Running pod of the selector in the
target namespace with ``grace_s`` (0: a crash, the process gets SIGKILL at once; None: the
pod's own grace period). ``percent=`` instead of ``count=`` takes a share (rounded up).
``mode="rolling"`` kills one at a time, ``interval_s`` apart. ``crash=True`` keeps the pod
and kills its process, which restarts by ``restartPolicy``: the sandbox does this through
its pod runner (annotation ``sandbox.kubedrill.io/crash``); elsewhere it is refused (it
would need ``pods/exec`` into every container image).

A selector that matches no Running pod is an error, not a silent success; more than
``chaos.max_pod_fraction`` of the matched pods at once is refused. Nothing is rolled back:
the controller replaces killed pods (the journal records the kill all the same).
"""

from __future__ import annotations

import math
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from kubedrill.chaos.engine import ChaosContext, Plan
from kubedrill.chaos.safety import ChaosRefused, cap_count

__all__ = ["CRASH_ANNOTATION", "PodKill"]

CRASH_ANNOTATION = "sandbox.kubedrill.io/crash"  # read by kubedrill/sandbox/podrunner.py
_PROCESS_LABEL = "kubedrill.io/process"


def _running(pod: dict[str, Any]) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return status.get("phase") == "Running" and not meta.get("deletionTimestamp")


@dataclass(frozen=True)
class PodKill:
    name: ClassVar[str] = "pod_kill"
    selector: str
    namespace: str | None = None  # default: the run's target namespace
    count: int | None = None
    percent: float | None = None
    grace_s: int | None = 0
    mode: Literal["all", "rolling"] = "all"
    interval_s: float = 5.0
    crash: bool = False
    seed: int | None = None

    def plan(self, ctx: ChaosContext) -> Plan:
        ns = self.namespace or ctx.namespace
        ctx.guard.scope.require_namespace(ns, f"selector {self.selector!r}")
        if (self.count is None) == (self.percent is None):
            raise ChaosRefused("pod_kill: give exactly one of count= or percent=")
        if self.count is not None and self.count < 1:
            raise ChaosRefused(f"pod_kill: count must be at least 1 (got {self.count})")
        if self.percent is not None and not 0 < self.percent <= 100:
            raise ChaosRefused(f"pod_kill: percent must be in (0, 100] (got {self.percent})")
        pods, _ = ctx.adapter.list("Pod", ns, label_selector=self.selector)
        running = sorted((p for p in pods if _running(p)), key=lambda p: p["metadata"]["name"])
        if not running:
            raise ChaosRefused(
                f"pod_kill: selector {self.selector!r} matches no Running pod in namespace "
                f"{ns!r} ({len(pods)} pod(s) matched in any phase)"
            )
        n = self.count if self.count is not None else math.ceil(len(running) * self.percent / 100)  # type: ignore[operator]
        if n > len(running):
            raise ChaosRefused(
                f"pod_kill: count {n} but selector {self.selector!r} matches {len(running)} "
                "Running pod(s)"
            )
        at_once = 1 if self.mode == "rolling" else n
        cap_count(
            at_once, len(running), ctx.settings.max_pod_fraction, "pods", "chaos.max_pod_fraction"
        )
        if self.crash:
            not_sandbox = [
                p["metadata"]["name"]
                for p in running
                if (p["metadata"].get("labels") or {}).get(_PROCESS_LABEL) != "true"
            ]
            if not_sandbox:
                raise ChaosRefused(
                    "pod_kill crash=True needs the sandbox's process-backed pods (label "
                    f"{_PROCESS_LABEL}=true); {', '.join(not_sandbox[:3])} are not"
                )
        victims = random.Random(self.seed).sample(running, n)
        names = tuple(f"{ns}/{p['metadata']['name']}" for p in victims)
        how = (
            "crash the container of"
            if self.crash
            else (f"delete (grace {self.grace_s if self.grace_s is not None else 'the pod own'} s)")
        )
        steps = (
            f"{how} {n} of {len(running)} Running pods matching {self.selector!r}"
            + (f", one every {self.interval_s:g} s" if self.mode == "rolling" else ", at once"),
            "nothing to roll back: the controller replaces them",
        )
        lasts = self.interval_s * (n - 1) if self.mode == "rolling" else 0.0
        uids = {p["metadata"]["name"]: p["metadata"].get("uid") for p in victims}
        return Plan(self.name, names, steps, lasts, {"namespace": ns, "uids": uids})

    def inject(self, ctx: ChaosContext, plan: Plan) -> None:
        ns, uids = plan.data["namespace"], plan.data["uids"]
        for i, target in enumerate(plan.targets):
            if i and self.mode == "rolling":
                time.sleep(self.interval_s)
            pod = target.split("/", 1)[1]
            why = "the controller replaces a killed pod" if not self.crash else "the pod restarts"
            intent = ctx.intend(self.name, target, {"kind": "none", "why": why}, plan.lasts_s)
            if self.crash:
                ctx.guard.annotate_pod(ns, pod, {CRASH_ANNOTATION: uuid.uuid4().hex[:12]})
                ctx.injected(intent, "container crashed (SIGKILL)")
            else:
                gone = ctx.guard.delete_pod(ns, pod, self.grace_s, uids.get(pod))
                ctx.injected(intent, "deleted" if gone else "already gone")
