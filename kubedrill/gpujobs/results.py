"""A gpu_bench result (``python -m gpu_bench run --json``) as kubedrill evidence: parsed
once at the edge into typed objects, recorded on the timeline as ``gpu_bench.*`` metric
samples, and judged by :class:`GpuBenchCheck` from the timeline like every other check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubedrill.checks.base import Check, Evidence
from kubedrill.core.errors import KubedrillError, truncate
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import MetricSample, Note, Timeline

__all__ = [
    "RESULT_MARKER",
    "BenchResult",
    "BenchTest",
    "GpuBenchCheck",
    "GpuBenchResultError",
    "checks_for",
    "parse_logs",
    "parse_result",
    "record_result",
]

RESULT_MARKER = "gpu_bench.result "  # as gpu_bench/run.py prints it (gpu_bench is not imported)
SCHEMA = "gpu_bench.result/1"
CV_MAX_PCT = 3.0


class GpuBenchResultError(KubedrillError):
    """A gpu_bench result that cannot be read; the message names where and which key."""


@dataclass(frozen=True, slots=True)
class BenchTest:
    test: str
    value: float | None
    unit: str
    peak: float | None
    ratio: float | None
    level: float | None
    cv_pct: float | None
    verdict: str
    reason: str


@dataclass(frozen=True, slots=True)
class BenchResult:
    node_type: str
    device: str  # cuda | cpu
    device_name: str
    model: str | None
    cuda_run: bool
    note: str | None
    verdict: str
    tests: tuple[BenchTest, ...]
    figures: tuple[tuple[str, str, float], ...]  # (case, figure, value): every suite result
    telemetry_available: bool


def _num(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    v = doc.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise GpuBenchResultError(f"{where}: {key}: expected a number or null, got {v!r}")
    return float(v)


def _str(doc: Mapping[str, Any], key: str, where: str) -> str:
    v = doc.get(key)
    if not isinstance(v, str):
        raise GpuBenchResultError(f"{where}: {key}: expected a string, got {truncate(repr(v), 60)}")
    return v


_FIGURES = ("tflops", "gbps", "rows_per_s", "median_ms", "p95_ms", "cv_pct")


def parse_result(doc: object, node_type: str, where: str = "gpu_bench result") -> BenchResult:
    if not isinstance(doc, Mapping):
        raise GpuBenchResultError(f"{where}: expected a JSON object")
    if doc.get("schema") != SCHEMA:
        raise GpuBenchResultError(
            f"{where}: schema: expected {SCHEMA!r}, got {doc.get('schema')!r}"
        )
    judgement = doc.get("judgement")
    if not isinstance(judgement, Mapping) or not isinstance(judgement.get("tests"), list):
        raise GpuBenchResultError(f"{where}: judgement.tests: expected a list")
    tests = []
    for i, t in enumerate(judgement["tests"]):
        w = f"{where}: judgement.tests[{i}]"
        if not isinstance(t, Mapping):
            raise GpuBenchResultError(f"{w}: expected an object")
        tests.append(
            BenchTest(
                test=_str(t, "test", w),
                value=_num(t, "value", w),
                unit=_str(t, "unit", w),
                peak=_num(t, "peak", w),
                ratio=_num(t, "ratio", w),
                level=_num(t, "level", w),
                cv_pct=_num(t, "cv_pct", w),
                verdict=_str(t, "verdict", w),
                reason=_str(t, "reason", w),
            )
        )
    figures: list[tuple[str, str, float]] = []
    suites = doc.get("suites")
    if not isinstance(suites, Mapping):
        raise GpuBenchResultError(f"{where}: suites: expected an object")
    for sname, suite in suites.items():
        for j, r in enumerate((suite or {}).get("results") or []):
            w = f"{where}: suites.{sname}.results[{j}]"
            case = _str(r, "name", w)
            for fig in _FIGURES:
                v = _num(r, fig, w)
                if v is not None:
                    figures.append((case, fig, v))
    telemetry = doc.get("telemetry")
    model = judgement.get("model")
    return BenchResult(
        node_type=node_type,
        device=_str(doc, "device", where),
        device_name=_str(doc, "device_name", where),
        model=model if isinstance(model, str) else None,
        cuda_run=doc.get("cuda_run") is True,
        note=doc.get("note") if isinstance(doc.get("note"), str) else None,
        verdict=_str(doc, "verdict", where),
        tests=tuple(tests),
        figures=tuple(figures),
        telemetry_available=isinstance(telemetry, Mapping) and telemetry.get("available") is True,
    )


def parse_logs(text: str, node_type: str, where: str) -> BenchResult:
    """The last ``gpu_bench.result {...}`` line of a pod's logs."""
    lines = [ln for ln in text.splitlines() if ln.startswith(RESULT_MARKER)]
    if not lines:
        flat = " ".join(text.split())  # the end says why (a traceback's or argparse's last line)
        tail = ("…" + flat[-400:] if len(flat) > 400 else flat) or "(empty)"
        raise GpuBenchResultError(f"{where}: no '{RESULT_MARKER.strip()}' line in the logs: {tail}")
    try:
        doc = json.loads(lines[-1][len(RESULT_MARKER) :])
    except ValueError as e:
        raise GpuBenchResultError(f"{where}: the result line is not JSON: {e}") from e
    return parse_result(doc, node_type, where)


