"""Run a Chaos Toolkit experiment as users do — ``chaos run`` in its own process — and
bring back what happened.

    run = run_experiment(Path("experiments/node-drain.json"), settings_env(settings),
                         timeline, Path("reports/run-1/ctk-node-drain"))
    assert run.ok, run.reason

:func:`run_experiment` starts ``chaos --no-version-check --log-file <workdir>/chaostoolkit.log
run --journal-path <workdir>/journal.json --rollback-strategy always <experiment>`` with the
working directory ``workdir``, this process's environment plus ``settings_env`` (KUBECONFIG
and ``KUBEDRILL_*``: :func:`settings_env` makes them from a :class:`Settings`), and
``KUBEDRILL_TIMELINE_SPOOL`` (the actions and the control record their markers and notes
there; the spool is ingested into ``timeline`` while it runs and at the end) and
``KUBEDRILL_CTK_ACTIVITIES`` (the control's activity journal). Its own process, because the
kubernetes client reads ``KUBECONFIG`` when it is imported (docs/sandbox.md, traps).

Past ``timeout_s`` it gets SIGTERM (chaoslib interrupts the experiment; the actions and the
control roll back), and SIGKILL ``grace_s`` later; so does it when this process is
interrupted. ``chaos run`` exits 0 with ``status: completed`` when an action failed and the
hypothesis still held: :attr:`CtkRun.ok` is true only when the run completed, did not
deviate, no activity failed and ``chaos`` exited 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubedrill.chaos.ctk.session import ACTIVITIES_ENV, SPOOL_ENV, unwrap_error
from kubedrill.core.errors import ConfigError, PreconditionUnmet, truncate
from kubedrill.core.settings import ENV_PREFIX, Settings
from kubedrill.timeline import Note, Timeline

__all__ = ["CtkRun", "failed_activities", "find_chaos", "run_experiment", "settings_env"]

_FILES = ("journal.json", "chaostoolkit.log", "chaos-run.out", "activities.jsonl", "spool.jsonl")


@dataclass(frozen=True)
class CtkRun:
    """One ``chaos run``: CTK's journal and what kubedrill makes of it."""

    experiment: Path
    title: str
    # CTK's journal status (completed, failed, aborted, interrupted), "timeout" or "error"
    # (no readable journal)
    status: str
    deviated: bool
    failed: tuple[str, ...]  # "name (type): error" of every activity that did not succeed
    returncode: int | None
    timed_out: bool
    duration_s: float
    journal_path: Path
    activities_path: Path  # the kubedrill control's activity journal
    log_path: Path  # chaos's stdout and stderr
    journal: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return (
            self.returncode == 0
            and self.status == "completed"
            and not self.deviated
            and not self.failed
            and not self.timed_out
        )

    @property
    def reason(self) -> str:
        head = f"chaos toolkit experiment {self.title or self.experiment.name!r}"
        if self.timed_out:
            return f"{head}: timed out after {self.duration_s:.0f} s (stopped; see {self.log_path})"
        if self.status == "error":
            return f"{head}: chaos exited {self.returncode} without a journal: {self._tail()}"
        bits = [f"status {self.status}", f"chaos exit code {self.returncode}"]
        if self.deviated:
            bits.append("the steady state deviated after the method")
        if self.failed:
            bits.append("failed: " + "; ".join(self.failed))
        return f"{head}: {', '.join(bits)}"

    def _tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return truncate(" | ".join(lines[-6:]), 600)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "journal"}
        out.update({"ok": self.ok, "reason": self.reason})
        plain: dict[str, Any] = json.loads(json.dumps(out, default=str))
        return plain


