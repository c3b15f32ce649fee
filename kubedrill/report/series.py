"""What a scenario's timeline panels draw: aligned series on the wall clock (Unix seconds).

Every panel of a scenario shares one x axis. A panel whose data is absent is kept with
``state: "empty"`` and says what was not recorded, so a reader never wonders whether it
was forgotten; ``state: "chart"`` panels are the ones the data present calls for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubedrill.report import hdr
from kubedrill.timeline import Timeline
from kubedrill.timeline.payloads import (
    ChaosMarker,
    LoadWindow,
    MetricSample,
    ObjectTransition,
    PhaseMark,
)

__all__ = ["PANELS", "Panel", "scenario_panels"]

#: panel id → title, in the order they are drawn
PANELS = {
    "replicas": "Replicas",
    "hpa_metric": "HPA metric vs target",
    "latency": "Latency per window (ms)",
    "throughput": "Requests, errors and dropped sends (per s)",
    "pdb": "PodDisruptionBudget: healthy vs minAvailable",
    "gpu": "GPU utilisation (%) and memory (MiB)",
}
_EMPTY = {
    "replicas": "no Deployment or HPA recorded (no cluster watch in this scenario)",
    "hpa_metric": "no HPA metric recorded",
    "latency": "no load windows recorded",
    "throughput": "no load windows recorded",
    "pdb": "no PDB recorded",
    "gpu": "no GPU samples recorded",
}
_SLO = re.compile(r"^\s*(p\d+|max)_ms\s*<=?\s*([0-9.]+)\s*$")
_GPU_UTIL = re.compile(r"gpu_util|GPU_UTIL|utilization_gpu", re.IGNORECASE)
_GPU_MEM = re.compile(r"FB_USED|gpu_mem|memory_used", re.IGNORECASE)
_HPA_METRIC = re.compile(r"^hpa[._](metric|target)", re.IGNORECASE)


@dataclass(slots=True)
class Panel:
    id: str
    title: str
    state: str = "empty"  # "chart" or "empty"
    note: str = ""
    x: list[float] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "state": self.state,
            "note": self.note,
            "x": self.x,
            "series": self.series,
        }


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)


def _step_panel(
    panel: Panel, lines: dict[str, list[tuple[float, float | None]]], styles: dict[str, str]
) -> None:
    """Lines of (x, value) changes, forward-filled onto the union of their x values."""
    lines = {k: v for k, v in lines.items() if any(val is not None for _, val in v)}
    if not lines:
        return
    xs = sorted({x for pts in lines.values() for x, _ in pts})
    index = {x: i for i, x in enumerate(xs)}
    panel.x = [round(x, 3) for x in xs]
    for label, pts in lines.items():
        values: list[float | None] = [None] * len(xs)
        for x, v in pts:
            values[index[x]] = v
        last: float | None = None
        for i, v in enumerate(values):  # forward fill: the state holds until it changes
            if v is None:
                values[i] = last
            else:
                last = v
        panel.series.append({"label": label, "values": values, "style": styles.get(label, "")})
    panel.state = "chart"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _object_lines(
    tl: Timeline, kind: str, fields: Sequence[tuple[str, str]]
) -> dict[str, list[tuple[float, float | None]]]:
    lines: dict[str, list[tuple[float, float | None]]] = {}
    objs = [o for o in tl.select(ObjectTransition) if o.data.api_kind == kind]
    names = {o.data.name for o in objs}
    for o in objs:
        prefix = f"{o.data.name} " if len(names) > 1 else ""
        for key, label in fields:
            v = None if o.data.event == "DELETED" else _num(o.data.fields.get(key))
            lines.setdefault(prefix + label, []).append((o.wall, v))
    return lines


_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024.0, "Mi": 1024.0**2,
           "Gi": 1024.0**3, "Ti": 1024.0**4}  # fmt: skip


def _quantity(v: Any) -> float | None:
    """A Kubernetes quantity ("500m", "2Gi", 60) as a number; None if it is not one."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if not isinstance(v, str):
        return None
    m = re.fullmatch(r"([-+]?[0-9.]+(?:e[-+]?\d+)?)([a-zA-Z]*)", v.strip())
    if not m or (m.group(2) and m.group(2) not in _SUFFIX):
        return None
    return float(m.group(1)) * _SUFFIX.get(m.group(2), 1.0)


