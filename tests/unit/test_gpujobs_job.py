"""The gpu_bench Job runner against a fake of the engine's kube adapter."""

from __future__ import annotations

import json
from typing import Any

from gpu_bench import peaks
from kubedrill.core.types import Verdict
from kubedrill.gpujobs import JobRunner, JobSpec, gpu_node_types, render_job
from kubedrill.timeline import MetricSample, Note, Timeline


def node(name: str, product: str, gpus: int, taint: bool = True) -> dict[str, Any]:
    taints = [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}] if taint else []
    taints.append({"key": "pool", "value": "gpu", "effect": "NoExecute"})
    taints.append({"key": "soft", "value": "x", "effect": "PreferNoSchedule"})
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": product}},
        "spec": {"taints": taints},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus), "cpu": "8"}},
    }


NODES = [
    node("gpu-0", "NVIDIA-H100-80GB-HBM3", 8),
    node("gpu-1", "NVIDIA-H100-80GB-HBM3", 8),
    node("l4-0", "NVIDIA-L4", 1),
    {"metadata": {"name": "cpu-0", "labels": {}}, "status": {"allocatable": {"cpu": "8"}}},
]


def result_line(name: str, tflops: float) -> str:
    suites = {"gemm": {"results": [{"name": "gemm_bf16_8192", "tflops": tflops, "cv_pct": 1}]}}
    j = peaks.judge("cuda", name, suites)
    doc = {
        "schema": "gpu_bench.result/1", "device": "cuda", "device_name": name, "cuda_run": True,
        "note": None, "verdict": j["verdict"], "suites": suites, "judgement": j,
        "telemetry": {"available": True},
    }  # fmt: skip
    return "gpu_bench.result " + json.dumps(doc)


