"""A Chaos Toolkit control: reconcile first, journal every activity, always roll back.

    "controls": [{"name": "kubedrill",
                  "provider": {"type": "python", "module": "kubedrill.chaos.ctk.control",
                               "arguments": {"journal_path": "activities.jsonl"}}}]

* **Before the experiment** (when chaoslib configures the control) it undoes what dead runs
  left: open intents in kubedrill's chaos journal and cluster markers whose runner is gone
  or whose expiry passed (``reconcile: false`` turns that off).
* **Every activity** (probes, actions, rollbacks, background ones too) is one JSON line in
  ``journal_path`` (default ``$KUBEDRILL_CTK_ACTIVITIES``, else
  ``kubedrill-activities.jsonl`` in the working directory), appended and fsynced when it
  starts (``activity-started``) and when it ends (``activity``: name, type, provider,
  status, start, end, duration, error). The experiment's start and end are lines too.
* **After the experiment**, whatever its status — completed, failed, deviated, interrupted
  by Ctrl-C or SIGTERM, rollbacks skipped by CTK's rollback strategy or by SIGUSR2 — it
  rolls back everything this process left: journal intents and cluster markers whose
  holder is this process. It runs from chaoslib's ``finally`` (the ``finish`` event),
  with SIGINT and SIGTERM held off until it is done. The kubedrill actions roll back
  before they return, so normally there is nothing left; this catches what they could not.
* With ``$KUBEDRILL_TIMELINE_SPOOL`` set, its notes and markers go to a parent kubedrill
  run's timeline.

Its state lives in one handler object per run, registered on chaoslib's event registry
(``configure_control(event_registry=...)``, chaostoolkit-lib 1.19 and later), not in module
globals. A control whose ``configure_control`` raises is silently dropped by chaoslib, so
this one never raises there: it logs the problem and journals it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from chaoslib import substitute
from chaoslib.run import RunEventHandler

from kubedrill.chaos.ctk import session as s
from kubedrill.core.errors import KubedrillError, truncate
from kubedrill.timeline import Note, Timeline

__all__ = ["ActivityJournal", "KubedrillControl", "configure_control"]

LOG = logging.getLogger("chaostoolkit")
DEFAULT_ACTIVITIES = "kubedrill-activities.jsonl"
Level = Literal["info", "warning", "error"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ActivityJournal:
    """JSON lines appended with one ``write`` each and fsynced (the folder too, when the
    file is new), safe from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if new:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps({"t": _now(), **record}, default=str, separators=(",", ":")) + "\n"
        with self._lock:
            if self._fd < 0:
                return
            os.write(self._fd, line.encode())
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _provider(activity: Mapping[str, Any]) -> str:
    p = activity.get("provider") or {}
    if p.get("type") == "python":
        return f"{p.get('module')}.{p.get('func')}"
    return str(p.get("type") or activity.get("ref") or "?")


def _error(run: Mapping[str, Any]) -> str | None:
    exc = run.get("exception")
    if not exc:
        return None
    lines = exc if isinstance(exc, list) else [str(exc)]
    return truncate(s.unwrap_error(str(lines[-1])), 600)