def _metric_value(block: Any) -> float | None:
    if not isinstance(block, dict):
        return None
    for key in ("averageUtilization", "averageValue", "value"):
        if key in block:
            return _quantity(block[key])
    return None


def _metric_name(m: dict[str, Any]) -> str:
    kind = str(m.get("type") or "")
    body = m.get(kind[:1].lower() + kind[1:]) or {}
    name = body.get("name") or (body.get("metric") or {}).get("name") or kind
    return str(name)


def _hpa_metric_lines(tl: Timeline) -> dict[str, list[tuple[float, float | None]]]:
    """The HPA's current metrics against its targets, from the watcher's ``spec`` and
    ``metrics`` fields (compact JSON of spec.metrics and status.currentMetrics)."""
    lines: dict[str, list[tuple[float, float | None]]] = {}
    for o in tl.select(ObjectTransition):
        if o.data.api_kind != "HorizontalPodAutoscaler":
            continue
        try:
            spec = json.loads(str(o.data.fields.get("spec") or "{}"))
            current = json.loads(str(o.data.fields.get("metrics") or "[]"))
        except ValueError:
            continue
        for m in spec.get("metrics") or []:
            name = _metric_name(m)
            body = m.get(str(m.get("type", ""))[:1].lower() + str(m.get("type", ""))[1:]) or {}
            lines.setdefault(f"{name} target", []).append(
                (o.wall, _metric_value(body.get("target")))
            )
        for m in current if isinstance(current, list) else []:
            name = _metric_name(m)
            body = m.get(str(m.get("type", ""))[:1].lower() + str(m.get("type", ""))[1:]) or {}
            lines.setdefault(name, []).append((o.wall, _metric_value(body.get("current"))))
    return lines


def _load_panels(tl: Timeline, slos: list[tuple[str, float]]) -> tuple[Panel, Panel]:
    lat = Panel("latency", PANELS["latency"])
    thr = Panel("throughput", PANELS["throughput"])
    windows = tl.select(LoadWindow)
    if not windows:
        return lat, thr
    slots: dict[tuple[float, float], list[LoadWindow]] = {}
    for o in windows:  # workers' windows of one interval merge exactly (histograms add)
        slots.setdefault((round(o.data.start, 3), round(o.data.end, 3)), []).append(o.data)
    keys = sorted(slots)
    xs, p50, p95, p99, rate, errs, dropped = [], [], [], [], [], [], []
    for start, end in keys:
        ws = slots[(start, end)]
        dur = max(end - start, 1e-9)
        counts = hdr.merge_counts(w.histogram for w in ws)
        a, b, c = hdr.percentiles_ms(counts, (50, 95, 99))
        xs.append(round(tl.to_wall(start), 3))
        p50.append(_r(a))
        p95.append(_r(b))
        p99.append(_r(c))
        rate.append(_r(sum(w.count for w in ws) / dur))
        errs.append(_r(sum(w.error_count for w in ws) / dur))
        dropped.append(_r(sum(w.dropped for w in ws) / dur))
    lat.x = thr.x = xs
    lat.series = [
        {"label": "p50", "values": p50, "style": "p50"},
        {"label": "p95", "values": p95, "style": "p95"},
        {"label": "p99", "values": p99, "style": "p99"},
    ]
    for name, limit in slos:
        lat.series.append(
            {"label": f"SLO {name} ≤ {limit:g}", "values": [limit] * len(xs), "style": "slo"}
        )
    thr.series = [
        {"label": "requests/s", "values": rate, "style": "rate"},
        {"label": "errors/s", "values": errs, "style": "errors"},
        {"label": "dropped/s", "values": dropped, "style": "dropped"},
    ]
    lat.state = thr.state = "chart"
    return lat, thr


def _metric_panel(
    panel: Panel, tl: Timeline, pick: Iterable[tuple[str, Callable[[str], bool], float]]
) -> None:
    """Samples whose name matches, one line per label and device, scaled by ``factor``."""
    lines: dict[str, list[tuple[float, float | None]]] = {}
    samples = tl.select(MetricSample)
    for label, match, factor in pick:
        for o in samples:
            if match(o.data.name):
                labels = o.data.labels
                who = labels.get("gpu") or labels.get("pod") or labels.get("device") or ""
                host = labels.get("Hostname") or ""
                key = f"{label} {host + '/' if host else ''}{who}".strip()
                lines.setdefault(key, []).append((o.wall, o.data.value * factor))
    _step_panel(panel, lines, {})
    for s in panel.series:  # memory (MiB) on its own axis, beside utilisation (%)
        if "MiB" in s["label"]:
            s["scale"] = "MiB"


