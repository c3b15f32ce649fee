"""Deliberately broken evidence, run for real: each case is a scenario file run by
``kubedrill run`` (the real CLI, the real pytest plugin) against the real reference
service and real Locust, some on the sandbox cluster. A broken case must never be PASS,
and its reasons must carry the figures (coverage, counts, gap times). The control case
is healthy and must PASS.

Used by ``tests/integration/test_evidence_cases.py`` (one test per case) and by
``benchmarks/bench_verdicts.py`` (``make bench-verdicts``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["CASES", "Case", "CaseResult", "ClusterTarget", "cluster_target", "run_case"]


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    source: str  # the scenario file
    broken: bool = True
    cluster: bool = False  # needs the sandbox: --drill-kubeconfig is passed
    #: regexes every one of which must appear in some non-PASS check's reason or scenario
    #: message (the figures)
    figures: tuple[str, ...] = ()
    drill_yaml: str = ""
    args: tuple[str, ...] = ()
    exit_codes: tuple[int, ...] = (1, 3)
    env: dict[str, str] = field(default_factory=dict)
    isolated_home: bool = False  # HOME in the work dir: no ~/.kube/config to fall back on
    #: the broken part is not a check's evidence (a failed rollback): only the scenario's
    #: and the run's verdicts must not be PASS
    checks_may_pass: bool = False
    #: the case skips scenarios: the run is INCONCLUSIVE because of the skips, or FAIL when
    #: a scenario that did run failed (real load on a starved machine may); never PASS
    skips_inconclusive: bool = False


@dataclass
class CaseResult:
    case: Case
    returncode: int
    verdict: str
    checks: list[dict[str, Any]]
    messages: list[str]
    missing_figures: list[str]
    output: str
    scenario_verdicts: list[str] = field(default_factory=list)

    @property
    def expected_exit_codes(self) -> tuple[int, ...]:
        if self.case.skips_inconclusive:
            ran_failed = any(v in ("FAIL", "ERROR") for v in self.scenario_verdicts)
            return (1,) if ran_failed else (3,)
        return self.case.exit_codes

    @property
    def passed_any(self) -> bool:
        if self.case.checks_may_pass:
            return self.verdict == "PASS"
        return self.verdict == "PASS" or any(c["verdict"] == "PASS" for c in self.checks)

    @property
    def ok(self) -> bool:
        if self.case.broken:
            good = (
                not self.passed_any
                and not self.missing_figures
                and self.returncode in self.expected_exit_codes
            )
        else:
            good = self.verdict == "PASS" and self.returncode == 0
        return good

    def summary(self) -> dict[str, Any]:
        return {
            "case": self.case.name,
            "what": self.case.what,
            "broken": self.case.broken,
            "verdict": self.verdict,
            "exit": self.returncode,
            "false_pass": self.case.broken and self.passed_any,
            "missing_figures": self.missing_figures,
            "checks": [
                {k: c[k] for k in ("name", "verdict", "value", "reason", "coverage")}
                for c in self.checks
            ],
            "messages": self.messages,
        }


def run_case(
    case: Case,
    workdir: Path,
    cluster: ClusterTarget | None = None,
    timeout_s: float = 600,
) -> CaseResult:
    """Write the case's scenario into ``workdir`` and run it with ``kubedrill run``."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"test_{case.name}.py"
    path.write_text(textwrap.dedent(case.source))
    if case.drill_yaml:
        (workdir / "drill.yaml").write_text(textwrap.dedent(case.drill_yaml))
    reports = workdir / "reports"
    args: list[str] = [*case.args]
    env = {**os.environ, **case.env}
    if case.cluster:
        if cluster is None:
            raise ValueError(f"case {case.name} needs a cluster")
        args += [f"--drill-kubeconfig={cluster.kubeconfig}", f"--drill-namespace={cluster.ns}"]
        env["CASE_PROXY_PID"] = str(cluster.proxy_pid)
    if case.isolated_home:
        env["HOME"] = str(workdir)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    cmd = [sys.executable, "-m", "kubedrill.cli", "run", "--report-dir", str(reports)]
    target: Sequence[str] = [str(path)] if not case.name.startswith("suite_") else []
    p = subprocess.run(
        [*cmd, *args, *target],
        cwd=workdir if target else ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )
    out = p.stdout[-4000:] + p.stderr[-4000:]
    doc_path = reports / "latest" / "run.json"
    doc: dict[str, Any] = json.loads(doc_path.read_text()) if doc_path.exists() else {}
    checks = [c for s in doc.get("scenarios", []) for c in s["checks"]]
    messages = [s["message"] for s in doc.get("scenarios", []) if s["message"]]
    messages += [f"skipped {s['id']}: {s['reason']}" for s in doc.get("skipped", [])]
    evidence = [c["reason"] for c in checks if c["verdict"] != "PASS"] + messages
    missing = [rx for rx in case.figures if not any(re.search(rx, e) for e in evidence)]
    verdicts = [s["verdict"] for s in doc.get("scenarios", [])]
    return CaseResult(
        case, p.returncode, doc.get("verdict", "none"), checks, messages, missing, out, verdicts
    )


