"""The README's main job, run as a user runs it: `kubedrill run --suite ci` over scenarios/."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from kubedrill.report import validate_run_document

ROOT = Path(__file__).resolve().parents[2]


def kubedrill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubedrill.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_readme_commands_are_the_ones_ci_and_make_run() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "kubedrill run --suite ci" in makefile


def test_demo_suite_passes_and_reports_one_testcase_per_check(tmp_path: Path) -> None:
    p = kubedrill(
        "run", "--suite", "ci", "--report-dir", str(tmp_path), "--", "--time-scale", "0.5"
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    run_dir = (tmp_path / "latest").resolve()
    doc = json.loads((run_dir / "run.json").read_text())
    validate_run_document(doc)
    assert doc["verdict"] == "PASS"
    checks = [c for s in doc["scenarios"] for c in s["checks"]]
    assert len(checks) >= 10 and all(c["verdict"] == "PASS" for c in checks)
    # evidence, not assertions: every check measured a value from this run's timeline
    assert all(c["value"] is not None for c in checks)
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == len(checks)


def test_demo_dry_run_touches_nothing_and_exits_0(tmp_path: Path) -> None:
    p = kubedrill("run", "--suite", "ci", "--dry-run", "--report-dir", str(tmp_path))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    doc = json.loads(((tmp_path / "latest") / "run.json").read_text())
    assert doc["dry_run"] is True
    assert all(c["verdict"] == "INCONCLUSIVE" for s in doc["scenarios"] for c in s["checks"])
