"""Evict a pod through the Eviction API and put the answer on the timeline: the one way
kubedrill evicts (a drain uses it), so disruption checks can count what a PDB refused
and tell an eviction from a plain delete."""

from __future__ import annotations

from typing import Literal, Protocol

from kubedrill.adapters.kube import ApiFailed, EvictionRefused
from kubedrill.core.errors import truncate
from kubedrill.timeline import Eviction, Timeline

__all__ = ["Evicts", "evict"]


class Evicts(Protocol):
    def evict(self, namespace: str, pod: str, grace_period_s: int | None = None) -> None: ...


def evict(
    adapter: Evicts,
    timeline: Timeline,
    namespace: str,
    pod: str,
    *,
    by: str = "",
    grace_period_s: int | None = None,
) -> Literal["evicted", "refused", "failed"]:
    """``evicted``, ``refused`` (429: a PDB held; the server's reason names it, e.g. "The
    disruption budget web needs 2 healthy pods and has 2 currently") or ``failed``."""
    outcome: Literal["evicted", "refused", "failed"]
    try:
        adapter.evict(namespace, pod, grace_period_s)
        outcome, detail = "evicted", ""
    except EvictionRefused as e:
        outcome, detail = "refused", _cause(e)
    except ApiFailed as e:
        if e.status == 404:
            outcome, detail = "failed", "the pod is gone already"
        else:
            outcome, detail = "failed", truncate(str(e), 300)
    timeline.record(Eviction(namespace, pod, outcome, detail, by), source="evict")
    return outcome


def _cause(e: ApiFailed) -> str:
    """The budget's own words from a 429 Status (its causes), else the message."""
    import json

    try:
        doc = json.loads(e.body)
        causes = [c.get("message") for c in (doc.get("details") or {}).get("causes") or []]
        text = "; ".join(str(c) for c in causes if c) or str(doc.get("message") or e)
    except (ValueError, AttributeError):
        text = str(e)
    return truncate(text, 300)
