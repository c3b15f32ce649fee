"""Broken evidence is never a PASS: each case of ``evidence_cases`` run for real (the CLI,
the plugin, the reference service, Locust, the sandbox for the cluster cases)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.evidence_cases import CASES, Case, cluster_target, run_case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_evidence_case(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if case.cluster:
        sandbox = request.getfixturevalue("sandbox")
        ns = re.sub(r"[^a-z0-9-]", "-", case.name.replace("_", "-"))[:40]
        with cluster_target(sandbox.paths.kubeconfig, tmp_path, ns) as target:
            result = run_case(case, tmp_path, target)
    else:
        result = run_case(case, tmp_path)
    detail = f"{result.summary()}\n{result.output}"
    if case.broken:
        assert not result.passed_any, f"false PASS: {detail}"
        assert not result.missing_figures, f"reasons lack figures: {detail}"
        assert result.returncode in result.expected_exit_codes, detail
    else:
        assert result.verdict == "PASS" and result.returncode == 0, detail
