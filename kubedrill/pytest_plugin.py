"""pytest plugin (entry point ``pytest11``): options, markers, fixtures, verdicts, reports.

A scenario is a test that uses the ``drill`` fixture. Its checks are evaluated after its
fixtures have torn down (so a rollback or a load run stopped in teardown is evidence);
FAIL/ERROR (and INCONCLUSIVE, unless the policy is ``warn``) fail the test, a failed
teardown makes the scenario ERROR, and every check becomes its own testcase in
``reports/<run>/junit.xml``. The gate policy is :mod:`kubedrill.run.policy`'s.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubedrill.adapters.kube import KubeAdapter
from kubedrill.checks import CheckResult
from kubedrill.core.errors import ConfigError, PreconditionUnmet
from kubedrill.core.settings import Settings, load_settings
from kubedrill.core.types import Verdict
from kubedrill.observe import ClusterWatcher
from kubedrill.report import write_reports
from kubedrill.run import Drill, RunRecord, ScenarioResult, gate_for, new_run_id
from kubedrill.timeline import TimelineCorrupt

__all__ = ["MARKERS"]

# marker → allowed keyword arguments (positional arguments are never allowed)
MARKERS: dict[str, tuple[str, frozenset[str]]] = {
    "ci": ("short pre-release gate scenario", frozenset()),
    "gameday": ("long game-day scenario", frozenset()),
    "capacity": ("capacity benchmark scenario", frozenset()),
    "gpu": ("needs GPUs; gpu(count=N) says how many", frozenset({"count"})),
    "cluster": ("needs a reachable Kubernetes cluster (the sandbox will do)", frozenset()),
}

_RECORD = pytest.StashKey[RunRecord]()
_WRITTEN = pytest.StashKey[dict[str, Path]]()
_DRILL = pytest.StashKey[Drill]()
_STARTED = pytest.StashKey[float]()

# option dest → settings key
_OPTION_KEYS = {
    "drill_kubeconfig": "cluster.kubeconfig",
    "drill_context": "cluster.context",
    "drill_namespace": "target.namespace",
    "drill_target_url": "target.url",
    "drill_prometheus_url": "prometheus.url",
    "drill_report_dir": "report.dir",
    "drill_suite": "run.suite",
    "drill_time_scale": "run.time_scale",
    "drill_dry_run": "run.dry_run",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kubedrill", "kubedrill scenarios (every option is --drill-*)")
    g.addoption(
        "--drill-config",
        dest="drill_config",
        metavar="FILE",
        help="drill.yaml settings file (default: $KUBEDRILL_CONFIG, else ./drill.yaml)",
    )
    g.addoption("--drill-kubeconfig", dest="drill_kubeconfig", metavar="FILE", help="kubeconfig")
    g.addoption("--drill-context", dest="drill_context", metavar="NAME", help="kubeconfig context")
    g.addoption(
        "--drill-namespace", dest="drill_namespace", metavar="NS", help="namespace of the target"
    )
    g.addoption(
        "--drill-target-url", dest="drill_target_url", metavar="URL", help="URL of the target"
    )
    g.addoption(
        "--drill-prometheus-url",
        dest="drill_prometheus_url",
        metavar="URL",
        help="Prometheus base URL",
    )
    g.addoption(
        "--drill-report-dir", dest="drill_report_dir", metavar="DIR", help="where reports go"
    )
    g.addoption(
        "--drill-suite",
        dest="drill_suite",
        choices=["ci", "gameday", "capacity", "all"],
        help="run only scenarios with this marker",
    )
    g.addoption(
        "--drill-time-scale",
        dest="drill_time_scale",
        metavar="X",
        help="multiply scenario durations (0.1 for a quick pass)",
    )
    g.addoption(
        "--drill-dry-run",
        dest="drill_dry_run",
        action="store_const",
        const=True,
        default=None,
        help="plan only: no load, no faults; INCONCLUSIVE never fails",
    )
    g.addoption("--drill-run-id", dest="drill_run_id", help=argparse.SUPPRESS)


def _settings_from(config: pytest.Config) -> Settings:
    overrides: dict[str, Any] = {key: config.getoption(dest) for dest, key in _OPTION_KEYS.items()}
    cfg = config.getoption("drill_config")
    try:
        return load_settings(
            Path(cfg) if cfg else None, overrides=overrides, override_source="pytest option"
        )
    except ConfigError as e:
        raise pytest.UsageError(f"kubedrill: {e}") from None


def pytest_configure(config: pytest.Config) -> None:
    for name, (doc, _) in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    settings = _settings_from(config)
    run_id = config.getoption("drill_run_id") or new_run_id()
    config.stash[_RECORD] = RunRecord(settings=settings, run_id=run_id)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for mark in item.iter_markers():
            if mark.name not in MARKERS:
                continue
            allowed = MARKERS[mark.name][1]
            bad = [k for k in mark.kwargs if k not in allowed]
            if mark.args or bad:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.{mark.name} takes "
                    + (f"only {', '.join(sorted(allowed))}=" if allowed else "no arguments")
                    + f", got args={mark.args!r} kwargs={dict(mark.kwargs)!r}"
                )
            if mark.name == "gpu" and "count" in mark.kwargs:
                count = mark.kwargs["count"]
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    raise pytest.UsageError(
                        f"{item.nodeid}: gpu(count=...) must be a positive integer"
                    )
    suite = config.stash[_RECORD].settings.run.suite
    if suite == "all":
        return
    keep = [i for i in items if i.get_closest_marker(suite) is not None]
    drop = [i for i in items if i.get_closest_marker(suite) is None]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def drill_settings(pytestconfig: pytest.Config) -> Settings:
    """The run's settings (defaults → drill.yaml → KUBEDRILL_* → options)."""
    return pytestconfig.stash[_RECORD].settings


