"""Chaos Toolkit actions: kubedrill's chaos, usable in experiment files.

    {"type": "action", "name": "drain-the-node-of-web",
     "provider": {"type": "python", "module": "kubedrill.chaos.ctk.actions",
                  "func": "node_drain",
                  "arguments": {"pods_of": "app=web", "deadline_s": 60, "hold_s": 5}}}

Each action is self-contained: it builds a kubedrill chaos session from the settings
(``drill.yaml``, ``KUBEDRILL_*``, configuration ``kubedrill_*``: see
:mod:`kubedrill.chaos.ctk.session`), undoes what dead runs left, plans (refusing what the
allow-list and the caps do not allow: nothing is written then), journals, injects, holds for
``hold_s`` and **always rolls the fault back before it returns**, also when the hold is cut
short by an exception, Ctrl-C or SIGTERM. It returns what it did as plain data (the plan's
targets and steps, the result, ``rollback_s``, every marker), which lands in the Chaos
Toolkit journal. A refusal, a bad argument, an action that could not do its job or a
rollback that failed raise :class:`chaoslib.exceptions.ActivityFailed` with the reason.

``dry_run: true`` prints the plan and writes nothing (the allow-list is checked all the
same). The arguments are those of the kubedrill actions (:mod:`kubedrill.chaos.pod_kill`,
:mod:`~kubedrill.chaos.node_drain`, :mod:`~kubedrill.chaos.gpu_saturation`,
:mod:`~kubedrill.chaos.node_failure`); strings are accepted for numbers, and an empty
string counts as not given, so ``${...}`` substitutions of environment values work.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chaoslib.exceptions import ActivityFailed

from kubedrill.chaos.ctk import session as s
from kubedrill.chaos.engine import Action, Fault
from kubedrill.chaos.gpu_saturation import GpuSaturation
from kubedrill.chaos.node_drain import NodeDrain
from kubedrill.chaos.node_failure import NodeFailure
from kubedrill.chaos.pod_kill import PodKill
from kubedrill.chaos.undo import find_leftovers
from kubedrill.core.errors import ConfigError, KubedrillError, truncate
from kubedrill.core.settings import Settings
from kubedrill.timeline import Timeline

__all__ = ["cleanup", "gpu_saturation", "node_drain", "node_failure", "pod_kill"]

LOG = logging.getLogger("chaostoolkit")
Configuration = Mapping[str, Any] | None
Secrets = Mapping[str, Any] | None


def _jsonable(value: object) -> Any:
    return json.loads(json.dumps(value, default=str))


def _said(func: str, e: BaseException) -> str:
    """The error's message, prefixed with the function unless it names it already."""
    msg = truncate(str(e), 600)
    return msg if msg.startswith(f"{func}:") else f"{func}: {msg}"


def _settings(func: str, configuration: Configuration) -> Settings:
    try:
        return s.settings_from(configuration)
    except ConfigError as e:
        raise ActivityFailed(f"{func}: {e}") from None


def _report(fault: Fault, timeline: Timeline, token: str, reconciled: list[Any]) -> dict[str, Any]:
    plan = fault.plan
    out: dict[str, Any] = _jsonable(
        {
            "action": fault.action.name,
            "dry_run": fault.dry_run,
            "targets": list(plan.targets) if plan else [],
            "steps": list(plan.steps) if plan else [],
            "result": fault.result,
            "rollback_s": fault.result.get("rollback_s"),
            "rollback_errors": fault.rollback_errors,
            "owner": token,
            "reconciled": [dataclasses.asdict(r) for r in reconciled],
            "markers": s.marker_dicts(timeline),
        }
    )
    return out


Build = Callable[[], tuple[Action, float, bool]]  # the action, its hold, dry run


