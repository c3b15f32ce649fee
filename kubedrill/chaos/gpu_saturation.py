"""``gpu_saturation``: keep GPUs busy at a level for a duration with the gpu_bench burner.

``GpuSaturation(pods_of="app=web", level=0.9, duration_s=60)`` targets the GPUs of those
pods (on the node that runs most of them), ``node="gpu-1"`` a node's, and both together
the GPUs of those pods on that node (one fault per node burns a service spread over
many). A Job pinned to the
node (``kubernetes.io/hostname``) runs ``python -m gpu_bench burn --busy <level>
--duration <s>``: duty-cycled, so the level is controllable; on a GPU with NVML the
burner corrects its duty cycle until NVML utilisation meets the level.

* **Sandbox** (kwok nodes): the Job asks for no GPU; it writes the target pods' devices'
  busy-ledger entries (``--devices`` from the pods' ``kubedrill.io/gpu-devices``,
  ``--ledger $(KUBEDRILL_GPU_LEDGER)``, ``--cuda off``), so the node's DCGM-named metrics
  show the level and the emulated service slows by 1/(1 - busy).
* **Real cluster**: the Job requests ``gpus`` whole GPUs (``nvidia.com/gpu``) on that node
  and burns them with CUDA (``--cuda on``): it saturates the node's other GPUs (power,
  clocks, PCIe and host contention), not the service's own devices, which a separate pod
  cannot reach without MPS or time-slicing. Exec into the target pods is not built.

The Job carries ``activeDeadlineSeconds`` (duration + ``margin_s``), the owner label and
the expiry annotation: if the runner dies, the API server ends the burner by itself and
``kubedrill chaos cleanup`` / the janitor delete it. Rollback deletes the Job and waits
for its pods to go; the burner stops on SIGTERM and removes its ledger entries.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from kubedrill.chaos.engine import ChaosContext, Plan
from kubedrill.chaos.node_drain import pick_node
from kubedrill.chaos.safety import ChaosRefused
from kubedrill.chaos.undo import EXPIRES, HOLDER, OWNER
from kubedrill.core.errors import ActionFailed

__all__ = ["GpuSaturation", "is_kwok_node"]

GPU = "nvidia.com/gpu"
DEVICES_ANNOTATION = "kubedrill.io/gpu-devices"  # the sandbox's pod runner sets it


def is_kwok_node(node: dict[str, Any]) -> bool:
    m = node.get("metadata") or {}
    return (m.get("annotations") or {}).get("kwok.x-k8s.io/node") == "fake" or (
        m.get("labels") or {}
    ).get("type") == "kwok"


@dataclass(frozen=True)
class GpuSaturation:
    name: ClassVar[str] = "gpu_saturation"
    level: float
    duration_s: float
    node: str | None = None
    pods_of: str | None = None
    namespace: str | None = None
    gpus: int = 1  # real clusters: whole GPUs the burner Job requests
    image: str = "nvcr.io/nvidia/pytorch:25.01-py3"  # any image with torch + gpu_bench
    margin_s: float = 60.0
    start_timeout_s: float = 60.0

    def plan(self, ctx: ChaosContext) -> Plan:
        if not 0 < self.level <= 1:
            raise ChaosRefused(f"gpu_saturation: level must be in (0, 1] (got {self.level})")
        if not 0 < self.duration_s <= ctx.settings.max_fault_s:
            raise ChaosRefused(
                f"gpu_saturation: duration_s {self.duration_s:g} s is not in (0, "
                f"chaos.max_fault_s = {ctx.settings.max_fault_s:g} s]"
            )
        if self.node is None and self.pods_of is None:
            raise ChaosRefused("gpu_saturation: give node=, pods_of=, or both")
        ns = self.namespace or ctx.namespace
        ctx.guard.scope.require_namespace(ns, "the burner Job")
        node = self.node or pick_node(ctx, str(self.pods_of), ns)
        ctx.guard.scope.require_node(node)
        obj = ctx.adapter.get("Node", None, node)
        if obj is None:
            raise ChaosRefused(f"gpu_saturation: node {node!r} does not exist")
        capacity = int(str(((obj.get("status") or {}).get("allocatable") or {}).get(GPU, "0")))
        if capacity == 0:
            raise ChaosRefused(f"gpu_saturation: node {node!r} has no {GPU}")
        sandbox = is_kwok_node(obj)
        devices: list[str] = []
        if sandbox:
            if self.pods_of is None:
                devices = [str(i) for i in range(capacity)]
            else:
                pods, _ = ctx.adapter.list("Pod", ns, label_selector=self.pods_of)
                for p in pods:
                    if (p.get("spec") or {}).get("nodeName") != node:
                        continue
                    ann = (p.get("metadata") or {}).get("annotations") or {}
                    devices += [d for d in str(ann.get(DEVICES_ANNOTATION, "")).split(",") if d]
                if not devices:
                    raise ChaosRefused(
                        f"gpu_saturation: the pods of {self.pods_of!r} on {node} hold no GPU "
                        f"device (annotation {DEVICES_ANNOTATION})"
                    )
            what = f"devices {','.join(sorted(set(devices)))} of {node} (sandbox ledger)"
        else:
            what = f"{self.gpus} GPU(s) of {node} (CUDA)"
        job = f"kd-burn-{node}"[:40].rstrip("-") + f"-{ctx.owner.token[-6:]}"
        steps = (
            f"Job {ns}/{job} pinned to {node}: burn {what} at {self.level:.0%} for "
            f"{self.duration_s:g} s (activeDeadlineSeconds {self._deadline()})",
            "delete the Job and wait for its pod to go on rollback",
        )
        data = {
            "namespace": ns,
            "node": node,
            "job": job,
            "devices": sorted(set(devices)),
            "sandbox": sandbox,
        }
        return Plan(self.name, (node,), steps, self.duration_s, data)

    def _deadline(self) -> int:
        return math.ceil(self.duration_s + self.margin_s)

    def render(self, ctx: ChaosContext, plan: Plan) -> dict[str, Any]:
        d = plan.data
        args = ["--busy", f"{self.level:g}", "--duration", f"{self.duration_s:g}", "--json"]
        resources: dict[str, Any] = {}
        if d["sandbox"]:
            args += [
                "--devices",
                ",".join(d["devices"]),
                "--ledger",
                "$(KUBEDRILL_GPU_LEDGER)",
                "--cuda",
                "off",
            ]
        else:
            args += ["--cuda", "on"]
            resources = {"limits": {GPU: str(self.gpus)}}
        labels = {
            OWNER: ctx.owner.token,
            "app.kubernetes.io/name": "kubedrill-burner",
            "kubedrill.io/process": "true",
        }
        marks = ctx.marks(self.name, plan.lasts_s)
        ann = {EXPIRES: marks[EXPIRES], HOLDER: marks[HOLDER]}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": d["job"],
                "namespace": d["namespace"],
                "labels": labels,
                "annotations": ann,
            },
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": self._deadline(),
                "ttlSecondsAfterFinished": 300,
                "template": {
                    "metadata": {"labels": labels, "annotations": ann},
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 5,
                        "nodeSelector": {"kubernetes.io/hostname": d["node"]},
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": "burn",
                                "image": self.image,
                                "command": ["python", "-m", "gpu_bench", "burn"],
                                "args": args,
                                "resources": resources,
                            }
                        ],
                    },
                },
            },
        }

    def inject(self, ctx: ChaosContext, plan: Plan) -> None:
        d = plan.data
        ns, job = str(d["namespace"]), str(d["job"])
        undo = {"kind": "delete_job", "namespace": ns, "name": job, "token": ctx.owner.token}
        intent = ctx.intend(self.name, str(d["node"]), undo, plan.lasts_s)
        ctx.guard.create_job(self.render(ctx, plan))
        deadline = time.monotonic() + self.start_timeout_s
        last = "no pod yet"
        while time.monotonic() < deadline:
            mine = f"{OWNER}={ctx.owner.token},job-name={job}"  # the Job controller's label
            pods, _ = ctx.adapter.list("Pod", ns, label_selector=mine)
            for p in pods:
                st = p.get("status") or {}
                if st.get("phase") == "Running":
                    ctx.injected(intent, f"burning at {self.level:.0%} for {self.duration_s:g} s")
                    if ctx.fault is not None:
                        ctx.fault.result["burner_pod"] = p["metadata"]["name"]
                    return
                last = f"pod {p['metadata']['name']} {st.get('phase')}"
                if st.get("phase") in ("Failed", "Succeeded"):
                    raise ActionFailed(f"gpu_saturation: burner {last} before it burned")
            time.sleep(0.25)
        raise ActionFailed(
            f"gpu_saturation: burner Job {ns}/{job} not Running after "
            f"{self.start_timeout_s:g} s ({last})"
        )
