"""Shared fixtures for kubedrill's own tests."""

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _no_github_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs inside the tests (and their subprocesses) never append to the CI job's own
    $GITHUB_STEP_SUMMARY; tests that check it set it themselves."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
