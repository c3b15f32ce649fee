"""Undo: what rolls a fault back, as data, and the server-side markers that let anyone find
what a dead runner left.

Every fault journals an undo before it writes (:mod:`kubedrill.chaos.journal`) and marks
what it changes in the cluster itself, so a runner that was SIGKILLed can be cleaned up
from its journal *or* from the API alone (another machine, the in-cluster janitor):

==================  ===========================================  ==========================
undo kind           the marker in the cluster                    what undoing does
==================  ===========================================  ==========================
``uncordon``        Node annotations ``chaos.kubedrill.io/owner``  uncordons, drops the marks
                    (the run token), ``…/expires`` (RFC 3339),
                    ``…/action``, ``…/holder`` (host/pid)
``delete_job``      Job label ``chaos.kubedrill.io/owner``,        deletes the Job and waits
                    annotation ``…/expires``,                      for its pods to go
                    ``activeDeadlineSeconds``
``release_lease``   node Lease ``holderIdentity``                  deletes the Lease: kwok
                    ``kubedrill-chaos.<token>``, annotations       takes it back and the node
                                                                   heartbeats again
``hook``            (the provider's)                               ``<hook> restore <node>``
``none``            —                                              nothing (a killed pod is
                                                                   replaced by its controller)
==================  ===========================================  ==========================

Every undo is idempotent and checks ownership against the API before it writes: an
object that no longer carries this run's token is left alone ("not ours any more").
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubedrill.chaos.safety import LEASE_NAMESPACE, KubeWrites
from kubedrill.core.errors import ActionFailed, truncate

__all__ = [
    "ACTION",
    "EXPIRES",
    "HOLDER",
    "LEASE_HOLDER_PREFIX",
    "OWNER",
    "Leftover",
    "find_leftovers",
    "iso",
    "parse_iso",
    "undo",
]

OWNER = "chaos.kubedrill.io/owner"
EXPIRES = "chaos.kubedrill.io/expires"
ACTION = "chaos.kubedrill.io/action"
HOLDER = "chaos.kubedrill.io/holder"
LEASE_HOLDER_PREFIX = "kubedrill-chaos."
MARKS = (OWNER, EXPIRES, ACTION, HOLDER)
_WAIT_S = 60.0  # the default of chaos.rollback_timeout_s


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _meta(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("metadata") or {})


def _wait(until: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _node_ready(adapter: KubeWrites, node: str) -> bool:
    obj = adapter.get("Node", None, node) or {}
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _uncordon(adapter: KubeWrites, spec: Mapping[str, Any], wait_s: float) -> str:
    node, token = str(spec["node"]), str(spec["token"])
    obj = adapter.get("Node", None, node)
    if obj is None:
        return f"node {node} is gone: nothing to uncordon"
    owner = (_meta(obj).get("annotations") or {}).get(OWNER)
    if owner != token:
        return f"node {node} is not ours any more (owner {owner!r}): left alone"
    adapter.patch(
        "Node",
        None,
        node,
        {"spec": {"unschedulable": None}, "metadata": {"annotations": dict.fromkeys(MARKS)}},
    )
    after = adapter.get("Node", None, node) or {}
    if (after.get("spec") or {}).get("unschedulable"):
        raise ActionFailed(f"node {node} is still unschedulable after the uncordon")
    return f"uncordoned {node}"


def _delete_job(adapter: KubeWrites, spec: Mapping[str, Any], wait_s: float) -> str:
    ns, name, token = str(spec["namespace"]), str(spec["name"]), str(spec["token"])
    job = adapter.get("Job", ns, name)
    if job is not None:
        owner = (_meta(job).get("labels") or {}).get(OWNER)
        if owner != token:
            return f"Job {ns}/{name} is not ours (owner {owner!r}): left alone"
        adapter.delete("Job", ns, name, uid=_meta(job).get("uid"), propagation="Foreground")
    # this Job's pods only: one run's burners share its token (a fault per node)
    selector = f"{OWNER}={token},job-name={name}"

    def gone() -> bool:
        pods, _ = adapter.list("Pod", ns, label_selector=selector)
        jobs = adapter.get("Job", ns, name)
        return not pods and jobs is None

    if not _wait(gone, wait_s):
        raise ActionFailed(f"Job {ns}/{name} or its pods still exist {wait_s:g} s after delete")
    return f"deleted Job {ns}/{name} and its pods" if job is not None else f"Job {ns}/{name} gone"


def _release_lease(adapter: KubeWrites, spec: Mapping[str, Any], wait_s: float) -> str:
    node, token = str(spec["node"]), str(spec["token"])
    lease = adapter.get("Lease", LEASE_NAMESPACE, node)
    holder = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
    if lease is not None and holder == LEASE_HOLDER_PREFIX + token:
        adapter.delete("Lease", LEASE_NAMESPACE, node, uid=_meta(lease).get("uid"))
    elif lease is not None and holder.startswith(LEASE_HOLDER_PREFIX):
        return f"the Lease of {node} is held by another run ({holder}): left alone"

    def heartbeating() -> bool:  # kwok holds a new Lease again, and the node is Ready
        now = adapter.get("Lease", LEASE_NAMESPACE, node)
        held = str(((now or {}).get("spec") or {}).get("holderIdentity") or "")
        return (
            bool(held) and not held.startswith(LEASE_HOLDER_PREFIX) and _node_ready(adapter, node)
        )

    if not _wait(heartbeating, wait_s):
        raise ActionFailed(
            f"node {node}: no heartbeat Lease or not Ready {wait_s:g} s after its Lease "
            "was released"
        )
    return f"released the Lease of {node}; it heartbeats again and is Ready"


def _hook(adapter: KubeWrites, spec: Mapping[str, Any], wait_s: float) -> str:
    cmd = [*shlex.split(str(spec["hook"])), "restore", str(spec["node"])]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(wait_s, 1), check=False)
    if p.returncode != 0:
        raise ActionFailed(f"{shlex.join(cmd)} exited {p.returncode}: {truncate(p.stderr)}")
    return f"{shlex.join(cmd)}: ok"


_UNDO: dict[str, Callable[[KubeWrites, Mapping[str, Any], float], str]] = {
    "uncordon": _uncordon,
    "delete_job": _delete_job,
    "release_lease": _release_lease,
    "hook": _hook,
    "none": lambda _a, spec, _w: str(spec.get("why") or "nothing to undo"),
}


def undo(
    adapter: KubeWrites,
    spec: Mapping[str, Any],
    allowed_hook: str | None = None,
    wait_s: float = _WAIT_S,
) -> str:
    """Undo one fault (idempotent); returns what was done. A ``hook`` undo runs only the
    hook configured now (``chaos.node_failure_hook``), never a command read from a file."""
    kind = str(spec.get("kind"))
    if kind not in _UNDO:
        raise ActionFailed(f"unknown undo kind {kind!r}")
    if kind == "hook" and spec.get("hook") != allowed_hook:
        raise ActionFailed(
            f"the journal asks to run node_failure hook {spec.get('hook')!r}, which is not "
            "chaos.node_failure_hook now: run it by hand"
        )
    return _UNDO[kind](adapter, spec, wait_s)


@dataclass(frozen=True, slots=True)
class Leftover:
    """A change in the cluster that carries a chaos marker."""

    what: str  # "cordon", "burner", "lease"
    target: str
    token: str
    holder: str
    expires: float | None
    undo: Mapping[str, Any]

    def describe(self) -> str:
        due = "no expiry" if self.expires is None else f"expires {iso(self.expires)}"
        return f"{self.what} {self.target} (owner {self.token}, {self.holder or '?'}, {due})"


def find_leftovers(adapter: KubeWrites) -> list[Leftover]:
    """Everything in the cluster chaos marked, read from the API (not from a journal)."""
    out: list[Leftover] = []
    nodes, _ = adapter.list("Node", None)
    for n in nodes:
        ann = _meta(n).get("annotations") or {}
        if OWNER in ann:
            name, token = str(_meta(n)["name"]), str(ann[OWNER])
            out.append(
                Leftover(
                    "cordon",
                    name,
                    token,
                    str(ann.get(HOLDER, "")),
                    parse_iso(ann.get(EXPIRES)),
                    {"kind": "uncordon", "node": name, "token": token},
                )
            )
    jobs, _ = adapter.list("Job", None, label_selector=OWNER)
    for j in jobs:
        m = _meta(j)
        token = str((m.get("labels") or {})[OWNER])
        ann = m.get("annotations") or {}
        undo_spec = {"kind": "delete_job", "namespace": m["namespace"], "name": m["name"]}
        out.append(
            Leftover(
                "burner",
                f"{m['namespace']}/{m['name']}",
                token,
                str(ann.get(HOLDER, "")),
                parse_iso(ann.get(EXPIRES)),
                {**undo_spec, "token": token},
            )
        )
    leases, _ = adapter.list("Lease", LEASE_NAMESPACE)
    for lease in leases:
        holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
        if holder.startswith(LEASE_HOLDER_PREFIX):
            m = _meta(lease)
            token = holder.removeprefix(LEASE_HOLDER_PREFIX)
            ann = m.get("annotations") or {}
            out.append(
                Leftover(
                    "lease",
                    str(m["name"]),
                    token,
                    str(ann.get(HOLDER, "")),
                    parse_iso(ann.get(EXPIRES)),
                    {"kind": "release_lease", "node": m["name"], "token": token},
                )
            )
    return out
