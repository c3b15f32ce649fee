"""The README's main job, run as a user runs it: `kubedrill run --suite ci` over scenarios/."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kubedrill.report import validate_run_document
from kubedrill.sandbox.config import SANDBOX_DIR_ENV, SandboxConfig
from kubedrill.sandbox.lifecycle import down

ROOT = Path(__file__).resolve().parents[2]


def kubedrill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubedrill.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_readme_commands_are_the_ones_ci_and_make_run() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "kubedrill run --suite ci --sandbox" in makefile


def test_demo_suite_passes_and_reports_one_testcase_per_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo`: the sandbox comes up (its own, in tmp_path), the reference service is
    deployed as process-backed pods with an HPA and a PDB, and every scenario passes."""
    monkeypatch.setenv(SANDBOX_DIR_ENV, str(tmp_path / "sandbox"))
    reports = tmp_path / "reports"
    try:
        p = kubedrill(
            "run", "--suite", "ci", "--sandbox", "--report-dir", str(reports),
            "--time-scale", "0.5",
        )  # fmt: skip
    finally:
        down(SandboxConfig(root=tmp_path / "sandbox").paths, print)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    run_dir = (reports / "latest").resolve()
    doc = json.loads((run_dir / "run.json").read_text())
    validate_run_document(doc)
    assert doc["verdict"] == "PASS"
    checks = [c for s in doc["scenarios"] for c in s["checks"]]
    assert len(checks) >= 20 and all(c["verdict"] == "PASS" for c in checks)
    cluster = next(s for s in doc["scenarios"] if "scales_the_service_out" in s["name"])
    scaled = next(c for c in cluster["checks"] if c["name"].startswith("scale_up_within"))
    assert scaled["value"] is not None  # a replica change seen on this run's timeline
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
