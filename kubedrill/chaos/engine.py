"""The chaos engine: plan, journal, inject, always roll back.

An action (one module each: :mod:`~kubedrill.chaos.pod_kill`, :mod:`~.node_drain`,
:mod:`~.gpu_saturation`, :mod:`~.node_failure`) has one signature::

    class MyAction:
        name: ClassVar[str]
        def plan(self, ctx: ChaosContext) -> Plan        # reads only; refuses what is not allowed
        def inject(self, ctx: ChaosContext, plan: Plan) -> None
            # for every change: ctx.intend(target, undo, lasts_s) first, then the write
            # through ctx.guard, then ctx.injected(intent, detail)

:class:`Chaos` is a session on one cluster: it checks the context against the allow-list
when it is made, reconciles what earlier runs left (:meth:`Chaos.reconcile`), and makes
:class:`Fault` context managers. A fault prints its plan first, injects on ``__enter__``
and rolls back every journaled change on ``__exit__`` — after success, a failing check,
an exception, Ctrl-C, or SIGTERM (turned into ``SystemExit`` while a fault is active) —
and also when it outlives ``chaos.max_fault_s`` (a watchdog). A SIGKILL leaves the journal
and the server-side markers: the next session's :meth:`Chaos.reconcile`, ``kubedrill chaos
cleanup`` or the in-cluster janitor undo them. Every stage is a
:class:`~kubedrill.timeline.ChaosMarker` on the timeline.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, ClassVar, Protocol

from kubedrill.chaos.journal import Intent, Journal, Owner, process_alive
from kubedrill.chaos.safety import ChaosRefused, Guard, KubeWrites, Scope
from kubedrill.chaos.safety import check_context as _check_context
from kubedrill.chaos.undo import EXPIRES, HOLDER, OWNER, Leftover, find_leftovers, iso, undo
from kubedrill.core.errors import KubedrillError, truncate
from kubedrill.core.settings import ChaosSettings, Settings
from kubedrill.timeline import ChaosMarker, Note, Timeline

__all__ = ["Action", "Chaos", "ChaosContext", "Fault", "Plan", "Reconciled"]

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action will do, decided before anything is written."""

    action: str
    targets: tuple[str, ...]
    steps: tuple[str, ...]
    lasts_s: float = 0.0  # how long the fault is meant to last (the dead-man's base)
    data: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        head = f"chaos plan: {self.action} on {', '.join(self.targets)}"
        return "\n".join([head, *(f"  - {s}" for s in self.steps)])


class Action(Protocol):
    name: ClassVar[str]

    def plan(self, ctx: ChaosContext) -> Plan: ...
    def inject(self, ctx: ChaosContext, plan: Plan) -> None: ...


@dataclass
class ChaosContext:
    """What an action gets: the cluster (reads on ``adapter``, writes only through
    ``guard``), the limits, the journal, and where to record."""

    adapter: KubeWrites
    guard: Guard
    settings: ChaosSettings
    journal: Journal
    owner: Owner
    timeline: Timeline
    say: Say
    namespace: str  # the run's target namespace: where actions look by default
    fault: Fault | None = None

    def marks(self, action: str, lasts_s: float) -> dict[str, str]:
        """The server-side annotations of a change: owner token, expiry, action, holder."""
        return {
            OWNER: self.owner.token,
            EXPIRES: iso(self.expiry(lasts_s)),
            "chaos.kubedrill.io/action": action,
            HOLDER: f"{self.owner.host}/{self.owner.pid}/{self.owner.start}",
        }

    def expiry(self, lasts_s: float) -> float:
        return time.time() + lasts_s + self.settings.dead_man_s

    def intend(self, action: str, target: str, spec: Mapping[str, Any], lasts_s: float) -> Intent:
        """Journal (fsynced) the undo of the change about to be made; only then write."""
        intent = Intent(
            f"{self.owner.token}-{time.time_ns():x}",
            self.owner,
            action,
            target,
            dict(spec),
            self.expiry(lasts_s),
            cluster=str(getattr(self.adapter, "server", "") or ""),
        )
        self.journal.intend(intent)
        self.timeline.record(ChaosMarker(action, target, "journaled", str(spec["kind"])), "chaos")
        if self.fault is not None:
            self.fault.intents.append(intent)
        return intent

    def injected(self, intent: Intent, detail: str = "") -> None:
        self.timeline.record(ChaosMarker(intent.action, intent.target, "injected", detail), "chaos")

    def note(self, text: str, level: str = "info") -> None:
        self.timeline.record(Note(text, level), "chaos")  # type: ignore[arg-type]
        self.say(f"chaos: {text}")


