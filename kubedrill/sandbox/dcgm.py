"""DCGM-named GPU metrics for the sandbox's fake GPU nodes, rendered from the busy ledger.

A real GPU node runs NVIDIA's dcgm-exporter, and dashboards, alerts and autoscalers key on
its metric names and labels. The sandbox's GPUs are virtual, so this module renders the
same names from what the sandbox knows: the node's busy ledger (``<root>/<node>/``, one
entry per device user, see :mod:`kubedrill.refservice.ledger`) and the pod runner's
device assignments (``<root>/<node>/assignments.json``).

Per device ``i`` of a node:

- ``DCGM_FI_DEV_GPU_UTIL`` (gauge, integer percent 0-100) and
  ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (gauge, ratio 0-1): the sum of the ``busy`` of every
  live entry of the device (``i`` and ``i@<writer>``), capped at 1;
- ``DCGM_FI_DEV_FB_USED`` and ``DCGM_FI_DEV_FB_FREE`` (gauges, MiB): the sum of the
  entries' ``fb_used_mib``, capped at the device's total, and the rest.

Labels are dcgm-exporter's: ``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``,
``Hostname``, and, for a device assigned to a pod (the exporter's Kubernetes pod
mapping), ``container``, ``namespace`` and ``pod``. Standard library only (the ledger
module it reads with is standard library only too).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubedrill.refservice.ledger import LedgerReading, device_entries

__all__ = [
    "DEFAULT_FB_TOTAL_MIB",
    "METRICS",
    "gpu_uuid",
    "read_assignments",
    "render_all",
    "render_node",
]

DEFAULT_FB_TOTAL_MIB = 81559
"""An H100 80GB HBM3's framebuffer as DCGM reports it (used + free + reserved, MiB)."""

# Name, type and help text exactly as dcgm-exporter's counters files have them.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
)

_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "fake-gpu.kubedrill.invalid")
_POD_LABELS = ("container", "namespace", "pod")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MAX_ASSIGNMENTS_BYTES = 1 << 20


def gpu_uuid(node: str, index: int) -> str:
    """A fake but stable GPU UUID for device ``index`` of ``node`` (``GPU-<uuid5>``)."""
    return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{node}/{index}')}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs)


def _pod_labels(entry: object) -> list[tuple[str, str]]:
    """``container``, ``namespace``, ``pod`` of an assignment; none if it is not one."""
    if not isinstance(entry, Mapping):
        return []
    values = [entry.get(k) for k in _POD_LABELS]
    if not all(isinstance(v, str) for v in values) or not entry.get("pod"):
        return []
    return [(k, str(v)) for k, v in zip(_POD_LABELS, values, strict=True)]


def _device_load(ledger_dir: Path, index: int, now_wall: float) -> tuple[float, float]:
    """(busy, fb used MiB) of one device: the sums over its live entries."""
    entries: Mapping[str, LedgerReading] = device_entries(ledger_dir, str(index), now_wall)
    live = [r for r in entries.values() if r.status == "ok"]
    return sum(r.busy for r in live), sum(r.fb_used_mib for r in live)


def render_node(
    node: str,
    devices: int,
    ledger_dir: Path,
    assignments: Mapping[str, Mapping[str, str]],
    product: str,
    now_wall: float,
    fb_total_mib: int = DEFAULT_FB_TOTAL_MIB,
) -> str:
    """One node's dcgm-exporter page (Prometheus text format 0.0.4) for ``devices`` GPUs.

    ``ledger_dir`` is the node's busy-ledger directory (missing: every device idle);
    ``assignments`` maps a device index (``"0"``) to its pod's ``namespace``, ``pod`` and
    ``container`` (unassigned or malformed: no pod labels). Never reads a clock: expiry
    of ledger entries is judged at ``now_wall`` (Unix seconds).
    """
    if devices < 0:
        raise ValueError(f"devices: expected ≥ 0 (got {devices})")
    total = max(0, int(fb_total_mib))
    rows: dict[str, list[str]] = {name: [] for name, _, _ in METRICS}
    for i in range(devices):
        busy, fb = _device_load(ledger_dir, i, now_wall)
        ratio = min(1.0, max(0.0, busy))
        used = min(total, max(0, round(fb)))
        labels = _labels(
            [
                ("gpu", str(i)),
                ("UUID", gpu_uuid(node, i)),
                ("pci_bus_id", f"00000000:{0x18 + i:02X}:00.0"),
                ("device", f"nvidia{i}"),
                ("modelName", product),
                ("Hostname", node),
                *_pod_labels(assignments.get(str(i))),
            ]
        )
        rows["DCGM_FI_DEV_GPU_UTIL"].append(
            f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {round(100 * ratio)}"
        )
        rows["DCGM_FI_DEV_FB_FREE"].append(f"DCGM_FI_DEV_FB_FREE{{{labels}}} {total - used}")
        rows["DCGM_FI_DEV_FB_USED"].append(f"DCGM_FI_DEV_FB_USED{{{labels}}} {used}")
        rows["DCGM_FI_PROF_GR_ENGINE_ACTIVE"].append(
            f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels}}} {ratio:.6f}"
        )
    out: list[str] = []
    for name, kind, help_text in METRICS:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *rows[name]]
    return "\n".join(out) + "\n"


def read_assignments(path: Path) -> dict[str, dict[str, str]]:
    """The pod runner's ``assignments.json``; missing or malformed: ``{}`` (never raises).

    Entries that are not objects of strings are left out, so their devices get no pod
    labels.
    """
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_ASSIGNMENTS_BYTES)
        doc = json.loads(data.decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for device, entry in doc.items():
        pairs = _pod_labels(entry)
        if pairs:
            out[str(device)] = dict(pairs)
    return out


def render_all(
    nodes: Sequence[tuple[str, int]], root: Path, product: str, now_wall: float
) -> dict[str, str]:
    """Every node's page, by node name: ``nodes`` are (name, device count); each node's
    ledger is ``root/<name>/`` and its assignments ``root/<name>/assignments.json``."""
    pages: dict[str, str] = {}
    for node, devices in nodes:
        if not _NODE_NAME.match(node):
            raise ValueError(f"node: expected a node name, not a path (got {node!r})")
        ledger = root / node
        pages[node] = render_node(
            node, devices, ledger, read_assignments(ledger / "assignments.json"), product, now_wall
        )
    return pages