def _labels(r: BenchResult) -> dict[str, str]:
    return {
        "node_type": r.node_type,
        "device": r.device,
        "device_name": r.device_name,
        "model": r.model or "",
    }


def record_result(timeline: Timeline, r: BenchResult, source: str = "gpu_bench") -> None:
    """Every figure and judged ratio as ``gpu_bench.*`` metric samples, and a note."""
    labels = _labels(r)
    for case, fig, value in r.figures:
        timeline.record(MetricSample(f"gpu_bench.{case}.{fig}", value, labels), source)
    for t in r.tests:
        if t.value is not None:
            timeline.record(MetricSample(f"gpu_bench.{t.test}.value", t.value, labels), source)
        if t.ratio is not None:
            timeline.record(MetricSample(f"gpu_bench.{t.test}.ratio", t.ratio, labels), source)
        if t.cv_pct is not None:
            timeline.record(MetricSample(f"gpu_bench.{t.test}.cv_pct", t.cv_pct, labels), source)
    what = "CUDA" if r.cuda_run else "CPU only, CUDA not run"
    text = f"gpu_bench on {r.node_type}: {r.device_name} ({what}); gpu_bench verdict {r.verdict}"
    timeline.record(Note(text + (f"; {r.note}" if r.note else "")), source)


class GpuBenchCheck(Check):
    """``gpu_bench.<test>.ratio >= level`` for one node type, from the timeline.

    No ratio is missing evidence (INCONCLUSIVE, with why: a CPU run, an unknown model, a
    job that never reported); a cv above 3 % is a doubt; ``failure`` (the job failed) is
    ERROR naming it."""

    kind = "gpu_bench"

    def __init__(
        self,
        test: str,
        node_type: str,
        level: float | None,
        phase: str | None = None,
        *,
        failure: str | None = None,
        absolute_unit: str | None = None,
    ) -> None:
        shown = f"{level:g}" if level is not None else "its model's level (none known)"
        what = f"{absolute_unit} >=" if absolute_unit else "ratio to peak >="
        super().__init__(
            Threshold("value", ">=", level if level is not None else 0.0),
            phase,
            f"gpu_bench {test} on {node_type}: {what} {shown}",
        )
        self.test, self.node_type, self.level, self.failure = test, node_type, level, failure
        self.absolute = absolute_unit is not None

    def _latest(self, timeline: Timeline, window: Window, fig: str) -> MetricSample | None:
        name = f"gpu_bench.{self.test}.{fig}"
        obs = [
            o.data
            for o in timeline.select(MetricSample, window)
            if o.data.name == name and o.data.labels.get("node_type") == self.node_type
        ]
        return obs[-1] if obs else None

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        if self.failure is not None:
            return Evidence(None, self.failure, verdict=Verdict.ERROR)
        ratio = self._latest(timeline, window, "ratio")
        value = self._latest(timeline, window, "value")
        cv = self._latest(timeline, window, "cv_pct")
        if value is None:
            return Evidence(None, f"no gpu_bench {self.test} result from {self.node_type}")
        if value.labels.get("device") != "cuda":
            return Evidence(
                None,
                f"device: {value.labels.get('device')}, measured {value.value:.4g} "
                "(CUDA not run): no GPU peak claims",
            )
        if self.absolute:
            ratio = value
        if ratio is None or self.level is None:
            return Evidence(
                None,
                f"measured {value.value:.4g} on {value.labels.get('device_name')!r}, "
                "an unknown GPU model: no peak, ratio not judged",
            )
        doubts: tuple[str, ...] = ()
        if cv is not None and cv.value > CV_MAX_PCT:
            doubts = (f"cv {cv.value:.1f}% > {CV_MAX_PCT:g}%: unstable measurement",)
        return Evidence(
            ratio.value, f"{value.value:.4g} on {value.labels.get('model')}", doubts=doubts
        )


def checks_for(
    r: BenchResult | None, node_type: str, phase: str | None = None, failure: str | None = None
) -> list[GpuBenchCheck]:
    """The checks of one node type's run: every test gpu_bench has a pass level for, or
    (unknown model, CPU, failure) the GEMM and copy tests, which then cannot pass."""
    tests = [t for t in (r.tests if r else ()) if t.level is not None]
    if not tests:
        return [
            GpuBenchCheck(n, node_type, None, phase, failure=failure) for n in ("gemm_bf16", "copy")
        ]
    return [
        GpuBenchCheck(
            t.test,
            node_type,
            t.level,
            phase,
            failure=failure,
            absolute_unit=t.unit if t.peak is None else None,
        )
        for t in tests
    ]