def run_fault(
    func: str,
    build: Build,
    configuration: Configuration,
    check: Callable[[Fault], str | None] | None = None,
) -> dict[str, Any]:
    """Check the arguments (``build``), plan, inject, hold, roll back; the report, or
    ActivityFailed."""
    try:
        action, hold_s, dry_run = build()
    except ConfigError as e:
        raise ActivityFailed(str(e)) from None
    settings = _settings(func, configuration)
    timeline = s.timeline_from_env()
    try:
        try:
            chaos = s.open_session(settings, timeline, LOG.info)
        except KubedrillError as e:
            raise ActivityFailed(_said(func, e)) from None
        try:
            reconciled = [] if dry_run else chaos.reconcile()
            with chaos.fault(action, dry_run=dry_run) as fault:
                if hold_s and not dry_run:
                    LOG.info(f"{func}: holding the fault for {hold_s:g} s")
                    fault.hold(hold_s)
        except KubedrillError as e:  # refused (nothing written) or failed (rolled back)
            raise ActivityFailed(_said(func, e)) from None
        finally:
            chaos.close()
            s.close_adapter(chaos.adapter)
        out = _report(fault, timeline, chaos.owner.token, reconciled)
    finally:
        s.close_timeline(timeline)
    if fault.rollback_errors:
        raise ActivityFailed(f"{func}: rollback failed: {'; '.join(fault.rollback_errors)}")
    problem = check(fault) if check else None
    if problem:
        raise ActivityFailed(f"{func}: {problem} (rolled back)")
    LOG.info(f"{func}: done (rollback took {out['rollback_s']} s)")
    return out


