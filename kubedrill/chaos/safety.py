"""What chaos may touch: the allow-list, the caps, and the one door every write goes through.

:func:`check_context` refuses a kubeconfig context outside ``chaos.contexts`` and one that
looks like production (unless ``chaos.allow_production``). :class:`Scope` holds the
namespaces and nodes allowed. :class:`Guard` is the only object chaos actions write
through: each write checks the scope first and raises :class:`ChaosRefused` before any
request when the object is outside it, so an action cannot touch what it was not allowed
to touch even by mistake. Reads go to the adapter directly.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubedrill.core.errors import KubedrillError
from kubedrill.core.settings import ChaosSettings

__all__ = [
    "ChaosRefused",
    "Guard",
    "KubeWrites",
    "Scope",
    "cap_count",
    "check_context",
    "looks_like_production",
]

LEASE_NAMESPACE = "kube-node-lease"
_PRODUCTION = re.compile(r"(^|[^a-z0-9])(prod|prd|production|live)([^a-z]|$)", re.IGNORECASE)


class ChaosRefused(KubedrillError):
    """Chaos refused before anything was written; the message names the setting or the
    object and what would be allowed."""


def looks_like_production(*names: str) -> bool:
    return any(_PRODUCTION.search(n or "") for n in names)


def check_context(settings: ChaosSettings, context: str | None, server: str) -> None:
    if not settings.contexts:
        raise ChaosRefused(
            f"chaos: no kubeconfig context is allowed (context {context!r}): list the contexts "
            "chaos may act in under chaos.contexts (e.g. ['kwok-*'] for the sandbox)"
        )
    if context is None or not any(fnmatch.fnmatchcase(context, g) for g in settings.contexts):
        raise ChaosRefused(
            f"chaos: context {context!r} is not in chaos.contexts {list(settings.contexts)}"
        )
    if looks_like_production(context, server) and not settings.allow_production:
        raise ChaosRefused(
            f"chaos: context {context!r} ({server}) looks like production; set "
            "chaos.allow_production: true to act in it anyway"
        )


@dataclass(frozen=True, slots=True)
class Scope:
    """Namespaces and nodes (globs) chaos may write to."""

    namespaces: tuple[str, ...]
    nodes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: ChaosSettings, target_namespace: str) -> Scope:
        return cls(settings.namespaces or (target_namespace,), settings.nodes)

    def namespace_allowed(self, namespace: str | None) -> bool:
        return bool(namespace) and any(
            fnmatch.fnmatchcase(str(namespace), g) for g in self.namespaces
        )

    def node_allowed(self, node: str) -> bool:
        return any(fnmatch.fnmatchcase(node, g) for g in self.nodes)

    def require_namespace(self, namespace: str | None, what: str) -> None:
        if not self.namespace_allowed(namespace):
            raise ChaosRefused(
                f"chaos: {what} is in namespace {namespace!r}, outside chaos.namespaces "
                f"{list(self.namespaces)}"
            )

    def require_node(self, node: str, what: str = "") -> None:
        if not self.node_allowed(node):
            raise ChaosRefused(
                f"chaos: {what or 'node ' + repr(node)} is not in chaos.nodes {list(self.nodes)}"
                + (" (empty: no node may be touched)" if not self.nodes else "")
            )


def cap_count(wanted: int, of: int, fraction: float, what: str, key: str) -> None:
    """Refuse disrupting more than ``fraction`` of ``of`` at once."""
    most = math.floor(of * fraction + 1e-9)
    if wanted > most:
        raise ChaosRefused(
            f"chaos: {wanted} of {of} {what} at once is over the cap {key} = {fraction:g} "
            f"(at most {most})"
        )


class KubeWrites(Protocol):
    """The kube adapter's methods chaos uses (kubedrill.adapters.kube.KubeAdapter)."""

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...
    def list(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]: ...
    def create(self, doc: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]: ...
    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        body: Any,
        patch_type: Any = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]: ...
    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        grace_period_s: int | None = None,
        uid: str | None = None,
        propagation: str = "Background",
    ) -> bool: ...
    def evict(self, namespace: str, pod: str, grace_period_s: int | None = None) -> None: ...


@dataclass
class Guard:
    """Every chaos write, checked against the scope first; ``writes`` lists what was sent
    (verb, kind, namespace, name) for the run's record."""

    adapter: KubeWrites
    scope: Scope
    writes: list[tuple[str, str, str, str]] = field(default_factory=list)

    def _note(self, verb: str, kind: str, ns: str | None, name: str) -> None:
        self.writes.append((verb, kind, ns or "", name))

    # -- nodes ---------------------------------------------------------------------
    def patch_node(self, node: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.scope.require_node(node)
        self._note("patch", "Node", None, node)
        return self.adapter.patch("Node", None, node, dict(body), "merge")

    def patch_lease(self, node: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.scope.require_node(node, f"the Lease of node {node!r}")
        self._note("patch", "Lease", LEASE_NAMESPACE, node)
        return self.adapter.patch("Lease", LEASE_NAMESPACE, node, dict(body), "merge")

    def delete_lease(self, node: str, uid: str | None) -> bool:
        self.scope.require_node(node, f"the Lease of node {node!r}")
        self._note("delete", "Lease", LEASE_NAMESPACE, node)
        return self.adapter.delete("Lease", LEASE_NAMESPACE, node, uid=uid)

    # -- pods ------------------------------------------------------------------------
    def evict(self, namespace: str, pod: str, grace_period_s: int | None = None) -> None:
        self.scope.require_namespace(namespace, f"pod {namespace}/{pod}")
        self._note("evict", "Pod", namespace, pod)
        self.adapter.evict(namespace, pod, grace_period_s)

    def delete_pod(
        self, namespace: str, pod: str, grace_period_s: int | None, uid: str | None
    ) -> bool:
        self.scope.require_namespace(namespace, f"pod {namespace}/{pod}")
        self._note("delete", "Pod", namespace, pod)
        return self.adapter.delete("Pod", namespace, pod, grace_period_s, uid)

    def annotate_pod(self, namespace: str, pod: str, annotations: Mapping[str, str]) -> None:
        self.scope.require_namespace(namespace, f"pod {namespace}/{pod}")
        self._note("patch", "Pod", namespace, pod)
        self.adapter.patch("Pod", namespace, pod, {"metadata": {"annotations": dict(annotations)}})

    # -- jobs ------------------------------------------------------------------------
    def create_job(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        meta = doc.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        self.scope.require_namespace(ns, f"Job {meta.get('name')}")
        node = (
            ((doc.get("spec") or {}).get("template") or {})
            .get("spec", {})
            .get("nodeSelector", {})
            .get("kubernetes.io/hostname")
        )
        if node is not None:
            self.scope.require_node(str(node), f"a burner Job on node {node!r}")
        self._note("create", "Job", ns, str(meta.get("name")))
        return self.adapter.create(doc, ns)

    def delete_job(self, namespace: str, name: str, uid: str | None) -> bool:
        self.scope.require_namespace(namespace, f"Job {namespace}/{name}")
        self._note("delete", "Job", namespace, name)
        return self.adapter.delete("Job", namespace, name, uid=uid, propagation="Foreground")
