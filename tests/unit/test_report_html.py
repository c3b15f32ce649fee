"""The HTML report's structure on small recorded runs (golden: structure, not pixels).

The recorded runs in report_data/ are real: the reference-SLO scenarios and the capacity
sweep, run against the reference service with real Locust. Regenerate the golden file
with KUBEDRILL_UPDATE_GOLDEN=1 after an intended change, and read the diff.
"""

from __future__ import annotations

import json
import os
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from kubedrill.report.document import load_run_document
from kubedrill.report.html import expected_panels, render_html, report_data
from kubedrill.report.synthetic import synthetic_run

DATA = Path(__file__).parent / "report_data"
GOLDEN = DATA / "structure.golden.json"


class _Structure(HTMLParser):
    """Panels (id, state), verdict rows, sections and external references of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.panels: list[tuple[str, str]] = []
        self.rows: list[str] = []
        self.sections: list[str] = []
        self.external: list[str] = []
        self.empty_notes: list[str] = []
        self._in_empty = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "panel" in (a.get("class") or "").split():
            self.panels.append((a.get("data-panel") or "", a.get("data-state") or ""))
            self._in_empty = a.get("data-state") == "empty"
        if tag == "tr" and a.get("data-verdict"):
            self.rows.append(a["data-verdict"] or "")
        if tag == "section":
            self.sections.append((a.get("class") or a.get("id") or "").split("-")[0])
        for key in ("src", "href"):
            v = a.get(key)
            if v and re.match(r"^(https?:)?//", v):
                self.external.append(v)
        if tag == "link":
            self.external.append(a.get("href") or "")

    def handle_data(self, data: str) -> None:
        if self._in_empty and data.strip().startswith("no "):
            self.empty_notes.append(data.strip())
            self._in_empty = False


def structure(doc: dict[str, Any]) -> dict[str, Any]:
    html = render_html(doc)
    p = _Structure()
    p.feed(html)
    data = report_data(doc)
    return {
        "panels": p.panels,
        "verdict_rows": p.rows,
        "sections": p.sections,
        "external": p.external,
        "empty_notes": sorted(set(p.empty_notes)),
        "expected_panels": expected_panels(data),
        "series": {
            sc["id"].split("::")[-1]: {
                pn["id"]: [s["label"] for s in pn["series"]] for pn in sc["panels"]
            }
            for sc in data["scenarios"]
        },
        "phases": [[ph["name"] for ph in sc["phases"]] for sc in data["scenarios"]],
        "capacity": [
            {k: c[k] for k in ("knee_rps", "configured_rps", "rps_per_replica")}
            for c in data["capacity"]
        ],
    }


def test_recorded_runs_match_the_golden_structure() -> None:
    got = {
        name: structure(load_run_document(DATA / f"{name}.run.json"))
        for name in ("reference_slo", "capacity_sweep")
    }
    got = json.loads(json.dumps(got))  # tuples as lists, as the file holds them
    if os.environ.get("KUBEDRILL_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", "utf-8")
    assert got == json.loads(GOLDEN.read_text("utf-8"))


def test_the_page_is_self_contained_and_says_which_panels_have_no_data() -> None:
    doc = load_run_document(DATA / "reference_slo.run.json")
    html = render_html(doc)
    s = structure(doc)
    assert s["external"] == []  # no CDN, nothing fetched
    assert "<script src" not in html and "uPlot" in html
    assert ("pdb", "empty") in [tuple(p) for p in s["panels"]]
    assert "no PDB recorded" in s["empty_notes"]
    assert ("latency", "chart") in [tuple(p) for p in s["panels"]]
    # every check of the run is a row of the verdict table, with its reason
    checks = [c for sc in doc["scenarios"] for c in sc["checks"]]
    assert len(s["verdict_rows"]) == len(checks)
    for c in checks:
        assert escape(c["reason"]) in html


def test_a_game_day_draws_every_panel_with_chaos_bands_and_phases() -> None:
    doc = synthetic_run(duration_s=120, requests=6000, events=200, seed=3)
    data = report_data(doc)
    sc = data["scenarios"][0]
    states = {p["id"]: p["state"] for p in sc["panels"]}
    assert states == {
        "replicas": "chart",
        "hpa_metric": "chart",
        "latency": "chart",
        "throughput": "chart",
        "pdb": "chart",
        "gpu": "chart",
    }
    assert [b["label"].split(" ")[0] for b in sc["bands"]] == ["pod_kill", "gpu_saturate"]
    assert [p["name"] for p in sc["phases"]] == ["baseline", "inject", "recover"]
    lat = next(p for p in sc["panels"] if p["id"] == "latency")
    assert [s["label"] for s in lat["series"]][:3] == ["p50", "p95", "p99"]
    assert any(s["label"].startswith("SLO p95") for s in lat["series"])
    assert all(len(s["values"]) == len(lat["x"]) for s in lat["series"])
    hpa = next(p for p in sc["panels"] if p["id"] == "hpa_metric")
    assert {s["label"]: s["style"] for s in hpa["series"]} == {"cpu target": "slo", "cpu": ""}
    assert set(next(s for s in hpa["series"] if s["label"] == "cpu")["values"]) == {40.0, 90.0}
    gpu = next(p for p in sc["panels"] if p["id"] == "gpu")
    assert {s.get("scale") for s in gpu["series"]} == {None, "MiB"}


@pytest.mark.parametrize("name", ["reference_slo.run.json", "reference_slo.v2.run.json"])
def test_v2_and_v3_documents_render_the_same_page(name: str) -> None:
    v3 = structure(load_run_document(DATA / "reference_slo.run.json"))
    assert structure(load_run_document(DATA / name)) == v3


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2Gi", 2 * 1024.0**3),
        (60, 60.0),
        ("1.5k", 1500.0),
        ("x", None),
        ("3Q", None),
    ],
)
def test_kubernetes_quantities_are_read(text: object, value: float | None) -> None:
    from kubedrill.report.series import _quantity

    assert _quantity(text) == value


def test_gpu_panel_reads_the_gpujobs_signals() -> None:
    from kubedrill.report.series import scenario_panels
    from kubedrill.timeline import Timeline
    from kubedrill.timeline.payloads import MetricSample

    tl = Timeline()
    for i, busy in enumerate((0.2, 0.9)):
        labels = {"gpu": "0", "Hostname": "gpu-node-1"}
        tl.record(MetricSample("gpu.gpu_busy", busy, labels), t=tl.mono0 + i)
        tl.record(MetricSample("gpu.fb_used_mib", 2048.0, labels), t=tl.mono0 + i)
    gpu = next(p for p in scenario_panels(tl, [])["panels"] if p["id"] == "gpu")
    assert gpu["state"] == "chart"
    by = {s["label"]: s for s in gpu["series"]}
    assert by["busy % gpu-node-1/0"]["values"] == [20.0, 90.0]
    assert by["mem MiB gpu-node-1/0"]["scale"] == "MiB"


def test_an_attachment_is_shown_once_under_its_scenario() -> None:
    from kubedrill.report.document import scenario_timeline
    from kubedrill.run.record import encode_timeline
    from kubedrill.timeline import Attachment

    doc = synthetic_run(duration_s=30, requests=300, events=20, seed=4)
    tl = scenario_timeline(doc["scenarios"][0])
    assert tl is not None
    journal = '{"status": "completed", "run": [{"activity": {"name": "drain <gpu-1>"}}]}'
    tl.record(Attachment("chaostoolkit journal: node-drain", "application/json", journal))
    doc["scenarios"][0]["timeline"] = encode_timeline(tl)
    html = render_html(doc)
    assert "<details class='attachment'><summary>attached: chaostoolkit journal" in html
    assert html.count(escape(journal)) == 1 and "drain <gpu-1>" not in html
