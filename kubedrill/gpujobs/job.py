"""The Kubernetes Job that runs gpu_bench on a GPU node type, and its runner.

One Job per GPU node type (nodes grouped by ``nvidia.com/gpu.product``, GPU Feature
Discovery's label): ``nvidia.com/gpu`` in limits, tolerations for the node type's taints,
a node selector, ``activeDeadlineSeconds``, ``backoffLimit: 0``, owner labels
(``kubedrill.io/owner``) and the sandbox's process label (``kubedrill.io/process``: inert
on a real cluster, it makes the sandbox run the pod as a local process). The runner
applies the Jobs, waits with progress, reads the JSON from each pod's logs, puts the
results on the timeline and deletes the Jobs. It talks to the cluster only through the
engine's kube adapter (its shape: :class:`JobApi`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from kubedrill.core.errors import KubedrillError, truncate
from kubedrill.gpujobs.results import (
    BenchResult,
    GpuBenchCheck,
    GpuBenchResultError,
    checks_for,
    parse_logs,
    record_result,
)
from kubedrill.timeline import Note, Timeline

__all__ = [
    "GPU_RESOURCE",
    "OWNER_LABEL",
    "PRODUCT_LABEL",
    "GpuNodeType",
    "JobApi",
    "JobOutcome",
    "JobRunner",
    "JobSpec",
    "gpu_node_types",
    "render_job",
]

GPU_RESOURCE = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
OWNER_LABEL = "kubedrill.io/owner"
NODE_TYPE_LABEL = "kubedrill.io/gpu-node-type"
PROCESS_LABEL = "kubedrill.io/process"  # the sandbox's (kubedrill/sandbox/podspec.py)
HOSTNAME_LABEL = "kubernetes.io/hostname"
CONTAINER = "bench"


class JobApi(Protocol):
    """The kube adapter's methods the runner uses (kubedrill.adapters.kube)."""

    def apply(self, doc: dict[str, Any], namespace: str | None = None) -> dict[str, Any]: ...
    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...
    def delete(self, kind: str, namespace: str | None, name: str) -> bool: ...
    def list(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]: ...
    def logs(self, namespace: str, pod: str, container: str | None = None) -> str: ...


@dataclass(frozen=True, slots=True)
class GpuNodeType:
    product: str
    nodes: tuple[str, ...]
    gpus_per_node: int
    tolerations: tuple[tuple[str, str, str], ...]  # (key, value or "", effect)

    @property
    def slug(self) -> str:
        s = re.sub(r"[^a-z0-9-]+", "-", self.product.lower()).strip("-")
        return s[:40].strip("-") or "gpu"