def settings_env(settings: Settings) -> dict[str, str]:
    """``KUBEDRILL_*`` variables (sections target, cluster, chaos) and ``KUBECONFIG`` that
    make ``load_settings`` in the child give the same values; secrets are never included."""
    env: dict[str, str] = {}
    for section in ("target", "cluster", "chaos"):
        obj = getattr(settings, section)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None or f.metadata.get("secret"):
                continue
            if isinstance(value, tuple):
                text = ",".join(str(v) for v in value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            env[f"{ENV_PREFIX}{section}_{f.name}".upper()] = text
    if settings.cluster.kubeconfig is not None:
        env["KUBECONFIG"] = str(settings.cluster.kubeconfig)
    return env


def find_chaos() -> Path:
    """The ``chaos`` command next to this Python, else on ``PATH``."""
    here = Path(sys.executable).parent / "chaos"
    if here.is_file():
        return here
    found = shutil.which("chaos")
    if found is None:
        raise PreconditionUnmet(
            "the Chaos Toolkit command `chaos` is not installed",
            "pip install chaostoolkit chaostoolkit-lib (in kubedrill's environment)",
        )
    return Path(found)


def _runs(state: object) -> list[Mapping[str, Any]]:
    if isinstance(state, Mapping):
        return [p for p in state.get("probes") or [] if isinstance(p, Mapping)]
    return []


def failed_activities(journal: Mapping[str, Any]) -> tuple[str, ...]:
    """Every activity of a CTK journal whose status is not ``succeeded``: the method, the
    rollbacks and the steady-state probes (before, after, during)."""
    steady = journal.get("steady_states") or {}
    runs: list[Mapping[str, Any]] = []
    runs += _runs(steady.get("before"))
    runs += [r for r in journal.get("run") or [] if isinstance(r, Mapping)]
    for state in steady.get("during") or []:
        runs += _runs(state)
    runs += _runs(steady.get("after"))
    runs += [r for r in journal.get("rollbacks") or [] if isinstance(r, Mapping)]
    out = []
    for r in runs:
        if r.get("status") == "succeeded":
            continue
        act = r.get("activity") or {}
        exc: object = r.get("exception")
        if isinstance(exc, list) and exc:
            exc = exc[-1]
        last = unwrap_error(str(exc or r.get("status") or "no status"))
        out.append(f"{act.get('name')} ({act.get('type')}): {truncate(last, 300)}")
    return tuple(out)


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to the run's process group (chaoslib interrupts, our rollbacks run), then
    SIGKILL after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 30.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)


@contextlib.contextmanager
def _started(
    cmd: Sequence[str], workdir: Path, env: Mapping[str, str], out: Path, grace_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    with out.open("wb") as log:
        proc = subprocess.Popen(
            list(cmd),
            cwd=workdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a stop reaches what it started
        )
        try:
            yield proc
        finally:
            _stop(proc, grace_s)


def run_experiment(
    path: Path,
    settings_env: Mapping[str, str] | None,
    timeline: Timeline | None,
    workdir: Path,
    *,
    timeout_s: float = 900.0,
    grace_s: float = 120.0,
    var: Mapping[str, str] | None = None,
    chaos: Path | None = None,
) -> CtkRun:
    """Run the experiment at ``path`` with ``chaos run`` (see the module doc); its files go
    to ``workdir`` (created; earlier ones removed). ``var`` are ``--var key=value``
    overrides of the experiment's configuration. Raises ConfigError on bad input and
    PreconditionUnmet when ``chaos`` is missing; a failed experiment is a CtkRun whose
    ``ok`` is false, never an exception."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            "run_experiment", "path", "an existing Chaos Toolkit experiment file", str(path)
        )
    if not timeout_s > 0:
        raise ConfigError("run_experiment", "timeout_s", "a number of seconds > 0", timeout_s)
    for key in var or {}:
        if not key or "=" in key:
            raise ConfigError("run_experiment", "var", "configuration keys without '='", key)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        (workdir / name).unlink(missing_ok=True)
    journal_path, activities = workdir / "journal.json", workdir / "activities.jsonl"
    log_path = workdir / "chaos-run.out"
    timeline = timeline if timeline is not None else Timeline()
    spool = timeline.spool(workdir / "spool.jsonl")
    env = {**os.environ, **(settings_env or {})}
    env.update({SPOOL_ENV: str(spool), ACTIVITIES_ENV: str(activities)})
    cmd = [
        str(chaos or find_chaos()),
        "--no-version-check",  # no network
        "--log-file",
        str(workdir / "chaostoolkit.log"),
        "run",
        "--journal-path",
        str(journal_path),
        "--rollback-strategy",
        "always",
        *(f"--var={k}={v}" for k, v in (var or {}).items()),
        str(path.resolve()),
    ]
    t0 = time.monotonic()
    timed_out = False
    try:
        with _started(cmd, workdir, env, log_path, grace_s) as proc:
            while True:
                try:
                    proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    timeline.ingest()
                if time.monotonic() - t0 > timeout_s:
                    timed_out = True
                    break
    finally:
        timeline.ingest()
    run = _result(path, proc.returncode, timed_out, time.monotonic() - t0, workdir)
    timeline.record(Note(run.reason, "info" if run.ok else "error"), "chaostoolkit")
    return run


def _result(path: Path, rc: int | None, timed_out: bool, took: float, workdir: Path) -> CtkRun:
    journal_path = workdir / "journal.json"
    journal: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(journal_path.read_text())
        journal = loaded if isinstance(loaded, dict) else {}
    status = str(journal.get("status") or ("timeout" if timed_out else "error"))
    title = str((journal.get("experiment") or {}).get("title") or "")
    return CtkRun(
        experiment=path,
        title=title,
        status=status,
        deviated=bool(journal.get("deviated")),
        failed=failed_activities(journal),
        returncode=rc,
        timed_out=timed_out,
        duration_s=round(took, 3),
        journal_path=journal_path,
        activities_path=workdir / "activities.jsonl",
        log_path=workdir / "chaos-run.out",
        journal=journal,
    )