class FakeKube:
    """The kube adapter's surface; a Job completes after ``polls`` looks at it."""

    def __init__(self, polls: int = 2, fail: set[str] | None = None, logs: str | None = None):
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.applied: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.looks: dict[str, int] = {}
        self.polls, self.fail, self._logs = polls, fail or set(), logs

    def apply(self, doc: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or doc["metadata"]["namespace"]
        self.applied.append(doc)
        self.objects[(doc["kind"], ns, doc["metadata"]["name"])] = json.loads(json.dumps(doc))
        return doc

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace or "", name))
        if obj is None or kind != "Job":
            return obj
        n = self.looks[name] = self.looks.get(name, 0) + 1
        if n >= self.polls:
            failed = any(name.startswith(f"gpu-bench-{p}") for p in self.fail)
            cond = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline"}  # fmt: skip
            obj["status"] = (
                {"failed": 1, "conditions": [cond]}
                if failed
                else {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            )
        return obj

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        self.deleted.append(name)
        return self.objects.pop((kind, namespace or "", name), None) is not None

    def list(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        assert kind == "Pod" and label_selector and label_selector.startswith("job-name=")
        job = label_selector.removeprefix("job-name=")
        if (("Job", namespace or "", job)) not in self.objects:
            return [], "1"
        pod = {"metadata": {"name": f"{job}-abcde"}, "spec": {"nodeName": "gpu-0"},
               "status": {"phase": "Running"}}  # fmt: skip
        return [pod], "1"

    def logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        assert container == "bench"
        if self._logs is not None:
            return self._logs
        if "l4" in pod:  # 40 of 121 TFLOP/s: 33 %, below the L4's 45 %
            return "loading torch\n" + result_line("NVIDIA L4", 40.0) + "\n"
        return "loading torch\n" + result_line("NVIDIA H100 80GB HBM3", 800.0) + "\n"


def test_node_types_group_gpu_nodes_by_product() -> None:
    types = gpu_node_types(NODES)
    assert [t.product for t in types] == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"]
    h100 = types[0]
    assert h100.nodes == ("gpu-0", "gpu-1") and h100.gpus_per_node == 8
    assert ("pool", "gpu", "NoExecute") in h100.tolerations
    assert all(effect != "PreferNoSchedule" for _, _, effect in h100.tolerations)


def test_the_job_asks_for_a_gpu_on_its_node_type_with_a_deadline_and_owner() -> None:
    h100 = gpu_node_types(NODES)[0]
    job = render_job(h100, JobSpec(owner="run-20260101-abcdef", namespace="drill", deadline_s=600))
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    assert len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["labels"]["kubedrill.io/owner"] == "run-20260101-abcdef"
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 600 and spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"]["kubedrill.io/process"] == "true"
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert {"key": "pool", "operator": "Equal", "value": "gpu", "effect": "NoExecute"} in pod[
        "tolerations"
    ]
    c = pod["containers"][0]
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert c["command"][:4] == ["python", "-m", "gpu_bench", "run"]
    assert c["args"][:2] == ["--json", "-"]
    pinned = render_job(gpu_node_types(NODES)[0], JobSpec(owner="r", namespace="n", node="gpu-1"))
    assert pinned["spec"]["template"]["spec"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "kubernetes.io/hostname": "gpu-1",
    }  # fmt: skip


def test_runner_runs_one_job_per_node_type_and_puts_results_on_the_timeline() -> None:
    kube, tl, said = FakeKube(), Timeline(), []  # type: ignore[var-annotated]
    runner = JobRunner(kube, tl, said.append, poll_s=0, sleep=lambda s: None)
    outs = runner.run(gpu_node_types(NODES), JobSpec(owner="r1", namespace="drill"))
    assert [o.state for o in outs] == ["succeeded", "succeeded"]
    assert len(kube.applied) == 2 and not kube.objects  # applied, then deleted
    assert any("pod gpu-bench-nvidia-h100" in m and "Running on gpu-0" in m for m in said)
    assert {o.data.labels["node_type"] for o in tl.select(MetricSample)} == {
        "NVIDIA-H100-80GB-HBM3", "NVIDIA-L4",
    }  # fmt: skip
    verdicts = {o.node_type.product: [c.evaluate(tl).verdict for c in o.checks()] for o in outs}
    assert verdicts["NVIDIA-H100-80GB-HBM3"][0] is Verdict.PASS  # 800 of 989 dense bf16
    assert verdicts["NVIDIA-L4"][0] is Verdict.FAIL
    assert tl.select(Note)


def test_a_failed_or_silent_job_is_error_with_its_reason() -> None:
    kube = FakeKube(fail={"nvidia-l4"})
    tl = Timeline()
    outs = JobRunner(kube, tl, poll_s=0, sleep=lambda s: None).run(
        gpu_node_types(NODES), JobSpec(owner="r2", namespace="drill")
    )
    l4 = next(o for o in outs if o.node_type.product == "NVIDIA-L4")
    assert l4.state == "failed" and "DeadlineExceeded" in l4.detail
    silent = FakeKube(logs="Traceback (most recent call last): CUDA error")
    outs2 = JobRunner(silent, Timeline(), poll_s=0, sleep=lambda s: None).run(
        gpu_node_types(NODES)[:1], JobSpec(owner="r3", namespace="drill")
    )
    assert outs2[0].state == "no_result" and "no 'gpu_bench.result' line" in outs2[0].detail
    res = outs2[0].checks()[0].evaluate(Timeline())
    assert res.verdict in (Verdict.ERROR, Verdict.INCONCLUSIVE)


def test_a_job_that_never_finishes_times_out_and_is_deleted() -> None:
    kube = FakeKube(polls=10**9)
    t = [0.0]
    runner = JobRunner(kube, Timeline(), poll_s=1, sleep=lambda s: t.__setitem__(0, t[0] + s),
                       clock=lambda: t[0])  # fmt: skip
    outs = runner.run(gpu_node_types(NODES)[:1], JobSpec(owner="r4", namespace="drill"), 5)
    assert outs[0].state == "timed_out" and not kube.objects
    assert outs[0].checks()[0].evaluate(Timeline()).verdict is not Verdict.PASS