@pytest.fixture
def drill(request: pytest.FixtureRequest, drill_settings: Settings) -> Iterator[Drill]:
    """The scenario's drill: ``drill.expect(...)``, ``drill.phase(...)``, ``drill.chaos(...)``,
    ``drill.timeline``. Any fault still active at teardown is rolled back."""
    d = Drill(request.node.nodeid, drill_settings)
    request.node.stash[_DRILL] = d
    request.node.stash[_STARTED] = time.time()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def timeline(drill: Drill) -> Any:
    """The scenario's timeline (same as ``drill.timeline``)."""
    return drill.timeline


@pytest.fixture
def cluster_watch(drill: Drill) -> Iterator[ClusterWatcher]:
    """Watches the target namespace and the nodes onto the scenario's timeline while the
    scenario runs; skips with a how-to-fix when no cluster is configured, and fails naming
    the verb and resource when the first LIST is refused (RBAC)."""
    settings = drill.settings
    try:
        _require_cluster(settings)
        adapter = KubeAdapter.from_settings(settings.cluster)
    except PreconditionUnmet as e:
        pytest.skip(str(e))
    watcher = ClusterWatcher(adapter, drill.timeline, settings.target.namespace)
    with watcher:
        try:
            watcher.wait_synced(settings.cluster.request_timeout_s * 3)
        except PreconditionUnmet as e:
            pytest.fail(f"cluster watch: {e}", pytrace=False)
        yield watcher


# ------------------------------------------------------------------ verdicts
# A scenario's checks are judged after its fixtures have torn down (a LoadRun stopped, a
# fault rolled back, a watch closed: all of it is evidence), so the plugin runs the
# scenario's protocol itself (as pytest-rerunfailures does): setup, call and teardown are
# run without logging, the checks are evaluated at the end of teardown, and only then are
# the reports logged, with a call that passed turned into a failure carrying the reasons
# when the verdict fails the gate. A failed teardown makes the scenario ERROR.

_PHASES = pytest.StashKey[dict[str, pytest.TestReport]]()
_GATE_MESSAGE = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if "drill" not in getattr(item, "fixturenames", ()):
        return None
    from _pytest.runner import runtestprotocol  # the protocol itself; used by plugins so

    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    message = item.stash.get(_GATE_MESSAGE, "")
    for report in reports:
        if message and report.when == "call" and report.passed:
            report.outcome = "failed"
            report.longrepr = message
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None]:
    try:
        yield
    finally:
        d = item.stash.get(_DRILL, None)
        if d is not None and not d.dry_run:
            with contextlib.suppress(TimelineCorrupt):  # judged (as ERROR) after teardown
                d.collect()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_PHASES, {})[report.when] = report
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _failure_text(report: pytest.TestReport) -> str:
    text = getattr(report, "longreprtext", "") or str(report.longrepr)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    tail = next((ln for ln in reversed(lines) if ln.startswith("E ")), lines[-1] if lines else "")
    return tail.removeprefix("E").strip()[:2000]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    teardown_error: BaseException | None = None
    try:
        yield
    except BaseException as e:  # noqa: BLE001 - re-raised below, after the verdicts
        teardown_error = e
    if "drill" in getattr(item, "fixturenames", ()):
        message = _conclude(item, teardown_error)
        if message:
            item.stash[_GATE_MESSAGE] = message
    if teardown_error is not None:
        raise teardown_error


