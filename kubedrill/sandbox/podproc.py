"""One process-backed pod's process: start it, probe it, measure it, stop it.

The runner (:mod:`kubedrill.sandbox.podrunner`) owns one :class:`PodProcess` per pod and
calls it from its single loop; nothing here talks to the API server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kubedrill.sandbox.kubeletlogs import LogPump, cri_log_path
from kubedrill.sandbox.podspec import Probe, ProcessSpec, expand, pod_ip

__all__ = ["POD_MARKER_ENV", "PodProcess", "cpu_and_rss_by_group", "probe_once"]

# Set in every pod process's environment to the sandbox folder: how `down` finds
# leftovers even when the runner was killed before it could stop them.
POD_MARKER_ENV = "KUBEDRILL_SANDBOX_POD"
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_BACKOFF_START_S = 1.0
_BACKOFF_MAX_S = 10.0


def probe_once(probe: Probe, port: int) -> bool:
    """One readiness probe against 127.0.0.1:port: HTTP 200-399, or a TCP connect."""
    if probe.path is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=probe.timeout_s):
                return True
        except OSError:
            return False
    url = f"http://127.0.0.1:{port}{probe.path}"
    try:
        with urllib.request.urlopen(url, timeout=probe.timeout_s) as resp:
            return 200 <= int(resp.status) < 400
    except urllib.error.HTTPError as e:
        return 200 <= e.code < 400
    except (OSError, ValueError):
        return False


def cpu_and_rss_by_group() -> dict[int, tuple[float, int]]:
    """CPU seconds (user+system) and resident bytes of every process, summed per
    process group: a pod's process and anything it forks count as the pod."""
    out: dict[int, tuple[float, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = raw.rsplit(")", 1)[-1].split()
        if len(fields) < 22:
            continue
        pgrp = int(fields[2])
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        rss = int(fields[21]) * _PAGE
        c, r = out.get(pgrp, (0.0, 0))
        out[pgrp] = (c + cpu, r + rss)
    return out


@dataclass
class PodProcess:
    spec: ProcessSpec
    port: int
    devices: tuple[str, ...]
    ledger_dir: Path | None
    log_path: Path
    base_env: Mapping[str, str]
    marker: str
    proc: subprocess.Popen[bytes] | None = None
    started_wall: float = 0.0
    created_wall: float = field(default_factory=time.time)
    restart_count: int = 0
    ready: bool = False
    ready_since_wall: float = field(default_factory=time.time)
    sent_ready: bool | None = None  # readiness last written to the pod's status
    usage_sent: dict[str, str] | None = None  # usage annotations last written
    last_exit: tuple[int, float, float] | None = None  # (code, started, finished)
    finished: bool = False  # Never/OnFailure and done: no more restarts
    backoff_until: float = 0.0
    backoff_s: float = _BACKOFF_START_S
    terminating_until: float | None = None
    _ok_streak: int = 0
    _fail_streak: int = 0
    _next_probe: float = 0.0
    _probe: Future[bool] | None = None
    _cpu_mark: tuple[float, float] | None = None
    pump: LogPump | None = None
    crash_seen: str = ""  # the last value of the crash annotation acted on

    @property
    def ip(self) -> str:
        return pod_ip(self.port)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def env(self) -> dict[str, str]:
        s = self.spec
        added = {
            "PORT": str(self.port),
            "POD_NAME": s.key.name,
            "POD_NAMESPACE": s.key.namespace,
            "POD_IP": self.ip,
            "HOST_IP": "127.0.0.1",
            "NODE_NAME": s.node,
            "NVIDIA_VISIBLE_DEVICES": ",".join(self.devices) if self.devices else "void",
            "KUBEDRILL_GPU_LEDGER": str(self.ledger_dir or ""),
        }
        env = dict(self.base_env)
        env.update(added)
        scope = dict(added)  # $(VAR) sees the runner's variables and earlier entries, as in k8s
        for name, value in s.env:
            scope[name] = env[name] = expand(value, scope)
        env[POD_MARKER_ENV] = self.marker
        return env

    def start(self) -> None:
        env = self.env()
        argv = [expand(a, env) for a in self.spec.command]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,  # to the plain and the CRI log: kubeletlogs.py
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # own process group: signalled as one
                    cwd=self.log_path.parent,
                )
            except OSError as e:
                log.write(f"--- could not start: {e}\n".encode())
                self.proc = None
                self.last_exit = (127, time.time(), time.time())
                return
        self.pump = LogPump(self.log_path, self.cri_log(self.restart_count))
        self.pump.start({"stdout": self.proc.stdout, "stderr": self.proc.stderr})
        self.started_wall = time.time()
        self.ready = False
        self._ok_streak = self._fail_streak = 0
        # a probe still in flight was sent to the previous process: its answer (often "ok",
        # sent just before a crash) must not make this one Ready
        self._probe = None
        delay = self.spec.readiness.initial_delay_s if self.spec.readiness else 0.0
        self._next_probe = time.monotonic() + delay
        self._cpu_mark = None

    def cri_log(self, restart: int) -> Path:
        return cri_log_path(self.log_path.parent, self.spec.container, restart)

    def check_exit(self) -> int | None:
        """The exit code if the process has just ended (recorded once), else None."""
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is None:
            return None
        if self.pump is not None:  # its log complete before its status says terminated
            self.pump.wait()
        if code < 0:  # killed by a signal: report it as a container runtime does
            code = 128 - code
        self.last_exit = (code, self.started_wall, time.time())
        self.proc = None
        self.ready = False
        return code

    def should_restart(self, code: int) -> bool:
        policy = self.spec.restart_policy
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def schedule_restart(self) -> float:
        """Crash-loop back-off (1 s doubling to 10 s; a kubelet uses 10 s to 5 min)."""
        wait = self.backoff_s
        self.backoff_until = time.monotonic() + wait
        self.backoff_s = min(_BACKOFF_MAX_S, self.backoff_s * 2)
        return wait

    def poll_readiness(self, pool: ThreadPoolExecutor) -> bool | None:
        """Advance the readiness probe; returns the new readiness when it changed."""
        if not self.running or self.terminating_until is not None:
            return None
        probe = self.spec.readiness
        if probe is None:
            if not self.ready:
                self.ready = True
                return True
            return None
        if self._probe is not None:
            if not self._probe.done():
                return None
            ok = self._probe.result()
            self._probe = None
            return self._record(ok, probe)
        if time.monotonic() >= self._next_probe:
            self._next_probe = time.monotonic() + probe.period_s
            self._probe = pool.submit(probe_once, probe, self.port)
        return None

    def _record(self, ok: bool, probe: Probe) -> bool | None:
        if ok:
            self._ok_streak, self._fail_streak = self._ok_streak + 1, 0
            if not self.ready and self._ok_streak >= probe.success_threshold:
                self.ready = True
                self.backoff_s = _BACKOFF_START_S
                return True
        else:
            self._fail_streak, self._ok_streak = self._fail_streak + 1, 0
            if self.ready and self._fail_streak >= probe.failure_threshold:
                self.ready = False
                return False
        return None

    def cpu_usage(self, groups: Mapping[int, tuple[float, int]]) -> tuple[float, int] | None:
        """(cores used since the last call, resident bytes), or None on the first call."""
        if self.proc is None or self.proc.pid not in groups:
            return None
        cpu_s, rss = groups[self.proc.pid]
        now = time.monotonic()
        mark, self._cpu_mark = self._cpu_mark, (now, cpu_s)
        if mark is None or now - mark[0] <= 0:
            return None
        return max(0.0, (cpu_s - mark[1]) / (now - mark[0])), rss

    def terminate(self, grace_s: float) -> None:
        """SIGTERM to the process group; SIGKILL follows from :meth:`reap_terminating`."""
        self.terminating_until = time.monotonic() + max(0.0, grace_s)
        self.ready = False
        self._signal(signal.SIGTERM)

    def reap_terminating(self) -> bool:
        """True once the process is gone; SIGKILL when the grace period is over."""
        if self.proc is None:
            return True
        if self.proc.poll() is not None:
            self.check_exit()
            return True
        if self.terminating_until is not None and time.monotonic() >= self.terminating_until:
            self._signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
            self.check_exit()
            return True
        return False

    def crash(self) -> None:
        """A container crash: SIGKILL to the process group; the supervisor sees exit 137
        and restarts it as ``restartPolicy`` says, the pod stays."""
        self.ready = False
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