# ----------------------------------------------------------------------- a cluster


@dataclass(frozen=True)
class ClusterTarget:
    kubeconfig: Path  # through the cuttable proxy
    ns: str
    proxy_pid: int


@contextlib.contextmanager
def cluster_target(direct_kubeconfig: Path, workdir: Path, ns: str) -> Iterator[ClusterTarget]:
    """A namespace with a one-replica Deployment ``web`` (a kwok pod), and a kubeconfig
    that reaches the API server through ``tcpcut.py``, a proxy the scenario can cut."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(direct_kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    labels = {"app": "web"}
    apps.create_namespaced_deployment(ns, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "fake"}]}}},
    })  # fmt: skip
    deadline = time.monotonic() + 60
    while (apps.read_namespaced_deployment("web", ns).status.ready_replicas or 0) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Deployment {ns}/web did not get a ready replica in 60 s")
        time.sleep(0.5)
    doc = yaml.safe_load(direct_kubeconfig.read_text())
    server = urlsplit(doc["clusters"][0]["cluster"]["server"])
    proxy = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("tcpcut.py")), server.hostname or "",
         str(server.port)], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proxy.stdout is not None
        port = int(proxy.stdout.readline())
        for c in doc["clusters"]:
            c["cluster"]["server"] = f"https://{server.hostname}:{port}"
        via = workdir / "kubeconfig-via-proxy"
        workdir.mkdir(parents=True, exist_ok=True)
        via.write_text(yaml.safe_dump(doc))
        yield ClusterTarget(via, ns, proxy.pid)
    finally:
        proxy.terminate()
        proxy.wait(10)
        if proxy.stdout is not None:
            proxy.stdout.close()
        core.delete_namespace(ns)
        api.close()


# ----------------------------------------------------------------------- the cases

_HEAD = """
import os
import signal
import time

import pytest

from kubedrill.refservice.testing import run_service

RATE = 40.0
"""

_LOAD_CLAIMS = """
    drill.expect("p95_ms <= 100", phase="steady")
    drill.expect("error_rate < 1%", phase="steady")
    drill.expect("availability >= 99%", phase="steady")
    drill.expect("rps >= 36", phase="steady")
"""

CONTROL = Case(
    "control_healthy",
    "healthy control: 40 req/s over a 10 s phase, every claim met",
    _HEAD
    + """
def test_healthy(drill):
"""
    + _LOAD_CLAIMS
    + """
    with run_service(slots=4, service_time_ms=10) as svc:
        with drill.load(svc.url, 15, rate=RATE) as load:
            load.wait_flowing(settle_s=0.5)  # not a guessed 2 s: Locust may start slowly
            with drill.phase("steady"):
                time.sleep(10)
""",
    broken=False,
)

PARTIAL_LOAD = Case(
    "load_covers_10_percent",
    "load covers 1 s of a 10 s phase",
    _HEAD
    + """
def test_partial(drill):
"""
    + _LOAD_CLAIMS
    + """
    with run_service(slots=4, service_time_ms=10) as svc:
        with drill.phase("steady"):
            with drill.load(svc.url, 1.0, rate=RATE):
                pass  # Locust runs its 1 s and exits
            time.sleep(max(0.0, 10 - (time.monotonic() - drill.timeline.phases()["steady"].start)))
""",
    figures=(r"load covered [01]\.\d s of 1\d\.\d s \(\d+%\)",),
)

LOCUST_KILLED = Case(
    "locust_sigkilled",
    "Locust SIGKILLed 3 s into a 12 s phase",
    _HEAD
    + """
def test_killed(drill):
"""
    + _LOAD_CLAIMS
    + """
    with run_service(slots=4, service_time_ms=10) as svc:
        run = drill.load(svc.url, 16, rate=RATE)
        with run:
            time.sleep(2)
            with drill.phase("steady"):
                time.sleep(3)
                os.killpg(run.pid, signal.SIGKILL)
                time.sleep(9)
""",
    figures=(
        r"load run load:\w+ failed \(exit -9\)",
        r"\d+ of 640 planned requests completed",
        r"load covered \d+\.\d s of 12\.\d s",
    ),
)

DROPPED = Case(
    "sends_dropped_30_percent",
    "the open model drops ~30 % of sends (in-flight cap 7 at 100 req/s x 100 ms)",
    _HEAD
    + """
def test_dropped(drill):
"""
    + """
    drill.expect("p95_ms <= 500", phase="steady")
    drill.expect("error_rate < 1%", phase="steady")
    drill.expect("availability >= 99%", phase="steady")
    with run_service(slots=64, service_time_ms=100) as svc:
        with drill.load(svc.url, 12, rate=100, max_inflight=7):
            time.sleep(2)
            with drill.phase("steady"):
                time.sleep(9)