def scenario_panels(tl: Timeline, checks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The panels, chaos bands and phase marks of one scenario (JSON-ready)."""
    slos = []
    for c in checks:
        m = _SLO.match(c.get("threshold") or "")
        if m and (m.group(1), float(m.group(2))) not in slos:
            slos.append((m.group(1), float(m.group(2))))
    panels = {pid: Panel(pid, title) for pid, title in PANELS.items()}
    rep = _object_lines(
        tl,
        "Deployment",
        [("replicas", "desired"), ("ready_replicas", "ready"), ("available_replicas", "available")],
    )
    rep.update(
        _object_lines(
            tl,
            "HorizontalPodAutoscaler",
            [
                ("desired_replicas", "HPA desired"),
                ("current_replicas", "HPA current"),
                ("min_replicas", "min"),
                ("max_replicas", "max"),
            ],
        )
    )
    _step_panel(panels["replicas"], rep, {"min": "limit", "max": "limit"})
    hpa = _hpa_metric_lines(tl)
    _step_panel(panels["hpa_metric"], hpa, {k: "slo" for k in hpa if k.endswith(" target")})
    if panels["hpa_metric"].state == "empty":
        _metric_panel(
            panels["hpa_metric"], tl, [("HPA", lambda n: _HPA_METRIC.match(n) is not None, 1.0)]
        )
    panels["latency"], panels["throughput"] = _load_panels(tl, slos)
    pdb = _object_lines(
        tl,
        "PodDisruptionBudget",
        [
            ("current_healthy", "healthy"),
            ("desired_healthy", "minAvailable"),
            ("disruptions_allowed", "disruptions allowed"),
        ],
    )
    _step_panel(panels["pdb"], pdb, {"minAvailable": "slo"})
    _metric_panel(
        panels["gpu"],
        tl,
        [
            # raw DCGM/NVML samples (percent), and kubedrill.gpujobs' gpu.* signals (ratios)
            ("util %", lambda n: _GPU_UTIL.search(n) is not None, 1.0),
            ("busy %", lambda n: n == "gpu.gpu_busy", 100.0),
            ("SM active %", lambda n: n == "gpu.sm_active", 100.0),
            ("mem MiB", lambda n: _GPU_MEM.search(n) is not None or n == "gpu.fb_used_mib", 1.0),
        ],
    )
    for p in panels.values():
        if p.state == "empty":
            p.note = _EMPTY[p.id]
    end = tl.span()
    end_wall = tl.to_wall(end.end) if end else None
    bands: list[dict[str, Any]] = []
    open_: dict[tuple[str, str], tuple[float, str]] = {}
    for o in tl.select(ChaosMarker):
        key = (o.data.action, o.data.target)
        if o.data.stage == "injected":
            open_[key] = (o.wall, o.data.detail)
        elif o.data.stage in ("rolled_back", "failed") and key in open_:
            start, detail = open_.pop(key)
            bands.append(_band(key, start, o.wall, o.data.stage, detail))
    for key, (start, detail) in open_.items():
        bands.append(_band(key, start, end_wall or start, "never rolled back", detail))
    phases = []
    for name, w in tl.phases().items():  # a phase left open (a crash) ends with the evidence
        stop = min(w.end, end.end) if end else w.end
        phases.append({"name": name, "start": _r(tl.to_wall(w.start)), "end": _r(tl.to_wall(stop))})
    marks = tl.select(PhaseMark)
    return {
        "panels": [p.to_dict() for p in panels.values()],
        "bands": bands,
        "phases": phases,
        "phase_marks": len(marks),
    }


def _band(key: tuple[str, str], start: float, end: float, how: str, detail: str) -> dict[str, Any]:
    return {
        "label": f"{key[0]} → {key[1]}",
        "start": _r(start),
        "end": _r(end),
        "ended": how,
        "detail": detail[:200],
    }
