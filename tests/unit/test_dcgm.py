"""DCGM-named metrics of the fake GPU nodes: valid exposition, dcgm-exporter's names and
labels, the busy ledger summed per device, pod mapping from the assignments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubedrill.sandbox.dcgm import gpu_uuid, read_assignments, render_all, render_node

NOW = 1_800_000_000.0
PRODUCT = "NVIDIA H100 80GB HBM3"
NAMES = {
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
}


def entry(
    path: Path, busy: float, *, expires: float | None = None, fb: float | None = None
) -> None:
    doc: dict[str, object] = {"busy": busy}
    if expires is not None:
        doc["expires"] = expires
    if fb is not None:
        doc["fb_used_mib"] = fb
    path.write_text(json.dumps(doc))


def parse(text: str) -> dict[str, dict[str, tuple[dict[str, str], float]]]:
    """{metric: {gpu index: (labels, value)}}, through prometheus_client's own parser."""
    out: dict[str, dict[str, tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        assert fam.type == "gauge"
        for s in fam.samples:
            out.setdefault(s.name, {})[s.labels["gpu"]] = (s.labels, s.value)
    return out


def test_families_help_and_types_match_dcgm_exporter(tmp_path: Path) -> None:
    text = render_node("gpu-0", 2, tmp_path, {}, PRODUCT, NOW)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(fams) == NAMES
    assert fams["DCGM_FI_DEV_GPU_UTIL"].documentation == "GPU utilization (in %)."
    assert fams["DCGM_FI_DEV_FB_USED"].documentation == "Framebuffer memory used (in MiB)."
    assert fams["DCGM_FI_DEV_FB_FREE"].documentation == "Framebuffer memory free (in MiB)."
    assert (
        fams["DCGM_FI_PROF_GR_ENGINE_ACTIVE"].documentation
        == "Ratio of time the graphics engine is active."
    )
    assert text.endswith("\n")
    for name in NAMES:
        assert f"# TYPE {name} gauge" in text


def test_idle_devices_and_labels(tmp_path: Path) -> None:
    m = parse(render_node("gpu-1", 3, tmp_path / "missing", {}, PRODUCT, NOW))
    assert set(m["DCGM_FI_DEV_GPU_UTIL"]) == {"0", "1", "2"}
    labels, value = m["DCGM_FI_DEV_GPU_UTIL"]["2"]
    assert value == 0
    assert labels == {
        "gpu": "2",
        "UUID": gpu_uuid("gpu-1", 2),
        "pci_bus_id": "00000000:1A:00.0",
        "device": "nvidia2",
        "modelName": PRODUCT,
        "Hostname": "gpu-1",
    }
    assert m["DCGM_FI_DEV_FB_FREE"]["0"][1] == 81559
    assert m["DCGM_FI_DEV_FB_USED"]["0"][1] == 0
    assert m["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]["0"][1] == 0.0


def test_uuids_are_stable_and_distinct() -> None:
    assert gpu_uuid("gpu-0", 0) == gpu_uuid("gpu-0", 0)
    uuids = {gpu_uuid(n, i) for n in ("gpu-0", "gpu-1") for i in range(8)}
    assert len(uuids) == 16
    assert all(u.startswith("GPU-") and len(u) == 40 for u in uuids)


def test_utilisation_sums_every_live_entry_and_caps(tmp_path: Path) -> None:
    entry(tmp_path / "0", 0.3)  # burner
    entry(tmp_path / "0@ns.a", 0.25, fb=1024)
    entry(tmp_path / "0@ns.b", 0.2, fb=2048.4)
    entry(tmp_path / "0@ns.gone", 0.9, expires=NOW - 1, fb=4096)  # expired
    (tmp_path / "0@ns.bad").write_text("{nope")
    entry(tmp_path / "1", 0.8)
    entry(tmp_path / "1@ns.c", 0.7, fb=90_000)  # more than the device has
    entry(tmp_path / ".1@ns.c.tmp", 0.9)  # a temporary
    m = parse(render_node("gpu-0", 3, tmp_path, {}, PRODUCT, NOW))
    util, ratio = m["DCGM_FI_DEV_GPU_UTIL"], m["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]
    used, free = m["DCGM_FI_DEV_FB_USED"], m["DCGM_FI_DEV_FB_FREE"]
    assert util["0"][1] == 75
    assert ratio["0"][1] == pytest.approx(0.75)
    assert (used["0"][1], free["0"][1]) == (3072, 81559 - 3072)
    assert util["1"][1] == 100
    assert ratio["1"][1] == 1.0
    assert (used["1"][1], free["1"][1]) == (81559, 0)
    assert (util["2"][1], used["2"][1]) == (0, 0)


def test_fb_total_is_a_parameter(tmp_path: Path) -> None:
    entry(tmp_path / "0@a", 0.1, fb=100)
    m = parse(render_node("n", 1, tmp_path, {}, PRODUCT, NOW, fb_total_mib=1000))
    assert (m["DCGM_FI_DEV_FB_USED"]["0"][1], m["DCGM_FI_DEV_FB_FREE"]["0"][1]) == (100, 900)


def test_assigned_devices_carry_pod_labels_escaped(tmp_path: Path) -> None:
    assignments = {
        "1": {"namespace": "team-a", "pod": 'we"ird\\pod\nname', "container": "server"},
        "2": {"namespace": "team-b"},  # malformed: no pod labels
    }
    text = render_node("gpu-0", 3, tmp_path, assignments, 'H100 "SXM"', NOW)
    m = parse(text)
    labels = m["DCGM_FI_DEV_GPU_UTIL"]["1"][0]
    assert labels["pod"] == 'we"ird\\pod\nname'
    assert (labels["namespace"], labels["container"]) == ("team-a", "server")
    assert labels["modelName"] == 'H100 "SXM"'
    for gpu in ("0", "2"):
        assert "pod" not in m["DCGM_FI_DEV_FB_USED"][gpu][0]
    assert text.count("\n") == 4 * 2 + 4 * 3  # HELP + TYPE per family, one line per device


def test_no_devices_still_valid(tmp_path: Path) -> None:
    text = render_node("gpu-0", 0, tmp_path, {}, PRODUCT, NOW)
    assert {f.name for f in text_string_to_metric_families(text)} == NAMES
    with pytest.raises(ValueError):
        render_node("gpu-0", -1, tmp_path, {}, PRODUCT, NOW)


@pytest.mark.parametrize(
    "content",
    [
        None,  # missing
        "",
        "{not json",
        "[1, 2]",
        '"text"',
        '{"0": "ns/pod"}',
        '{"0": {"namespace": 1, "pod": "p", "container": "c"}}',
        '{"0": {"namespace": "ns", "pod": "", "container": "c"}}',
        "[" * 100_000,
    ],
)
def test_malformed_assignments_mean_no_pod_labels(tmp_path: Path, content: str | None) -> None:
    node = tmp_path / "gpu-0"
    node.mkdir()
    if content is not None:
        (node / "assignments.json").write_text(content)
    assert read_assignments(node / "assignments.json") == {}
    pages = render_all([("gpu-0", 1)], tmp_path, PRODUCT, NOW)
    assert "pod=" not in pages["gpu-0"]
    assert set(parse(pages["gpu-0"])) == NAMES


def test_render_all_reads_each_nodes_ledger_and_assignments(tmp_path: Path) -> None:
    for node in ("gpu-0", "gpu-1"):
        (tmp_path / node).mkdir()
    entry(tmp_path / "gpu-0" / "1@ns.p", 0.4, fb=1000)
    entry(tmp_path / "gpu-1" / "0", 0.9)
    (tmp_path / "gpu-0" / "assignments.json").write_text(
        json.dumps({"1": {"namespace": "ns", "pod": "p", "container": "c"}, "9": {"x": 1}})
    )
    pages = render_all([("gpu-0", 2), ("gpu-1", 1), ("gpu-2", 1)], tmp_path, PRODUCT, NOW)
    assert set(pages) == {"gpu-0", "gpu-1", "gpu-2"}
    g0, g1 = parse(pages["gpu-0"]), parse(pages["gpu-1"])
    assert g0["DCGM_FI_DEV_GPU_UTIL"]["1"] == (
        {
            "gpu": "1",
            "UUID": gpu_uuid("gpu-0", 1),
            "pci_bus_id": "00000000:19:00.0",
            "device": "nvidia1",
            "modelName": PRODUCT,
            "Hostname": "gpu-0",
            "container": "c",
            "namespace": "ns",
            "pod": "p",
        },
        40,
    )
    assert g0["DCGM_FI_DEV_FB_USED"]["1"][1] == 1000
    assert g0["DCGM_FI_DEV_GPU_UTIL"]["0"][1] == 0
    assert g1["DCGM_FI_DEV_GPU_UTIL"]["0"][1] == 90
    assert "pod=" not in pages["gpu-1"]
    with pytest.raises(ValueError):
        render_all([("../etc", 1)], tmp_path, PRODUCT, NOW)


def test_dcgm_imports_only_the_standard_library() -> None:
    code = (
        "import sys, kubedrill.sandbox.dcgm; "
        "print(sorted(m for m in ('aiohttp', 'prometheus_client', 'kubernetes', 'torch') "
        "if m in sys.modules))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert p.stdout.strip() == "[]"
