"""Start the reference service as a real subprocess, for tests and benchmarks (no pytest needed).

::

    from kubedrill.refservice.testing import run_service

    with run_service(mode="emulated", slots=8, service_time_ms=10) as svc:
        status, body = svc.request("POST", "/v1/infer", {"inputs": [1, 2]})
        print(svc.url, svc.pid)

The service binds a free loopback port (``--port 0``) and announces it on stdout; the
helper waits for ``/ready`` (unless told not to), and on exit sends SIGTERM and waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["RunningService", "ServiceFailed", "http_request", "run_service"]


class ServiceFailed(RuntimeError):
    """The service did not start, did not get ready, or did not stop in time."""


def http_request(
    url: str, method: str = "GET", body: object = None, timeout_s: float = 10.0
) -> tuple[int, Any]:
    """One HTTP request; returns (status, parsed JSON or text), also for 4xx and 5xx."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    text = raw.decode("utf-8", "replace")
    return status, json.loads(text) if "json" in ctype else text


@dataclass
class RunningService:
    url: str
    pid: int
    port: int
    process: subprocess.Popen[str]
    stderr_path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None

    def request(
        self, method: str, path: str, body: object = None, timeout_s: float = 10.0
    ) -> tuple[int, Any]:
        return http_request(self.url + path, method, body, timeout_s)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceFailed(
                    f"service exited with {self.process.returncode}:\n{_tail(self.stderr())}"
                )
            with contextlib.suppress(OSError):
                if self.request("GET", "/ready", timeout_s=2.0)[0] == 200:
                    return
            time.sleep(0.02)
        raise ServiceFailed(f"service not ready after {timeout_s:g}s:\n{_tail(self.stderr())}")

    def stop(self, timeout_s: float = 30.0, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM) and wait for exit; SIGKILL and raise if it takes too long."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise ServiceFailed(
                    f"service did not exit within {timeout_s:g}s of signal {sig}"
                ) from None
        self.returncode = self.process.returncode
        return self.returncode


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _service_args(
    mode: str, slots: int | None, service_time_ms: float | None, extra_args: Sequence[str]
) -> list[str]:
    args = ["--host", "127.0.0.1", "--port", "0", "--mode", mode]
    if slots is not None:
        args += ["--slots", str(slots)]
    if service_time_ms is not None:
        args += ["--service-time-ms", str(service_time_ms)]
    return args + list(extra_args)


@contextlib.contextmanager
def run_service(
    mode: str = "emulated",
    *,
    slots: int | None = None,
    service_time_ms: float | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    start_timeout_s: float = 30.0,
    stop_timeout_s: float = 30.0,
    python: str = sys.executable,
) -> Iterator[RunningService]:
    """Run ``python -m kubedrill.refservice`` on a free loopback port for the ``with`` body."""
    argv = [
        python,
        "-m",
        "kubedrill.refservice",
        *_service_args(mode, slots, service_time_ms, extra_args),
    ]
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with tempfile.NamedTemporaryFile(
        "w+", prefix="refservice-", suffix=".log", delete=False
    ) as err:
        stderr_path = Path(err.name)
    with stderr_path.open("w") as err_f:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err_f, text=True, env=full_env)
    lines: queue.Queue[str | None] = queue.Queue()
    assert proc.stdout is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    pump.start()
    svc: RunningService | None = None
    try:
        svc = _await_listening(proc, lines, stderr_path, start_timeout_s)
        if wait_ready:
            svc.wait_ready(start_timeout_s)
        yield svc
    finally:
        try:
            if svc is not None:
                svc.stop(stop_timeout_s)
            elif proc.poll() is None:
                proc.kill()
                proc.wait()
        finally:
            pump.join(5.0)  # stdout ends with the process
            if svc is not None:
                _collect_events(svc, lines)
            proc.stdout.close()
            stderr_path.unlink(missing_ok=True)


def _await_listening(
    proc: subprocess.Popen[str], lines: queue.Queue[str | None], stderr_path: Path, timeout_s: float
) -> RunningService:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            proc.wait()
            raise ServiceFailed(
                f"service exited with {proc.returncode}:\n{_tail(stderr_path.read_text())}"
            )
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("event") == "listening":
                svc = RunningService(
                    event["url"], int(event["pid"]), int(event["port"]), proc, stderr_path
                )
                svc.events.append(event)
                return svc
    proc.kill()
    proc.wait()
    raise ServiceFailed(f"service did not announce its port within {timeout_s:g}s")


def _collect_events(svc: RunningService, lines: queue.Queue[str | None]) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is None:
            return
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                svc.events.append(event)