@dataclass(frozen=True, slots=True)
class Reconciled:
    what: str  # "journal" or "cluster"
    target: str
    outcome: str
    ok: bool


class Fault:
    """One injected fault: ``with chaos.fault(action) as f: ...`` (see the module doc)."""

    def __init__(self, chaos: Chaos, action: Action, dry_run: bool = False) -> None:
        self.chaos = chaos
        self.action = action
        self.dry_run = dry_run
        self.plan: Plan | None = None
        self.intents: list[Intent] = []
        self.result: dict[str, Any] = {}
        self.rollback_errors: list[str] = []
        self._lock = threading.Lock()
        self._done = False
        self._watchdog: threading.Timer | None = None
        self._term = contextlib.ExitStack()  # SIGTERM → SystemExit while the fault lives

    def __enter__(self) -> Fault:
        ctx = self.chaos.context(self)
        try:
            self.plan = self.action.plan(ctx)
        except ChaosRefused as e:
            self.chaos.timeline.record(
                ChaosMarker(self.action.name, "-", "refused", truncate(str(e))), "chaos"
            )
            raise
        self.chaos.say(self.plan.text() + (" (dry run: nothing is done)" if self.dry_run else ""))
        if self.dry_run:
            return self
        self.chaos.active.append(self)
        limit = self.chaos.settings.max_fault_s
        self._watchdog = threading.Timer(limit, self._expired, args=(limit,))
        self._watchdog.daemon = True
        self._watchdog.start()
        self._term.enter_context(self.chaos.terminable())
        try:
            self.action.inject(ctx, self.plan)
        except BaseException:
            try:
                self.rollback()
            finally:
                self._term.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.dry_run:
            try:
                self.rollback()
            finally:
                self._term.close()

    def hold(self, seconds: float) -> None:
        """Keep the fault for ``seconds`` (SIGTERM is turned into SystemExit already)."""
        time.sleep(seconds)

    def _expired(self, limit: float) -> None:
        if not self._done:
            self.chaos.note(
                f"fault {self.action.name} outlived chaos.max_fault_s = {limit:g} s", "warning"
            )
            self.rollback()

    def rollback(self) -> None:
        """Undo every journaled change, newest first; idempotent. A failed undo is a
        ``failed`` marker (the scenario's rollback check FAILs) and stays open in the
        journal for ``kubedrill chaos cleanup``."""
        with self._lock:
            if self._done:
                return
            self._done = True
            if self._watchdog is not None:
                self._watchdog.cancel()
            t0 = time.monotonic()
            for intent in reversed(self.intents):
                self.chaos.undo_intent(intent, self.rollback_errors)
            self.result["rollback_s"] = round(time.monotonic() - t0, 3)
            with contextlib.suppress(ValueError):
                self.chaos.active.remove(self)


