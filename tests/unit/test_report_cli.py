"""`kubedrill report render` re-renders any run document (v2 or v3)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubedrill.cli import main

DATA = Path(__file__).parent / "report_data"


@pytest.mark.parametrize("name", ["reference_slo.run.json", "reference_slo.v2.run.json"])
def test_render_writes_html_and_markdown(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "run.json"
    shutil.copy(DATA / name, src)
    main(["report", "render", str(src)])  # default: report.html beside it
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")
    out = tmp_path / "elsewhere.html"
    main(["report", "render", str(src), "--html", str(out), "--markdown", str(tmp_path / "s.md"),
          "--junit", str(tmp_path / "j.xml")])  # fmt: skip
    assert "kd-data" in out.read_text()
    assert f"[HTML report]({out})" in (tmp_path / "s.md").read_text()
    assert "<testsuites" in (tmp_path / "j.xml").read_text()
    assert f"html — {out}" in capsys.readouterr().out


def test_kubedrill_run_prints_the_html_path(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_s.py").write_text(
        "import time\n"
        "from kubedrill.core import latency\n"
        "from kubedrill.timeline import LoadWindow\n\n"
        "def test_a(drill):\n"
        "    drill.expect('p95_ms <= 100')\n"
        "    h = latency.new_histogram()\n"
        "    h.record_value(900_000, 50)\n"
        "    now = time.monotonic()\n"
        "    drill.record(LoadWindow('/', now - 1, now, 50, {}, h.encode().decode(), 50, 0, 'w'))\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "kubedrill.cli", "run", "--report-dir", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    html = next((tmp_path / "r").glob("2*/report.html"))
    assert f"kubedrill: report — {html}" in p.stdout
    assert "FAIL" in html.read_text()
