"""Run a real, private Prometheus (the Debian package's binary) for tests and local demos.

It listens on loopback only, scrapes the given targets at a short interval and keeps its
data in a temporary directory that is removed on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from kubedrill.core.errors import PreconditionUnmet

__all__ = ["LocalPrometheus", "free_port", "run_prometheus", "wait_for_series"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class LocalPrometheus:
    url: str
    pid: int
    config_path: Path


def _config(
    jobs: Mapping[str, list[str]], interval_s: float, labels: Mapping[str, Mapping[str, str]]
) -> str:
    scrape = [
        {
            "job_name": job,
            "scrape_interval": f"{round(interval_s * 1000)}ms",
            "static_configs": [{"targets": targets, "labels": dict(labels.get(job, {}))}],
        }
        for job, targets in jobs.items()
    ]
    # JSON is valid YAML; no YAML emitter needed here.
    interval = f"{round(interval_s * 1000)}ms"
    return json.dumps({"global": {"scrape_interval": interval}, "scrape_configs": scrape}, indent=1)


@contextlib.contextmanager
def run_prometheus(
    jobs: Mapping[str, list[str]],
    interval_s: float = 1.0,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    binary: str | None = None,
    ready_timeout_s: float = 30.0,
) -> Iterator[LocalPrometheus]:
    """Start Prometheus scraping ``jobs`` ({job: ["127.0.0.1:port", ...]}); stop it on exit.

    The job ``self`` is added automatically (Prometheus scraping itself).
    """
    exe = (
        binary
        or shutil.which("prometheus")
        or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    )
    if exe is None:
        raise PreconditionUnmet(
            "Prometheus is not installed", "apt-get install -y --no-install-recommends prometheus"
        )
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="kubedrill-prom-"))
    cfg = workdir / "prometheus.yml"
    cfg.write_text(_config({"self": [f"127.0.0.1:{port}"], **jobs}, interval_s, labels or {}))
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                tail = (workdir / "prometheus.log").read_text(errors="replace")[-800:]
                raise PreconditionUnmet(
                    f"Prometheus exited with {proc.returncode}: {tail}", f"see {cfg}"
                )
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as r:  # noqa: S310 - loopback
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PreconditionUnmet(
                    "Prometheus did not become ready", f"see {workdir / 'prometheus.log'}"
                )
            time.sleep(0.1)
        yield LocalPrometheus(url=url, pid=proc.pid, config_path=cfg)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_for_series(url: str, query: str, timeout_s: float = 30.0) -> None:
    """Block until ``query`` returns at least one series (scrapes have landed)."""
    import urllib.parse

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        q = urllib.parse.urlencode({"query": query})
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=2) as r:  # noqa: S310
                if json.loads(r.read())["data"]["result"]:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"no series for {query!r} at {url} after {timeout_s:g}s")
