"""The gpu_bench Job runner end to end on the sandbox: a real Job through the real Job
controller and scheduler onto a kwok GPU node, its pod run by the pod runner as a local
`python -m gpu_bench run` on the CPU, the JSON read back through `GET pods/{name}/log`
(API server -> the node's kubelet endpoint, kwok -> the pod's CRI log), the results on the
timeline as checks, the Job deleted afterwards; and broken Jobs that say why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kubedrill.adapters.kube import KubeAdapter
from kubedrill.core.types import Verdict
from kubedrill.gpujobs import JobRunner, JobSpec, gpu_node_types
from kubedrill.gpujobs.job import GPU_RESOURCE, OWNER_LABEL
from kubedrill.sandbox.state import State
from kubedrill.timeline import MetricSample, Note, Timeline
from tests.integration.kit import wait_for

TINY = ("--threads", "1", "--runs", "3", "--warmup", "1")


@pytest.fixture(scope="module")
def kube(sandbox: State) -> Iterator[KubeAdapter]:
    adapter = KubeAdapter.from_kubeconfig(sandbox.paths.kubeconfig)
    yield adapter
    adapter.close()


def _run(kube: KubeAdapter, ns: str, spec: JobSpec, seen: dict[str, Any]) -> Any:
    def progress(msg: str) -> None:  # look at the Job and its pod while they exist
        job = msg.split(":", 1)[0]
        seen.setdefault("job", kube.get("Job", ns, job))
        pods, _ = kube.list("Pod", ns, label_selector=f"job-name={job}")
        if pods and (pods[0].get("spec") or {}).get("nodeName"):
            seen["pod"] = pods[0]
        seen.setdefault("said", []).append(msg)

    nodes, _ = kube.list("Node", None)
    types = gpu_node_types(nodes)
    assert [t.product for t in types] == ["NVIDIA-H100-80GB-HBM3"]
    timeline = Timeline()
    outs = JobRunner(kube, timeline, progress, poll_s=0.5).run(types, spec, timeout_s=90)
    return outs[0], timeline


def _gone(kube: KubeAdapter, ns: str, job: str) -> bool:
    pods, _ = kube.list("Pod", ns, label_selector=f"job-name={job}")
    return kube.get("Job", ns, job) is None and not pods


def test_gpu_bench_job_runs_on_a_gpu_node_and_its_results_become_checks(
    kube: KubeAdapter, ns: str
) -> None:
    spec = JobSpec(owner="itest-run", namespace=ns, suites=("gemm", "copy"), deadline_s=60,
                   extra_args=TINY)  # fmt: skip
    seen: dict[str, Any] = {}
    out, timeline = _run(kube, ns, spec, seen)

    job = seen["job"]  # rendered for the node type: GPU limit, owner labels, a deadline
    assert job["metadata"]["labels"][OWNER_LABEL] == "itest-run"
    assert job["spec"]["activeDeadlineSeconds"] == 60
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"][GPU_RESOURCE] == "1"
    pod = seen["pod"]  # scheduled by the real scheduler onto a GPU node, given a device
    assert pod["spec"]["nodeName"] in ("gpu-0", "gpu-1")
    assert pod["metadata"]["labels"][OWNER_LABEL] == "itest-run"

    assert out.state == "succeeded", out.detail
    assert out.result is not None and out.result.device == "cpu"
    names = {o.data.name for o in timeline.select(MetricSample)}
    assert {"gpu_bench.gemm_bf16.value", "gpu_bench.copy.value"} <= names
    assert any("CPU only, CUDA not run" in o.data.text for o in timeline.select(Note))
    results = [c.evaluate(timeline) for c in out.checks()]
    assert {r.name.split()[1] for r in results} == {"gemm_bf16", "copy"}
    for r in results:  # on the CPU: never a GPU peak claim, never a pass
        assert r.verdict is Verdict.INCONCLUSIVE, r
        assert "device: cpu" in r.reason

    wait_for(lambda: _gone(kube, ns, out.job), 30, f"Job {out.job} and its pod deleted")


def test_broken_gpu_bench_jobs_are_errors_that_say_why(kube: KubeAdapter, ns: str) -> None:
    bad = JobSpec(owner="itest-bad", namespace=ns, suites=("gemm", "nosuch"), deadline_s=60,
                  extra_args=TINY)  # fmt: skip
    out, timeline = _run(kube, ns, bad, {})
    assert out.state == "failed"
    results = [c.evaluate(timeline) for c in out.checks()]
    assert results and all(r.verdict is Verdict.ERROR for r in results)
    # the Job controller's reason, and gpu_bench's own message read from the pod's logs
    assert "BackoffLimitExceeded" in results[0].reason, results[0].reason
    assert "nosuch" in results[0].reason and "--suite" in results[0].reason
    wait_for(lambda: _gone(kube, ns, out.job), 30, f"Job {out.job} and its pod deleted")

    slow = JobSpec(owner="itest-slow", namespace=ns, suites=("gemm",), deadline_s=1,
                   extra_args=TINY)  # fmt: skip
    out, timeline = _run(kube, ns, slow, {})
    assert out.state == "failed"
    reason = out.checks()[0].evaluate(timeline).reason
    assert out.checks()[0].evaluate(timeline).verdict is Verdict.ERROR
    assert "DeadlineExceeded" in reason, reason
    wait_for(lambda: _gone(kube, ns, out.job), 30, f"Job {out.job} and its pod deleted")