def _conclude(item: pytest.Item, teardown_error: BaseException | None) -> str | None:
    """Evaluate the scenario's checks, record its result; the message if it fails the gate."""
    record = item.config.stash[_RECORD]
    phases = item.stash.get(_PHASES, {})
    setup, call = phases.get("setup"), phases.get("call")
    d = item.stash.get(_DRILL, None)
    status: str = "ran"
    message = ""
    if setup is not None and setup.skipped:
        status, message = "skipped", _skip_reason(setup)
    elif call is not None and call.skipped:
        status, message = "skipped", _skip_reason(call)
    elif setup is not None and setup.failed:
        status, message = "errored", f"setup failed: {_failure_text(setup)}"
    elif call is not None and call.failed:
        status, message = "errored", _failure_text(call)
    if teardown_error is not None:
        why = f"teardown failed: {type(teardown_error).__name__}: {teardown_error}"[:2000]
        status, message = "errored", (f"{message}; {why}" if message else why)
    results: list[CheckResult] = []
    damaged = ""
    if d is not None and status != "skipped":
        try:
            results = d.evaluate()
        except TimelineCorrupt as e:
            status, message = "errored", f"the run's evidence is damaged: {e}"
            damaged = f"ERROR: {message}"
    for r in results:
        item.user_properties.append((f"check:{r.name}", f"{r.verdict.value}: {r.reason}"))
    started = item.stash.get(_STARTED, None)
    now = time.time()
    record.scenarios.append(
        ScenarioResult(
            id=item.nodeid,
            name=item.name,
            markers=_markers(item),
            started=now if started is None else started,
            ended=now,
            status=status,  # type: ignore[arg-type]
            checks=results,
            message=message,
            timeline=None if d is None or status == "skipped" else d.timeline,
        )
    )
    if damaged and teardown_error is None and not (call is not None and call.failed):
        return damaged
    if status != "ran" or (call is not None and call.failed):
        return None  # pytest already reports the skip or the error
    gate = gate_for(record.settings)
    if not results:
        if gate.fails(Verdict.INCONCLUSIVE) and d is not None and not d.dry_run:
            return "INCONCLUSIVE: the scenario registered no checks"
        return None
    bad = [r for r in results if gate.fails(r.verdict)]
    return "\n".join(f"{r.verdict.value}: {r.name} — {r.reason}" for r in bad) or None


def _markers(item: pytest.Item) -> list[str]:
    return sorted({m.name for m in item.iter_markers() if m.name in MARKERS})


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cluster") is None:
        return
    settings = item.config.stash[_RECORD].settings
    try:
        _require_cluster(settings)
    except PreconditionUnmet as e:
        pytest.skip(str(e))


def _require_cluster(settings: Settings) -> None:
    import os

    candidates = [settings.cluster.kubeconfig] if settings.cluster.kubeconfig else []
    candidates += [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates.append(Path.home() / ".kube" / "config")
    if not any(p.is_file() for p in candidates):
        raise PreconditionUnmet(
            "no kubeconfig found",
            "start the sandbox with `kubedrill sandbox up` and export the KUBECONFIG it prints, "
            "or pass --drill-kubeconfig FILE",
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    record = config.stash.get(_RECORD, None)
    if record is None or not record.scenarios:
        return
    record.ended = time.time()
    settings = record.settings
    config.stash[_WRITTEN] = write_reports(
        record.to_dict(), settings.report.dir, settings.report.formats
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    record = config.stash.get(_RECORD, None)
    written = config.stash.get(_WRITTEN, None)
    if record is None or not written:
        return
    tr = terminalreporter
    tr.section("kubedrill")
    counts = ", ".join(f"{n} {k}" for k, n in record.counts().items() if n)
    tr.write_line(f"verdict: {record.verdict.value} ({counts or 'no checks'})")
    for sc in record.skipped():
        counted = (
            "counts as INCONCLUSIVE"
            if record.settings.run.skipped == "inconclusive"
            else ("allowed by run.skipped")
        )
        tr.write_line(f"skipped ({counted}): {sc.id} — {sc.message}")
    for fmt, path in written.items():
        tr.write_line(f"{fmt:>8}: {path}")