def gpu_node_types(nodes: Sequence[Mapping[str, Any]]) -> list[GpuNodeType]:
    """Nodes with allocatable ``nvidia.com/gpu``, grouped by their product label."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for n in nodes:
        alloc = ((n.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)
        try:
            gpus = int(str(alloc)) if alloc is not None else 0
        except ValueError:
            gpus = 0
        if gpus > 0:
            product = ((n.get("metadata") or {}).get("labels") or {}).get(PRODUCT_LABEL, "")
            groups.setdefault(str(product), []).append(n)
    out = []
    for product, members in sorted(groups.items()):
        taints = {
            (str(t.get("key", "")), str(t.get("value", "") or ""), str(t.get("effect", "")))
            for m in members
            for t in ((m.get("spec") or {}).get("taints") or [])
            if t.get("effect") in ("NoSchedule", "NoExecute")
        }
        gpus = min(
            int(str(((m.get("status") or {}).get("allocatable") or {})[GPU_RESOURCE]))
            for m in members
        )
        names = tuple(sorted(str((m.get("metadata") or {}).get("name", "")) for m in members))
        out.append(GpuNodeType(product or "unlabelled", names, gpus, tuple(sorted(taints))))
    return out


@dataclass(frozen=True, slots=True)
class JobSpec:
    owner: str  # the run id: kubedrill.io/owner
    namespace: str
    image: str = "nvcr.io/nvidia/pytorch:25.01-py3"  # any image with torch + nvidia-ml-py
    suites: tuple[str, ...] = ("gemm", "copy", "h2d", "inference")
    gpus: int = 1
    deadline_s: int = 900
    extra_args: tuple[str, ...] = ()
    node: str | None = None  # pin to one node (kubernetes.io/hostname), e.g. the service's


def _name(owner: str, nt: GpuNodeType) -> str:
    own = re.sub(r"[^a-z0-9-]+", "-", owner.lower()).strip("-")[:12].strip("-") or "run"
    return f"gpu-bench-{nt.slug}-{own}"[:63].rstrip("-")


def render_job(nt: GpuNodeType, spec: JobSpec) -> dict[str, Any]:
    labels = {
        OWNER_LABEL: re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.owner)[:63].strip("-_.") or "run",
        NODE_TYPE_LABEL: nt.slug,
        "app.kubernetes.io/name": "gpu-bench",
    }
    tolerations: list[dict[str, str]] = [
        {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
    ]
    for key, value, effect in nt.tolerations:
        tol = {"key": key, "operator": "Equal", "value": value, "effect": effect}
        if not value:
            tol = {"key": key, "operator": "Exists", "effect": effect}
        if tol not in tolerations:
            tolerations.append(tol)
    selector = {PRODUCT_LABEL: nt.product} if nt.product != "unlabelled" else {}
    if spec.node is not None:
        selector[HOSTNAME_LABEL] = spec.node
    command = ["python", "-m", "gpu_bench", "run", "--suite", ",".join(spec.suites)]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": _name(spec.owner, nt), "namespace": spec.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.deadline_s,
            "template": {
                "metadata": {"labels": {**labels, PROCESS_LABEL: "true"}},
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": tolerations,
                    "nodeSelector": selector,
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": spec.image,
                            "command": command,
                            "args": ["--json", "-", *spec.extra_args],
                            "resources": {"limits": {GPU_RESOURCE: str(spec.gpus)}},
                        }
                    ],
                },
            },
        },
    }


@dataclass
class JobOutcome:
    node_type: GpuNodeType
    job: str
    state: Literal["succeeded", "failed", "timed_out", "no_result"] = "timed_out"
    pod: str | None = None
    result: BenchResult | None = None
    detail: str = ""
    progress: list[str] = field(default_factory=list)

    def checks(self, phase: str | None = None) -> list[GpuBenchCheck]:
        failure = None if self.result is not None else f"gpu_bench Job {self.job}: {self.detail}"
        return checks_for(self.result, self.node_type.product, phase, failure)


def _job_state(job: Mapping[str, Any] | None) -> tuple[str | None, str]:
    if job is None:
        return "failed", "the Job is gone"
    st = job.get("status") or {}
    # The Job controller's conditions decide, never the pod counts: a pod killed for the
    # deadline counts as failed before the condition says why. FailureTarget and
    # SuccessCriteriaMet (1.31+) come first, while the controller still stops the pods.
    final = {"Complete": "succeeded", "SuccessCriteriaMet": "succeeded",
             "Failed": "failed", "FailureTarget": "failed"}  # fmt: skip
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in final:
            why = f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
            return final[c["type"]], why
    return None, f"active {int(st.get('active') or 0)}"


def _pod_logs(kube: JobApi, ns: str, pod: str, container: str) -> str:
    """``GET pods/{pod}/log`` through the kube adapter (in the sandbox, kwok serves it)."""
    return kube.logs(ns, pod, container=container)


class JobRunner:
    """Runs one gpu_bench Job per GPU node type at once, and waits for all of them."""

    def __init__(
        self,
        kube: JobApi,
        timeline: Timeline | None = None,
        progress: Callable[[str], None] | None = None,
        *,
        poll_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.timeline = kube, timeline
        self._say = progress or (lambda _msg: None)
        self.poll_s, self._sleep, self._clock = poll_s, sleep, clock

    def _progress(self, out: JobOutcome, msg: str) -> None:
        if out.progress and out.progress[-1] == msg:
            return
        out.progress.append(msg)
        self._say(f"{out.job}: {msg}")

    def run(
        self, node_types: Sequence[GpuNodeType], spec: JobSpec, timeout_s: float | None = None
    ) -> list[JobOutcome]:
        ns = spec.namespace
        outs = []
        for nt in node_types:
            doc = render_job(nt, spec)
            out = JobOutcome(nt, doc["metadata"]["name"])
            self.kube.delete("Job", ns, out.job)  # a leftover of an interrupted run
            self.kube.apply(doc, namespace=ns)
            self._progress(out, f"applied for {nt.product} ({len(nt.nodes)} nodes)")
            outs.append(out)
        deadline = self._clock() + (timeout_s if timeout_s is not None else spec.deadline_s + 60)
        try:
            pending = list(outs)
            while pending:
                for out in list(pending):
                    if self._poll(out, ns):
                        pending.remove(out)
                if not pending:
                    break
                if self._clock() >= deadline:
                    for out in pending:
                        out.state, out.detail = "timed_out", f"not done after {timeout_s}s"
                    break
                self._sleep(self.poll_s)
            for out in outs:
                self._collect(out, ns)
        finally:
            for out in outs:
                try:
                    self.kube.delete("Job", ns, out.job)
                except KubedrillError as e:
                    self._progress(out, f"could not delete: {truncate(str(e), 120)}")
        return outs

    def _poll(self, out: JobOutcome, ns: str) -> bool:
        state, why = _job_state(self.kube.get("Job", ns, out.job))
        pods, _ = self.kube.list("Pod", ns, label_selector=f"job-name={out.job}")
        if pods:
            pod = pods[-1]
            out.pod = str(pod["metadata"]["name"])
            phase = (pod.get("status") or {}).get("phase", "Pending")
            node = (pod.get("spec") or {}).get("nodeName") or "unscheduled"
            self._progress(out, f"pod {out.pod} {phase} on {node}")
        if state is None:
            return False
        out.state = "succeeded" if state == "succeeded" else "failed"
        out.detail = why
        self._progress(out, f"{state}{': ' + why if why else ''}")
        return True

    def _collect(self, out: JobOutcome, ns: str) -> None:
        if out.pod is not None and out.state in ("succeeded", "failed"):
            try:
                text = _pod_logs(self.kube, ns, out.pod, CONTAINER)
                out.result = parse_logs(text, out.node_type.product, f"logs of pod {ns}/{out.pod}")
            except (KubedrillError, GpuBenchResultError) as e:
                if out.state == "succeeded":
                    out.state = "no_result"
                out.detail = "; ".join(x for x in (out.detail, truncate(str(e), 700)) if x)
        elif out.pod is None:
            out.detail = out.detail or "no pod was created"
        if self.timeline is None:
            return
        if out.result is not None:
            record_result(self.timeline, out.result, source=f"gpu_bench/{out.node_type.slug}")
        else:
            self.timeline.record(
                Note(f"gpu_bench Job {out.job} ({out.state}): {out.detail}", "error"),
                source=f"gpu_bench/{out.node_type.slug}",
            )