class Chaos:
    """A chaos session on one cluster (see the module doc)."""

    def __init__(
        self,
        adapter: Any,
        settings: Settings,
        timeline: Timeline | None = None,
        say: Say = print,
        owner: Owner | None = None,
        journal: Journal | None = None,
        check_context: bool = True,
    ) -> None:
        self.settings = settings.chaos
        if check_context:  # off only for cleanup/janitor: they touch only what chaos marked
            _check_context(
                self.settings, getattr(adapter, "context", None), getattr(adapter, "server", "")
            )
        self.adapter: KubeWrites = adapter
        self.namespace = settings.target.namespace
        self.scope = Scope.from_settings(self.settings, settings.target.namespace)
        self.guard = Guard(adapter, self.scope)
        self.timeline = timeline if timeline is not None else Timeline()
        self.say = say
        self.owner = owner or Owner.me(run=getattr(timeline, "run_id", ""))
        self.journal = journal or Journal(self.settings.journal)
        self.active: list[Fault] = []

    def context(self, fault: Fault | None = None) -> ChaosContext:
        return ChaosContext(
            self.adapter,
            self.guard,
            self.settings,
            self.journal,
            self.owner,
            self.timeline,
            self.say,
            self.namespace,
            fault,
        )

    def fault(self, action: Action, dry_run: bool = False) -> Fault:
        return Fault(self, action, dry_run)

    def run(self, action: Action, hold_s: float = 0.0) -> Fault:
        """Inject, hold, roll back; returns the finished fault."""
        with self.fault(action) as f:
            if hold_s:
                f.hold(hold_s)
        return f

    def note(self, text: str, level: str = "info") -> None:
        self.context().note(text, level)

    def _undo(self, spec: Mapping[str, Any], action: str, target: str) -> tuple[bool, str]:
        """Run one undo; a ``rolled_back`` or ``failed`` marker says how it went."""
        try:
            outcome = undo(
                self.adapter,
                spec,
                self.settings.node_failure_hook,
                self.settings.rollback_timeout_s,
            )
        except (KubedrillError, OSError) as e:
            msg = truncate(str(e))
            self.timeline.record(ChaosMarker(action, target, "failed", msg), "chaos")
            return False, msg
        self.timeline.record(ChaosMarker(action, target, "rolled_back", outcome), "chaos")
        return True, outcome

    def undo_intent(self, intent: Intent, errors: list[str] | None = None) -> bool:
        ok, outcome = self._undo(intent.undo, intent.action, intent.target)
        if not ok:
            msg = f"rollback of {intent.action} on {intent.target} failed: {outcome}"
            self.say(f"chaos: {msg} (left in the journal for `kubedrill chaos cleanup`)")
            if errors is not None:
                errors.append(msg)
            return False
        self.journal.done(intent.id, "rolled_back")
        return True

    def close(self) -> None:
        for f in list(self.active):
            f.rollback()

    # -- crash safety ------------------------------------------------------------------

    @contextlib.contextmanager
    def terminable(self) -> Iterator[None]:
        """From a fault's injection to its rollback, SIGTERM raises SystemExit(143) in the
        main thread, so the rollback in ``__exit__`` runs (a plain SIGTERM would end the
        process without it)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, on_term)
        try:
            yield
        finally:
            if previous in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)

    def reconcile(self, force: bool = False, dry_run: bool = False) -> list[Reconciled]:
        """Undo what earlier runs left: open journal intents whose owner is gone or that
        expired, then every marked change in the cluster whose owner process is gone (on
        this host) or whose expiry passed — or all of them with ``force``. Checked against
        the API, not the journal. Each one is a ``leftover`` then ``rolled_back`` marker."""
        out: list[Reconciled] = []
        mine = {f_intent.id for f in self.active for f_intent in f.intents}
        server = str(getattr(self.adapter, "server", "") or "")
        for intent in self.journal.orphans() if not force else self.journal.open_intents():
            if intent.id in mine or (intent.cluster and server and intent.cluster != server):
                continue  # ours now, or meant for another cluster (its marks are there)
            self.timeline.record(
                ChaosMarker(intent.action, intent.target, "leftover", "journal"), "chaos"
            )
            if dry_run:
                out.append(Reconciled("journal", intent.target, "would undo", True))
                continue
            ok = self.undo_intent(intent)
            out.append(Reconciled("journal", intent.target, "undone" if ok else "failed", ok))
        now = time.time()
        live_tokens = {self.owner.token}
        for left in find_leftovers(self.adapter):
            if left.token in live_tokens or not (force or _abandoned(left, now)):
                continue
            out.append(self.undo_leftover(left, dry_run))
        return out

    def undo_leftover(self, left: Leftover, dry_run: bool = False) -> Reconciled:
        """Undo one marked change found in the cluster (checked against the API)."""
        self.timeline.record(
            ChaosMarker(left.what, left.target, "leftover", left.describe()), "chaos"
        )
        if dry_run:
            return Reconciled("cluster", left.describe(), "would undo", True)
        ok, outcome = self._undo(left.undo, left.what, left.target)
        return Reconciled("cluster", left.describe(), outcome, ok)


def _abandoned(left: Leftover, now: float) -> bool:
    """Nobody will undo it: its expiry passed, or its holder process (on this host) is gone."""
    if left.expires is not None and left.expires <= now:
        return True
    host, pid, start = ([*left.holder.split("/"), "", ""])[:3]
    if host and pid.isdigit():
        return process_alive(host, int(pid), start) is False
    return False
