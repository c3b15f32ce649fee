"""The HTML report in real headless Chromium (Debian's chromium): no console errors or
uncaught exceptions, every panel the data calls for drawn (checked in the DOM), hover
shows values, and a screenshot that is an actual picture of the page."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kubedrill.report.browser import check_report, find_chromium
from kubedrill.report.document import load_run_document
from kubedrill.report.html import render_html
from kubedrill.report.synthetic import synthetic_run

DATA = Path(__file__).parents[1] / "unit" / "report_data"

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium is not installed: `make install` provides it "
    "(Debian: apt-get install chromium)",
)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    return w, h


@pytest.mark.parametrize("name", ["reference_slo.run.json", "capacity_sweep.run.json"])
def test_recorded_runs_open_cleanly_with_every_panel_drawn(name: str, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(render_html(load_run_document(DATA / name)), encoding="utf-8")
    res = check_report(html)
    assert res.errors == []
    assert res.expected > 0 and res.drawn == res.expected and res.panels_missing == 0
    assert "pdb" in res.empty  # absent data is said, not hidden
    assert res.verdict_rows > 0


def test_a_game_day_report_draws_all_panels_and_screenshots(tmp_path: Path) -> None:
    doc = synthetic_run(duration_s=600, requests=60_000, events=800, seed=9)
    html = tmp_path / "report.html"
    html.write_text(render_html(doc), encoding="utf-8")
    shot = tmp_path / "report.png"
    res = check_report(html, screenshot=shot)
    assert res.errors == [], res.errors
    assert res.expected == 6 and res.drawn == 6 and res.panels_missing == 0
    assert res.empty == []
    # hovering the first chart (replicas) shows its values in the legend
    assert res.hover_values and res.hover_values[0] not in ("", "--")
    assert any(v.replace(".", "").isdigit() for v in res.hover_values[1:]), res.hover_values
    w, h = _png_size(shot)
    assert w >= 1000 and h > 1500  # the whole page, not an empty viewport
    assert shot.stat().st_size > 50_000


def test_a_broken_page_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: a script error and a missing panel are seen."""
    doc = load_run_document(DATA / "reference_slo.run.json")
    page = render_html(doc).replace("var drawn = 0;", "var drawn = 0; undefinedThing();")
    html = tmp_path / "broken.html"
    html.write_text(page, encoding="utf-8")
    res = check_report(html)
    assert any("undefinedThing" in e for e in res.errors)
    assert res.panels_missing == res.expected > 0