""",
    figures=(
        r"dropped \d+ of \d+ intended sends",
        r"including \d+ sends the generator dropped",
    ),
)

TEARDOWN_FAILS = Case(
    "rollback_fails_in_teardown",
    "a rollback that fails in fixture teardown, after a healthy load",
    _HEAD
    + """
@pytest.fixture
def fault(drill):
    drill.note("fault injected")
    yield
    raise RuntimeError("rollback failed: could not restore the service")


def test_rollback(drill, fault):
"""
    + _LOAD_CLAIMS
    + """
    with run_service(slots=4, service_time_ms=10) as svc:
        with drill.load(svc.url, 9, rate=RATE):
            time.sleep(3)
            with drill.phase("steady"):
                time.sleep(5)
""",
    figures=(r"teardown failed: RuntimeError: rollback failed",),
    exit_codes=(1,),
    checks_may_pass=True,
)

PROMQL_TYPO = Case(
    "promql_typo",
    "a PromQL typo (HTTP 400) with inconclusive: warn",
    _HEAD
    + """
from kubedrill.adapters.localprom import run_prometheus, wait_for_series


@pytest.fixture
def svc():
    with run_service(slots=4, service_time_ms=10) as s:
        yield s


@pytest.fixture
def prom(svc):
    with run_prometheus({"refservice": [f"127.0.0.1:{svc.port}"]}, interval_s=1.0) as p:
        wait_for_series(p.url, 'up{job="refservice"} == 1')
        yield p


def test_typo(drill, svc, prom):
    drill.use_prometheus(prom.url)
    drill.expect("value < 0.01", phase="steady", query="sum(rate(refservice_requests_total[5s]")
    with drill.load(svc.url, 6, rate=RATE):
        time.sleep(1)
        with drill.phase("steady"):
            time.sleep(4)
""",
    drill_yaml="run:\n  inconclusive: warn\n",
    figures=(r"rejected 'sum\(rate\(refservice_requests_total\[5s\]' \(HTTP 400\)",),
    exit_codes=(1,),
)

SKIPPED_SUITE = Case(
    "suite_ci_without_a_cluster",
    "`kubedrill run --suite ci` with no cluster: the cluster scenario is skipped",
    "",
    args=("--suite", "ci", "--time-scale", "0.5"),
    figures=(r"skipped .*test_cluster_reference.*no kubeconfig found",),
    env={"KUBECONFIG": "/nonexistent/kubeconfig"},
    isolated_home=True,
    checks_may_pass=True,  # the scenarios that ran may pass; the run must not
    skips_inconclusive=True,  # exit 3, or 1 where a scenario that ran failed
)

_CLUSTER_HEAD = """
import os
import signal
import time
"""

WATCH_CUT = Case(
    "watch_cut_20s_of_60s",
    "the cluster watch cut for 20 s of a 60 s phase (a real TCP proxy to the API server)",
    _CLUSTER_HEAD
    + """
def test_floor_across_a_gap(drill, cluster_watch):
    drill.expect("replicas >= 1", phase="hold", object_name="web")
    proxy = int(os.environ["CASE_PROXY_PID"])
    with drill.phase("hold"):
        time.sleep(20)
        os.kill(proxy, signal.SIGUSR1)  # cut: every connection closed, new ones refused
        time.sleep(20)
        os.kill(proxy, signal.SIGUSR2)  # restore
        time.sleep(20)
""",
    cluster=True,
    figures=(r"watch of Deployment down from 2\d\.\d s \(.*\) to [34]\d\.\d s \(.*\)",),
)

UNREACHABLE_TARGET = Case(
    "scale_target_unreachable",
    "scale_up_within: 10s to 5 replicas that never come, over a 15 s phase and a 5 s one",
    _CLUSTER_HEAD
    + """
def test_never_scales(drill, cluster_watch):
    drill.expect("scale_up_within: 10s", phase="long", object_name="web", target=5)
    drill.expect("scale_up_within: 10s", phase="short", object_name="web", target=5,
                 name="deadline longer than the phase")
    with drill.phase("long"):
        time.sleep(15)
    with drill.phase("short"):
        time.sleep(5)
""",
    cluster=True,
    figures=(
        r"never reached 5 in 15\.\d s, beyond the 10 s allowed \(best seen 1\)",
        r"could not fail here",
    ),
)

CASES: tuple[Case, ...] = (
    CONTROL,
    PARTIAL_LOAD,
    LOCUST_KILLED,
    DROPPED,
    TEARDOWN_FAILS,
    PROMQL_TYPO,
    SKIPPED_SUITE,
    WATCH_CUT,
    UNREACHABLE_TARGET,
)
