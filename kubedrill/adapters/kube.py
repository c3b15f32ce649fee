"""The kube adapter: the only module that imports ``kubernetes``.

It hands the rest of the engine plain dicts (the API's JSON), so nothing above it depends
on the client's model classes, and tests can fake this one small surface.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from kubedrill.core.errors import KubedrillError, PreconditionUnmet, truncate
from kubedrill.core.settings import ClusterSettings

__all__ = ["KINDS", "ApiAdapter", "ApiFailed", "KubeAdapter", "WatchGone"]

# kind → (API group/version, plural) for everything the watcher follows
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("apps/v1", "deployments"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets"),
    "Pod": ("v1", "pods"),
    "Node": ("v1", "nodes"),
    "Event": ("v1", "events"),
    "ScaledObject": ("keda.sh/v1alpha1", "scaledobjects"),
    "Namespace": ("v1", "namespaces"),
    "Service": ("v1", "services"),
    "ConfigMap": ("v1", "configmaps"),
}
CLUSTER_SCOPED = {"Node", "Namespace"}
FIELD_MANAGER = "kubedrill"


class ApiFailed(KubedrillError):
    """The API server refused a request (status and a truncated body in the message)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WatchGone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


class ApiAdapter(Protocol):
    """What the engine needs from a cluster; :class:`KubeAdapter` is the real one."""

    def list(self, kind: str, namespace: str | None) -> tuple[list[dict[str, Any]], str]: ...

    def watch(
        self, kind: str, namespace: str | None, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...


@dataclass
class KubeAdapter:
    """Dict-in, dict-out access to the Kubernetes API through the official client."""

    api_client: Any

    @classmethod
    def from_settings(cls, cluster: ClusterSettings) -> KubeAdapter:
        from kubernetes import config as kconfig

        path = str(cluster.kubeconfig) if cluster.kubeconfig else None
        try:
            client = kconfig.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=cluster.context
            )
        except (kconfig.ConfigException, OSError, TypeError) as e:
            raise PreconditionUnmet(
                f"cannot load kubeconfig {path or '(default)'}: {truncate(str(e), 200)}",
                "pass --drill-kubeconfig FILE (the sandbox prints one: `kubedrill sandbox env`)",
            ) from None
        return cls(client)

    def _path(self, kind: str, namespace: str | None) -> str:
        gv, plural = KINDS[kind]
        base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        if namespace and kind not in CLUSTER_SCOPED:
            return f"{base}/namespaces/{namespace}/{plural}"
        return f"{base}/{plural}"

    def _get(self, path: str, query: list[tuple[str, Any]]) -> Any:
        """GET ``path``; returns the urllib3 response, unread (watches stream it)."""
        return self._call("GET", path, query)

    def _call(
        self,
        verb: str,
        path: str,
        query: list[tuple[str, Any]],
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, data, post = self.api_client.param_serialize(
            verb, path, query_params=query, header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )  # fmt: skip
        resp = self.api_client.call_api(method, url, headers, data, post, _request_timeout=None)
        raw = resp.response
        if resp.status == 410:
            raw.release_conn()
            raise WatchGone(path)
        if resp.status >= 400:
            text = raw.data.decode("utf-8", "replace")
            raw.release_conn()
            raise ApiFailed(
                f"{verb} {path}: HTTP {resp.status}: {truncate(text, 200)}", resp.status
            )
        return raw

    def _object_path(self, kind: str, namespace: str | None, name: str) -> str:
        if kind not in KINDS:
            raise ApiFailed(f"kind {kind!r} is not one kubedrill manages: {', '.join(KINDS)}")
        return f"{self._path(kind, namespace)}/{name}"

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            resp = self._get(self._object_path(kind, namespace, name), [])
        except ApiFailed as e:
            if e.status == 404:
                return None
            raise
        try:
            return dict(json.loads(resp.data))
        finally:
            resp.release_conn()

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False when it did not exist."""
        body = {"propagationPolicy": "Background"}
        try:
            resp = self._call(
                "DELETE", self._object_path(kind, namespace, name), [], body, "application/json"
            )
        except ApiFailed as e:
            if e.status == 404:
                return False
            raise
        resp.release_conn()
        return True

    def apply(self, doc: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Server-side apply (field manager ``kubedrill``): creates or updates, idempotent.
        ``namespace`` overrides the document's for namespaced kinds."""
        kind = str(doc.get("kind", ""))
        meta = dict(doc.get("metadata") or {})
        if namespace and kind not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        doc = {**doc, "metadata": meta}
        path = self._object_path(kind, meta.get("namespace"), str(meta.get("name", "")))
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        # JSON is YAML: sent as a string, since the client only encodes *json types itself
        resp = self._call("PATCH", path, query, json.dumps(doc), "application/apply-patch+yaml")
        try:
            return dict(json.loads(resp.data))
        finally:
            resp.release_conn()

    def list(self, kind: str, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        resp = self._get(self._path(kind, namespace), [])
        try:
            doc = json.loads(resp.data)
        finally:
            resp.release_conn()
        return list(doc.get("items") or []), str(doc.get("metadata", {}).get("resourceVersion", ""))

    def watch(
        self, kind: str, namespace: str | None, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        query: list[tuple[str, Any]] = [("watch", "true"), ("timeoutSeconds", timeout_s)]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        resp = self._get(self._path(kind, namespace), query)
        try:
            for line in _lines(resp):
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    if (event.get("object") or {}).get("code") == 410:
                        raise WatchGone(kind)
                    continue
                yield str(event["type"]), dict(event["object"])
        finally:
            resp.release_conn()


def _lines(resp: Any) -> Iterator[bytes]:
    buf = b""
    for chunk in resp.stream(4096):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
    if buf.strip():
        yield buf
