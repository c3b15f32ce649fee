"""pytest plugin (entry point ``pytest11``): options, markers, fixtures, verdicts, reports.

A scenario is a test that uses the ``drill`` fixture. Its checks are evaluated when the
test body returns; FAIL/ERROR (and INCONCLUSIVE, unless the policy is ``warn``) fail the
test, and every check becomes its own testcase in ``reports/<run>/junit.xml``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubedrill.drill import Drill
from kubedrill.errors import ConfigError, PreconditionUnmet
from kubedrill.kube import KubeAdapter
from kubedrill.observe import ClusterWatcher
from kubedrill.report import write_reports
from kubedrill.run import RunRecord, ScenarioResult, new_run_id
from kubedrill.settings import Settings, load_settings
from kubedrill.types import Verdict

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
    g = parser.getgroup("kubedrill", "kubedrill scenarios")
    g.addoption(
        "--drill-config",
        dest="drill_config",
        metavar="FILE",
        help="drill.yaml settings file (default: $KUBEDRILL_CONFIG)",
    )
    g.addoption("--kubeconfig", dest="drill_kubeconfig", metavar="FILE", help="kubeconfig file")
    g.addoption("--context", dest="drill_context", metavar="NAME", help="kubeconfig context")
    g.addoption("--namespace", dest="drill_namespace", metavar="NS", help="namespace of the target")
    g.addoption(
        "--target-url", dest="drill_target_url", metavar="URL", help="URL of the service under test"
    )
    g.addoption(
        "--prometheus-url", dest="drill_prometheus_url", metavar="URL", help="Prometheus base URL"
    )
    g.addoption("--report-dir", dest="drill_report_dir", metavar="DIR", help="where run reports go")
    g.addoption(
        "--suite",
        dest="drill_suite",
        choices=["ci", "gameday", "capacity", "all"],
        help="run only scenarios with this marker",
    )
    g.addoption(
        "--time-scale",
        dest="drill_time_scale",
        metavar="X",
        help="multiply scenario durations (0.1 for a quick pass)",
    )
    g.addoption(
        "--dry-run",
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
def drill(request: pytest.FixtureRequest, drill_settings: Settings) -> Drill:
    """The scenario's drill: ``drill.expect(...)``, ``drill.phase(...)``, ``drill.timeline``."""
    d = Drill(request.node.nodeid, drill_settings)
    request.node.stash[_DRILL] = d
    request.node.stash[_STARTED] = time.time()
    return d


@pytest.fixture
def timeline(drill: Drill) -> Any:
    """The scenario's timeline (same as ``drill.timeline``)."""
    return drill.timeline


@pytest.fixture
def cluster_watch(drill: Drill) -> Iterator[ClusterWatcher]:
    """Watches the target namespace and the nodes onto the scenario's timeline while the
    scenario runs; skips with a how-to-fix when no cluster is configured."""
    settings = drill.settings
    try:
        _require_cluster(settings)
        adapter = KubeAdapter.from_settings(settings.cluster)
    except PreconditionUnmet as e:
        pytest.skip(str(e))
    watcher = ClusterWatcher(adapter, drill.timeline, settings.target.namespace)
    with watcher:
        if not watcher.synced.wait(settings.cluster.request_timeout_s * 3):
            pytest.fail(
                f"cluster watch did not sync within {settings.cluster.request_timeout_s * 3:g}s"
            )
        yield watcher


def _message(results: list[Any], policy_fails_inconclusive: bool) -> str | None:
    bad = [
        r
        for r in results
        if r.verdict in (Verdict.FAIL, Verdict.ERROR)
        or (r.verdict is Verdict.INCONCLUSIVE and policy_fails_inconclusive)
    ]
    if not bad:
        return None
    return "\n".join(f"{r.verdict.value}: {r.name} — {r.reason}" for r in bad)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    try:
        result = yield
    except pytest.skip.Exception as e:
        _finish(item, "skipped", str(e.msg))
        raise
    except BaseException as e:
        _finish(item, "errored", f"{type(e).__name__}: {e}"[:2000])
        raise
    d = item.stash.get(_DRILL, None)
    if d is None:
        return result
    record = item.config.stash[_RECORD]
    results = d.evaluate()
    fails_inconclusive = record.settings.run.inconclusive == "fail" and not d.dry_run
    msg = _message(results, fails_inconclusive)
    if not results:
        msg = (
            None
            if d.dry_run or not fails_inconclusive
            else "INCONCLUSIVE: the scenario registered no checks"
        )
    for r in results:
        item.user_properties.append((f"check:{r.name}", f"{r.verdict.value}: {r.reason}"))
    _finish(item, "ran", msg or "")
    if msg:
        pytest.fail(msg, pytrace=False)
    return result


def _markers(item: pytest.Item) -> list[str]:
    return sorted({m.name for m in item.iter_markers() if m.name in MARKERS})


def _finish(item: pytest.Item, status: str, message: str) -> None:
    d = item.stash.get(_DRILL, None)
    if d is None:
        return
    record = item.config.stash[_RECORD]
    results = d.evaluate() if status != "skipped" else []
    record.scenarios.append(
        ScenarioResult(
            id=item.nodeid,
            name=item.name,
            markers=_markers(item),
            started=item.stash.get(_STARTED, time.time()),
            ended=time.time(),
            status=status,  # type: ignore[arg-type]
            checks=results,
            message=message,
            timeline=d.timeline,
        )
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "setup" and report.skipped and "drill" in getattr(item, "fixturenames", ()):
        record = item.config.stash[_RECORD]
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        now = time.time()
        record.scenarios.append(
            ScenarioResult(
                id=item.nodeid,
                name=item.name,
                markers=_markers(item),
                started=now,
                ended=now,
                status="skipped",
                message=reason.removeprefix("Skipped: "),
            )
        )
    return report


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
            "or pass --kubeconfig FILE",
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
    for fmt, path in written.items():
        tr.write_line(f"{fmt:>8}: {path}")