def pod_kill(
    selector: str,
    namespace: str | None = None,
    count: int | str | None = None,
    percent: float | str | None = None,
    grace_s: int | str | None = 0,
    mode: str = "all",
    interval_s: float | str = 5.0,
    crash: bool | str = False,
    seed: int | str | None = None,
    dry_run: bool | str = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Kill ``count`` (default 1) or ``percent`` of the Running pods of ``selector`` in
    ``namespace`` (default: the target's), all at once or ``mode: rolling`` one every
    ``interval_s``; ``grace_s`` 0 is a crash, null the pod's own grace period;
    ``crash: true`` kills the container's process and keeps the pod (the sandbox only).
    Nothing to roll back: the controller replaces the pods (the kill is journaled)."""
    f = "pod_kill"

    def build() -> tuple[Action, float, bool]:
        if mode not in ("all", "rolling"):
            raise ConfigError(f, "mode", "'all' or 'rolling'", mode)
        n = s.integer(f, "count", count, minimum=1)
        pct = s.number(f, "percent", percent)
        action = PodKill(
            selector=_required(f, "selector", selector),
            namespace=s.text(f, "namespace", namespace),
            count=1 if n is None and pct is None else n,
            percent=pct,
            grace_s=s.integer(f, "grace_s", grace_s, minimum=0),
            mode=mode,  # type: ignore[arg-type]
            interval_s=s.duration(f, "interval_s", interval_s) or 0.0,
            crash=s.flag(f, "crash", crash),
            seed=s.integer(f, "seed", seed),
        )
        return action, 0.0, s.flag(f, "dry_run", dry_run)

    return run_fault(f, build, configuration)


def node_drain(
    node: str | None = None,
    pods_of: str | None = None,
    namespace: str | None = None,
    deadline_s: float | str = 120.0,
    hold_s: float | str = 0.0,
    grace_s: int | str | None = None,
    force: bool | str = False,
    require_drained: bool | str = False,
    dry_run: bool | str = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Cordon ``node`` (or the node that runs most pods of ``pods_of``: give one), evict
    its pods through the Eviction API (429s from PDBs retried until ``deadline_s``), hold
    ``hold_s``, uncordon. A drain the PDBs block past the deadline is reported
    (``result.blocked`` names the pods and their PDBs); it fails the activity only with
    ``require_drained: true``."""
    f = "node_drain"
    need: dict[str, bool] = {}

    def build() -> tuple[Action, float, bool]:
        need["drained"] = s.flag(f, "require_drained", require_drained)
        hold = s.duration(f, "hold_s", hold_s) or 0.0
        deadline = s.duration(f, "deadline_s", deadline_s)
        action = NodeDrain(
            node=s.text(f, "node", node),
            pods_of=s.text(f, "pods_of", pods_of),
            namespace=s.text(f, "namespace", namespace),
            deadline_s=120.0 if deadline is None else deadline,
            hold_s=hold,
            grace_s=s.integer(f, "grace_s", grace_s, minimum=0),
            force=s.flag(f, "force", force),
        )
        return action, hold, s.flag(f, "dry_run", dry_run)

    def drained(fault: Fault) -> str | None:
        if not need.get("drained"):
            return None
        blocked = fault.result.get("blocked") or {}
        return f"not drained, blocked by {', '.join(blocked)}" if blocked else None

    return run_fault(f, build, configuration, check=drained)


def _level(func: str, value: object) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        return _required_number(func, "level", value.strip()[:-1]) / 100
    return _required_number(func, "level", value)


def gpu_saturation(
    level: float | str,
    duration_s: float | str,
    node: str | None = None,
    pods_of: str | None = None,
    namespace: str | None = None,
    gpus: int | str = 1,
    image: str | None = None,
    margin_s: float | str = 60.0,
    start_timeout_s: float | str = 60.0,
    hold_s: float | str | None = None,
    dry_run: bool | str = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Burn the GPUs of ``pods_of`` (or of ``node``: give one) at ``level`` (0.5 or
    "50%") for ``duration_s`` with a burner Job pinned to the node; held ``hold_s``
    (default: the duration), then the Job is deleted and its pod waited gone."""
    f = "gpu_saturation"

    def build() -> tuple[Action, float, bool]:
        dur = s.duration(f, "duration_s", duration_s)
        if dur is None:
            raise ConfigError(f, "duration_s", "a duration such as 30s", duration_s)
        held = s.duration(f, "hold_s", hold_s)
        extra = {"image": image} if s.text(f, "image", image) else {}
        action = GpuSaturation(
            level=_level(f, level),
            duration_s=dur,
            node=s.text(f, "node", node),
            pods_of=s.text(f, "pods_of", pods_of),
            namespace=s.text(f, "namespace", namespace),
            gpus=s.integer(f, "gpus", gpus, minimum=1) or 1,
            margin_s=s.duration(f, "margin_s", margin_s) or 60.0,
            start_timeout_s=s.duration(f, "start_timeout_s", start_timeout_s) or 60.0,
            **extra,  # type: ignore[arg-type]
        )
        return action, dur if held is None else held, s.flag(f, "dry_run", dry_run)

    return run_fault(f, build, configuration)


def node_failure(
    node: str,
    duration_s: float | str = 60.0,
    hold_s: float | str | None = None,
    dry_run: bool | str = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Stop ``node``'s heartbeat (kwok nodes: its Lease is taken; elsewhere the configured
    ``chaos.node_failure_hook``) for ``duration_s``, held ``hold_s`` (default: the
    duration), then restored and waited Ready."""
    f = "node_failure"

    def build() -> tuple[Action, float, bool]:
        dur = s.duration(f, "duration_s", duration_s)
        dur = 60.0 if dur is None else dur
        held = s.duration(f, "hold_s", hold_s)
        action = NodeFailure(node=_required(f, "node", node), duration_s=dur)
        return action, dur if held is None else held, s.flag(f, "dry_run", dry_run)

    return run_fault(f, build, configuration)


def cleanup(
    force: bool | str = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Undo leftovers (a rollback for every experiment): open journal intents and marked
    cordons, burner Jobs and node Leases whose runner is gone or whose expiry passed, and
    everything this process left; ``force: true`` also those of runs that look alive.
    Fails the activity if an undo fails; ``remaining`` lists markers left alone."""
    f = "cleanup"
    forced = s.flag(f, "force", force)
    settings = _settings(f, configuration)
    timeline = s.timeline_from_env()
    try:
        try:
            chaos = s.open_session(settings, timeline, LOG.info, check_context=False)
            try:
                done = [*chaos.reconcile(force=forced), *s.undo_own(chaos)]
                remaining = [left.describe() for left in find_leftovers(chaos.adapter)]
            finally:
                s.close_adapter(chaos.adapter)
        except KubedrillError as e:
            raise ActivityFailed(_said(f, e)) from None
        markers = s.marker_dicts(timeline)
    finally:
        s.close_timeline(timeline)
    failed = [f"{r.target}: {r.outcome}" for r in done if not r.ok]
    if failed:
        raise ActivityFailed(f"{f}: could not undo {'; '.join(failed)}")
    for r in done:
        LOG.info(f"{f}: {r.what} {r.target}: {r.outcome}")
    return {
        "undone": [{"what": r.what, "target": r.target, "outcome": r.outcome} for r in done],
        "remaining": remaining,
        "markers": markers,
    }


def _required(func: str, name: str, value: object) -> str:
    out = s.text(func, name, value)
    if out is None:
        raise ConfigError(func, name, "a non-empty string", value)
    return out


def _required_number(func: str, name: str, value: object) -> float:
    out = s.number(func, name, value)
    if out is None:
        raise ConfigError(func, name, "a number", value)
    return out
