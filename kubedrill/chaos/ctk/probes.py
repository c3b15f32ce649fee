"""Chaos Toolkit probes: read-only questions about the cluster, for steady-state hypotheses.

    {"type": "probe", "name": "web-back-to-desired", "tolerance": true,
     "provider": {"type": "python", "module": "kubedrill.chaos.ctk.probes",
                  "func": "ready_replicas",
                  "arguments": {"deployment": "web", "within_s": 60}}}

Each returns ``true`` or ``false`` (use ``"tolerance": true``) and logs why when it is
false. ``within_s`` polls until the answer is true or the time is up, so the hypothesis
after the method can claim a recovery time instead of racing the controllers. A probe
never writes; it reads through kubedrill's kube adapter (the cluster from the settings, as
for the actions). A target that does not exist, or names that match no node, make the
probe fail (``ActivityFailed``): a question about nothing is not a steady state.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from chaoslib.exceptions import ActivityFailed

from kubedrill.chaos.ctk import session as s
from kubedrill.chaos.undo import find_leftovers
from kubedrill.core.errors import ConfigError, KubedrillError, truncate
from kubedrill.core.settings import Settings

__all__ = ["no_leftovers", "nodes_schedulable", "ready_replicas"]

LOG = logging.getLogger("chaostoolkit")
Configuration = Mapping[str, Any] | None
Secrets = Mapping[str, Any] | None
_EVERY_S = 0.5


def _ask(
    func: str,
    configuration: Configuration,
    within: object,
    question: Callable[[Any, Settings], tuple[bool, str]],
) -> bool:
    """Ask ``question(adapter, settings) -> (answer, why)`` until true or ``within``
    seconds passed; ActivityFailed on bad input or a failed read."""
    try:
        within_s = s.duration(func, "within_s", within) or 0.0
        settings = s.settings_from(configuration)
        adapter = s.make_adapter(settings)
    except KubedrillError as e:
        raise ActivityFailed(f"{func}: {truncate(str(e), 600)}") from None
    deadline = time.monotonic() + within_s
    try:
        while True:
            try:
                ok, why = question(adapter, settings)
            except KubedrillError as e:
                raise ActivityFailed(f"{func}: {truncate(str(e), 600)}") from None
            if ok or time.monotonic() >= deadline:
                (LOG.info if ok else LOG.warning)(f"{func}: {why}")
                return ok
            time.sleep(_EVERY_S)
    finally:
        s.close_adapter(adapter)


def no_leftovers(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when no node, Job or node Lease in the cluster carries a chaos marker (read from
    the API, not from a journal)."""

    def question(adapter: Any, _settings: Settings) -> tuple[bool, str]:
        left = find_leftovers(adapter)
        if not left:
            return True, "no chaos marker left in the cluster"
        return False, "chaos markers left: " + "; ".join(x.describe() for x in left)

    return _ask("no_leftovers", configuration, 0, question)


def nodes_schedulable(
    names: list[str] | str | None = None,
    within_s: float | str = 0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """True when every node matching ``names`` (names or globs, a list or one
    comma-separated string; default: the nodes chaos may touch, ``chaos.nodes``, or every
    node when that is empty) is schedulable (not cordoned)."""
    f = "nodes_schedulable"
    try:
        given = s.names(f, "names", names)
    except ConfigError as e:
        raise ActivityFailed(str(e)) from None

    def question(adapter: Any, settings: Settings) -> tuple[bool, str]:
        globs = given or settings.chaos.nodes or ("*",)
        nodes, _ = adapter.list("Node", None)
        picked = [
            n
            for n in nodes
            if any(fnmatch.fnmatchcase(str(n["metadata"]["name"]), g) for g in globs)
        ]
        if not picked:
            raise ActivityFailed(f"{f}: names {list(globs)} match no node")
        cordoned = sorted(
            str(n["metadata"]["name"]) for n in picked if (n.get("spec") or {}).get("unschedulable")
        )
        if cordoned:
            return False, f"cordoned: {', '.join(cordoned)} (of {len(picked)} node(s))"
        return True, f"{len(picked)} node(s) schedulable"

    return _ask(f, configuration, within_s, question)


def ready_replicas(
    deployment: str,
    namespace: str | None = None,
    at_least: int | str | None = None,
    within_s: float | str = 0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """True when Deployment ``deployment`` in ``namespace`` (default: the target's) has at
    least ``at_least`` ready replicas (default: all it desires, ``spec.replicas``)."""
    f = "ready_replicas"
    try:
        name = s.text(f, "deployment", deployment)
        if name is None:
            raise ConfigError(f, "deployment", "a Deployment name", deployment)
        ns_given = s.text(f, "namespace", namespace)
        want = s.integer(f, "at_least", at_least, minimum=0)
    except ConfigError as e:
        raise ActivityFailed(str(e)) from None

    def question(adapter: Any, settings: Settings) -> tuple[bool, str]:
        ns = ns_given or settings.target.namespace
        obj = adapter.get("Deployment", ns, name)
        if obj is None:
            raise ActivityFailed(f"{f}: Deployment {ns}/{name} does not exist")
        desired = int((obj.get("spec") or {}).get("replicas", 1))
        ready = int((obj.get("status") or {}).get("readyReplicas") or 0)
        need = desired if want is None else want
        what = f"Deployment {ns}/{name}: {ready} ready of {desired} desired (need {need})"
        return ready >= need, what

    return _ask(f, configuration, within_s, question)