def _summary(output: object) -> object:
    if output is None or isinstance(output, bool | int | float | str):
        return output
    if isinstance(output, Mapping):
        keys = ("action", "targets", "rollback_s", "rollback_errors", "undone", "remaining")
        return {k: output[k] for k in keys if k in output}
    return truncate(repr(output), 200)


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """SIGINT and SIGTERM are noted, not acted on, while the final rollback runs."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in old:
        signal.signal(sig, lambda signum, _frame: got.append(signum))
    try:
        yield got
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


class KubedrillControl(RunEventHandler):  # type: ignore[misc]
    """One experiment run's control state (see the module doc)."""

    def __init__(
        self,
        journal_path: Path,
        configuration: Mapping[str, Any] | None,
        reconcile: bool = True,
        timeline: Timeline | None = None,
    ) -> None:
        self.configuration = dict(configuration or {})
        self.reconcile = reconcile
        self.timeline = timeline if timeline is not None else s.timeline_from_env()
        self.holder = s.holder_of_this_process()
        self.finished = False
        self.journal: ActivityJournal | None = None
        try:
            self.journal = ActivityJournal(journal_path)
        except OSError as e:
            self._problem(f"cannot write the activity journal {journal_path}: {e}")

    # -- recording --------------------------------------------------------------------
    def _write(self, record: Mapping[str, Any]) -> None:
        if self.journal is None:
            return
        try:
            self.journal.write(record)
        except OSError as e:
            LOG.error(f"kubedrill control: activity journal {self.journal.path}: {e}")

    def _note(self, text: str, level: Level = "info") -> None:
        self.timeline.record(Note(text, level), "chaostoolkit")

    def _problem(self, text: str) -> None:
        LOG.error(f"kubedrill control: {text}")
        self._note(text, "error")
        self._write({"event": "problem", "detail": text})

    def _session_do(self, what: str, force: bool) -> list[dict[str, Any]]:
        """Reconcile (``force=False``: dead runs' leftovers) or undo this process's own."""
        try:
            settings = s.settings_from(self.configuration)
            chaos = s.open_session(settings, self.timeline, LOG.info, check_context=False)
            try:
                done = s.undo_own(chaos, (self.holder,)) if force else chaos.reconcile()
            finally:
                s.close_adapter(chaos.adapter)
        except KubedrillError as e:
            self._problem(f"{what} failed: {truncate(str(e), 600)}")
            return []
        out = [{"what": r.what, "target": r.target, "outcome": r.outcome, "ok": r.ok} for r in done]
        for r in done:
            (LOG.info if r.ok else LOG.error)(f"kubedrill control: {what}: {r.target}: {r.outcome}")
        return out

    # -- the run ----------------------------------------------------------------------
    def begin(self, experiment: Mapping[str, Any] | None) -> None:
        title = str((experiment or {}).get("title", ""))
        self._write({"event": "experiment-started", "title": title, "holder": self.holder})
        self._note(f"chaos toolkit experiment started: {title}")
        if self.reconcile:
            done = self._session_do("reconcile before the experiment", force=False)
            self._write({"event": "reconciled", "undone": done})

    def start_activity(self, activity: Mapping[str, Any]) -> None:
        self._write(
            {
                "event": "activity-started",
                "name": activity.get("name"),
                "type": activity.get("type"),
                "provider": _provider(activity),
            }
        )

    def activity_completed(self, activity: Mapping[str, Any], run: Mapping[str, Any]) -> None:
        status = str(run.get("status") or "interrupted")
        record = {
            "event": "activity",
            "name": activity.get("name"),
            "type": activity.get("type"),
            "provider": _provider(activity),
            "background": bool(activity.get("background")),
            "status": status,
            "start": run.get("start"),
            "end": run.get("end"),
            "duration": run.get("duration"),
            "error": _error(run),
            "output": _summary(run.get("output")),
        }
        self._write(record)
        level: Level = "info" if status == "succeeded" else "warning"
        why = f": {record['error']}" if record["error"] else ""
        self._note(f"ctk {activity.get('type')} {activity.get('name')}: {status}{why}", level)

    def interrupted(self, experiment: Mapping[str, Any], journal: Mapping[str, Any]) -> None:
        self._write({"event": "interrupted"})

    def signal_exit(self) -> None:
        self._write({"event": "signal"})

    def finish(self, journal: Mapping[str, Any] | None) -> None:
        """Roll back what this process left; runs once, from chaoslib's ``finally``."""
        if self.finished:
            return
        self.finished = True
        j = journal or {}
        with _signals_held() as got:
            done = self._session_do("rollback after the experiment", force=True)
            status = "deviated" if j.get("deviated") else str(j.get("status") or "unknown")
            self._write(
                {
                    "event": "experiment-finished",
                    "status": status,
                    "deviated": bool(j.get("deviated")),
                    "rolled_back": done,
                    "signals_held": got,
                }
            )
            self._note(
                f"chaos toolkit experiment ended: {status}; rolled back after it: {len(done)}",
                "info" if all(r["ok"] for r in done) else "error",
            )
        if self.journal is not None:
            self.journal.close()
        s.close_timeline(self.timeline)


def configure_control(
    journal_path: str | None = None,
    reconcile: bool | str = True,
    experiment: Mapping[str, Any] | None = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    event_registry: Any = None,
    **unknown: Any,
) -> None:
    """chaoslib's entry point: make this run's control and register it (never raises)."""
    try:
        raw = substitute(journal_path, configuration, secrets) if journal_path else None
        path = Path(str(raw or os.environ.get(s.ACTIVITIES_ENV) or DEFAULT_ACTIVITIES)).expanduser()
        control = KubedrillControl(
            path, configuration, s.flag("kubedrill control", "reconcile", reconcile)
        )
        if event_registry is None:
            control._problem(
                "chaoslib gave no event registry (chaostoolkit-lib too old?): activities are "
                "not journaled and nothing is rolled back after the experiment"
            )
            return
        event_registry.register(control)
        if unknown:
            control._problem(
                f"unknown control argument(s) {', '.join(sorted(unknown))}: expected "
                "journal_path, reconcile (ignored)"
            )
        control.begin(experiment)
    except Exception as e:  # noqa: BLE001 - chaoslib would drop the control without a word
        LOG.error(f"kubedrill control: not configured: {e}")
