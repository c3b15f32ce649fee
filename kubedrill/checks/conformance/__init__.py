"""HPA and KEDA spec conformance: the envelope of replica steps the documented algorithms
allow, judged over the recorded HPA status (``engine``, ``keda``), and the checks that read
it off the timeline (``checks``). See docs/conformance.md."""

from kubedrill.checks.conformance.checks import HpaConformant, KedaConformant
from kubedrill.checks.conformance.engine import judge_hpa
from kubedrill.checks.conformance.keda import KedaSample, judge_keda
from kubedrill.checks.conformance.model import HpaSample, ReplicaSample, Slack, Violation

__all__ = [
    "HpaConformant",
    "HpaSample",
    "KedaConformant",
    "KedaSample",
    "ReplicaSample",
    "Slack",
    "Violation",
    "judge_hpa",
    "judge_keda",
]
