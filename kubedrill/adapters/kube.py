"""The kube adapter: the only module that imports ``kubernetes``.

It hands the rest of the engine plain dicts (the API's JSON), so nothing above it depends
on the client's model classes, and tests can fake this one small surface
(:class:`ApiAdapter`).

Built on the official client: kinds are found by the dynamic client's discovery (so a
CRD such as KEDA's ScaledObject is known when the cluster serves it, and only then),
watches stream through ``kubernetes.watch.Watch``, and requests that the server throttles
(429) or fails transiently (5xx, a dropped connection) are retried with exponential
back-off by tenacity. Every request has the settings' timeout.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import tenacity

from kubedrill.core.errors import KubedrillError, PreconditionUnmet, truncate
from kubedrill.core.settings import ClusterSettings

__all__ = [
    "ApiAdapter",
    "ApiFailed",
    "EvictionRefused",
    "KindNotServed",
    "KubeAdapter",
    "ResourceInfo",
    "WatchGone",
]

FIELD_MANAGER = "kubedrill"
# where a kind's name alone is ambiguous (Event is served by v1 and events.k8s.io/v1),
# the API version the engine means; everything else is found by discovery
PREFERRED_VERSION = {"Event": "v1", "HorizontalPodAutoscaler": "autoscaling/v2"}
_TRANSIENT = frozenset({429, 500, 502, 503, 504})
PatchType = Literal["merge", "strategic", "json", "apply"]
_PATCH_CONTENT = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


class ApiFailed(KubedrillError):
    """The API server refused a request (status and a truncated body in the message)."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class KindNotServed(ApiFailed):
    """The cluster does not serve this kind (a CRD that is not installed)."""


class EvictionRefused(ApiFailed):
    """An eviction the API refused with 429: a PodDisruptionBudget holds. Evidence, not
    a crash: the caller decides whether to retry before its deadline."""


class WatchGone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """A kind as the server serves it (from discovery)."""

    kind: str
    group_version: str
    plural: str
    namespaced: bool
    subresources: frozenset[str]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if namespace and self.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


class ApiAdapter(Protocol):
    """What the watcher needs from a cluster; :class:`KubeAdapter` is the real one."""

    def list(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]: ...

    def watch(
        self,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_s: int,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...


def _retryable(e: BaseException) -> bool:
    if isinstance(e, EvictionRefused):
        return False
    if isinstance(e, ApiFailed):
        return e.status in _TRANSIENT
    return isinstance(e, ConnectionError | TimeoutError) or type(e).__module__.startswith("urllib3")


class KubeAdapter:
    """Dict-in, dict-out access to the Kubernetes API through the official client."""

    def __init__(
        self,
        api_client: Any,
        request_timeout_s: float = 10.0,
        retries: int = 4,
        discovery_cache: Path | None = None,
    ) -> None:
        self.api_client = api_client
        self.request_timeout_s = request_timeout_s
        self.retries = retries
        self._discovery_cache = discovery_cache
        self._dyn: Any = None
        self._kinds: dict[tuple[str, str | None], ResourceInfo | None] = {}
        self._lock = threading.Lock()
        self._discovery_lock = threading.Lock()
        #: the kubeconfig context in use ("in-cluster" for a service account, None when
        #: built from bare certificates) and the API server URL: chaos checks both against
        #: its allow-list before it writes anything
        self.context: str | None = None
        self.server: str = str(getattr(api_client.configuration, "host", "") or "")

    # -- construction ----------------------------------------------------------

    @classmethod
    def from_settings(cls, cluster: ClusterSettings) -> KubeAdapter:
        """From the kubeconfig in settings, else ``$KUBECONFIG``/~/.kube/config, else the
        in-cluster service account (a CronJob game day has no kubeconfig)."""

        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        path = str(cluster.kubeconfig) if cluster.kubeconfig else None
        default = Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0])
        in_cluster = (
            path is None
            and not default.expanduser().exists()
            and "KUBERNETES_SERVICE_HOST" in os.environ
        )
        try:
            if in_cluster:
                conf = kclient.Configuration()
                kconfig.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
                api = kclient.ApiClient(conf)
                context: str | None = "in-cluster"
            else:
                api = kconfig.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=path, context=cluster.context
                )
                context = cluster.context
                if context is None:
                    _, active = kconfig.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
                    context = str((active or {}).get("name") or "") or None
        except (kconfig.ConfigException, OSError, TypeError) as e:
            raise PreconditionUnmet(
                f"cannot load kubeconfig {path or '(default)'}: {truncate(str(e), 200)}",
                "pass --drill-kubeconfig FILE (the sandbox prints one: `kubedrill sandbox env`)",
            ) from None
        adapter = cls(api, request_timeout_s=cluster.request_timeout_s)
        adapter.context = context
        return adapter

    @classmethod
    def from_certificates(
        cls,
        server: str,
        ca: Path,
        cert: Path,
        key: Path,
        request_timeout_s: float = 5.0,
        retries: int = 2,
    ) -> KubeAdapter:
        """From a server URL and client certificate files (read when first used, so they
        may appear later: the sandbox makes them while it starts)."""
        from kubernetes import client as kclient

        conf = kclient.Configuration(host=server)
        conf.ssl_ca_cert, conf.cert_file, conf.key_file = str(ca), str(cert), str(key)
        return cls(kclient.ApiClient(conf), request_timeout_s=request_timeout_s, retries=retries)

    @classmethod
    def from_kubeconfig(cls, path: Path, request_timeout_s: float = 10.0) -> KubeAdapter:
        return cls.from_settings(
            ClusterSettings(kubeconfig=path, request_timeout_s=request_timeout_s)
        )

    def close(self) -> None:
        self.api_client.close()

    # -- discovery ---------------------------------------------------------------

    def _dynamic(self) -> Any:
        if self._dyn is None:
            from kubernetes.dynamic import DynamicClient

            # one cache file per adapter: the client rewrites it whole, and another
            # process reading it half-written logs "load cache error" at ERROR level
            cache = self._discovery_cache
            if cache is None:
                fd, name = tempfile.mkstemp(prefix="kubedrill-discovery-", suffix=".json")
                os.close(fd)
                os.unlink(name)  # the client writes it; absent means "discover"
                cache = Path(name)
                weakref.finalize(self, _remove, cache)
            try:
                self._dyn = self._retry(
                    lambda: DynamicClient(self.api_client, cache_file=str(cache))  # type: ignore[no-untyped-call]
                )
            except Exception as e:  # noqa: BLE001 - the dynamic client raises many kinds
                raise ApiFailed(f"API discovery failed: {truncate(str(e), 200)}", None) from None
        return self._dyn

    def resource(self, kind: str, api_version: str | None = None) -> ResourceInfo:
        """The served resource for ``kind`` (discovered once, then cached). Raises
        :class:`KindNotServed` when the cluster does not serve it."""
        api_version = api_version or PREFERRED_VERSION.get(kind)
        key = (kind, api_version)
        with self._lock:
            if key in self._kinds:
                found = self._kinds[key]
                if found is None:
                    raise KindNotServed(f"the cluster does not serve kind {kind!r}", 404)
                return found
        from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

        # the client's lazy discovery is not thread-safe (concurrent first look-ups die
        # with KeyError inside it): one look-up at a time
        with self._discovery_lock:
            dyn = self._dynamic()
            try:
                res = self._retry(lambda: dyn.resources.get(kind=kind, api_version=api_version))
            except ResourceNotFoundError:
                res = None
            except ResourceNotUniqueError:  # prefer the core group, then a preferred version
                options = dyn.resources.search(kind=kind, api_version=api_version)
                options = [r for r in options if getattr(r, "preferred", True)] or options
                options.sort(key=lambda r: (r.group != "", r.group_version))
                res = options[0]
        info = None
        if res is not None:
            info = ResourceInfo(
                kind=kind,
                group_version=str(res.group_version),
                plural=str(res.name),
                namespaced=bool(res.namespaced),
                subresources=frozenset(getattr(res, "subresources", {}) or {}),
            )
        with self._lock:
            self._kinds[key] = info
        if info is None:
            raise KindNotServed(f"the cluster does not serve kind {kind!r}", 404)
        return info

    def has_kind(self, kind: str, api_version: str | None = None) -> bool:
        try:
            self.resource(kind, api_version)
        except KindNotServed:
            return False
        return True

    # -- requests ----------------------------------------------------------------

    def _retry(self, fn: Any) -> Any:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_retryable),
            stop=tenacity.stop_after_attempt(self.retries),
            wait=tenacity.wait_exponential(multiplier=0.2, max=3.0),
            reraise=True,
        )
        return retrying(fn)

    def _send(
        self,
        verb: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        stream_timeout_s: float | None = None,
        accept: str = "application/json",
    ) -> Any:
        """One request; returns the urllib3 response unread (watches stream it)."""
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, data, post = self.api_client.param_serialize(
            verb, path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )  # fmt: skip
        timeout: Any = self.request_timeout_s
        if stream_timeout_s is not None:  # connect quickly, read for as long as the watch
            timeout = (self.request_timeout_s, stream_timeout_s)
        try:
            resp = self.api_client.call_api(
                method, url, headers, data, post, _request_timeout=timeout
            )
        except Exception as e:
            if isinstance(e, OSError) or type(e).__module__.startswith("urllib3"):
                # refused, reset, timed out: no answer at all (retried as transient)
                raise ApiFailed(f"{verb} {path}: {truncate(str(e), 200)}", None) from None
            raise
        raw = resp.response
        if resp.status == 410:
            raw.release_conn()
            raise WatchGone(path)
        if resp.status >= 400:
            text = raw.data.decode("utf-8", "replace")
            raw.release_conn()
            message = f"{verb} {path}: HTTP {resp.status}: {_status_message(text)}"
            cls = (
                EvictionRefused if resp.status == 429 and path.endswith("/eviction") else ApiFailed
            )
            raise cls(message, resp.status, text)
        return raw

    def request(
        self,
        verb: str,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        """A request with retries; the decoded JSON answer (or its text)."""

        def once() -> Any:
            raw = self._send(verb, path, query, body, content_type)
            try:
                text = raw.data.decode("utf-8", "replace")
            finally:
                raw.release_conn()
            try:
                return json.loads(text) if text else {}
            except ValueError:
                return text

        return self._retry(once)

    def raw(self, path: str) -> str:
        """GET a non-resource path (``/readyz``, ``/version``) as text, with retries."""
        answer = self.request("GET", path)
        return answer if isinstance(answer, str) else json.dumps(answer)

    def _object_path(
        self, kind: str, namespace: str | None, name: str, subresource: str | None = None
    ) -> str:
        path = self.resource(kind).path(namespace, name)
        return f"{path}/{subresource}" if subresource else path

    def get(
        self, kind: str, namespace: str | None, name: str, subresource: str | None = None
    ) -> dict[str, Any] | None:
        """The object (or its subresource), or None when it does not exist."""
        try:
            return dict(self.request("GET", self._object_path(kind, namespace, name, subresource)))
        except ApiFailed as e:
            if e.status == 404:
                return None
            raise

    def list(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object (paged, 500 at a time) and the list's resourceVersion."""
        path = self.resource(kind).path(namespace)
        items: list[dict[str, Any]] = []
        cont, rv = "", ""
        while True:
            query = [*_selectors(label_selector, field_selector), ("limit", 500)]
            if cont:
                query.append(("continue", cont))
            doc = self.request("GET", path, query)
            items.extend(doc.get("items") or [])
            meta = doc.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            cont = str(meta.get("continue") or "")
            if not cont:
                return items, rv

    def watch(
        self,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_s: int,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``("OPENED", {})`` once the server has taken the watch, then the events from
        ``resource_version`` on, BOOKMARKs included (their object carries only the new
        resourceVersion); the server ends the stream after ``timeout_s``. Raises
        :class:`WatchGone` when the version is too old (410)."""
        from kubernetes import watch as kwatch
        from kubernetes.client.exceptions import ApiException

        path = self.resource(kind).path(namespace)
        query = [
            *_selectors(label_selector, field_selector),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", int(timeout_s)),
        ]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        opened = self._send("GET", path, query, stream_timeout_s=timeout_s + 10)
        stream = kwatch.Watch()  # type: ignore[no-untyped-call]
        try:
            yield "OPENED", {}  # the server took the watch: a resumed stream is live again
            # the client's framing, ERROR and 410 handling over the response opened above
            for event in stream.stream(  # type: ignore[no-untyped-call]
                lambda **_kw: opened, resource_version=resource_version,
                timeout_seconds=timeout_s, deserialize=False,
            ):  # fmt: skip
                type_ = str(event.get("type"))
                if type_ != "ERROR":
                    yield type_, dict(event.get("object") or {})
        except ApiException as e:
            if e.status == 410:
                raise WatchGone(kind) from None
            raise ApiFailed(f"watch {path}: HTTP {e.status}: {e.reason}", e.status) from None
        finally:
            stream.stop()  # type: ignore[no-untyped-call]
            opened.release_conn()

    def create(self, doc: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        kind = str(doc.get("kind", ""))
        meta = dict(doc.get("metadata") or {})
        ns = namespace or meta.get("namespace")
        body = {**doc, "metadata": {**meta, **({"namespace": ns} if ns else {})}}
        query = [("fieldManager", FIELD_MANAGER)]
        return dict(self.request("POST", self.resource(kind).path(ns), query, body))

    def apply(self, doc: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Server-side apply (field manager ``kubedrill``): creates or updates, idempotent.
        ``namespace`` overrides the document's for namespaced kinds."""
        kind = str(doc.get("kind", ""))
        info = self.resource(kind, str(doc.get("apiVersion") or "") or None)
        meta = dict(doc.get("metadata") or {})
        if namespace and info.namespaced:
            meta["namespace"] = namespace
        body = {**doc, "metadata": meta}
        path = info.path(meta.get("namespace"), str(meta.get("name", "")))
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        # JSON is YAML: sent as a string, since the client only encodes *json types itself
        return dict(self.request("PATCH", path, query, json.dumps(body), _PATCH_CONTENT["apply"]))

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        body: Any,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = self._object_path(kind, namespace, name, subresource)
        query = [("fieldManager", FIELD_MANAGER)]
        if patch_type == "apply":
            query.append(("force", "true"))
            body = json.dumps(body)
        return dict(self.request("PATCH", path, query, body, _PATCH_CONTENT[patch_type]))

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        grace_period_s: int | None = None,
        uid: str | None = None,
        propagation: str = "Background",
    ) -> bool:
        """Delete; False when it did not exist (or, with ``uid``, is another object now)."""
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if grace_period_s is not None:
            body["gracePeriodSeconds"] = grace_period_s
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", self._object_path(kind, namespace, name), None, body)
        except ApiFailed as e:
            if e.status in (404, 409):
                return False
            raise
        return True

    def evict(self, namespace: str, pod: str, grace_period_s: int | None = None) -> None:
        """Evict through the Eviction API (PDBs apply). A refusal raises
        :class:`EvictionRefused` (429, the server's message names the budget)."""
        body: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        }
        if grace_period_s is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period_s}
        self.request("POST", self._object_path("Pod", namespace, pod, "eviction"), None, body)

    def scale(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The ``scale`` subresource (spec.replicas, status.replicas, status.selector)."""
        return self.get(kind, namespace, name, "scale")

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        return self.patch(kind, namespace, name, {"spec": {"replicas": replicas}}, "merge", "scale")

    def patch_status(
        self, kind: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.patch(kind, namespace, name, {"status": dict(status)}, "merge", "status")

    def logs(
        self, namespace: str, pod: str, container: str | None = None, tail_lines: int | None = None
    ) -> str:
        query: list[tuple[str, Any]] = []
        if container:
            query.append(("container", container))
        if tail_lines is not None:
            query.append(("tailLines", tail_lines))
        path = self._object_path("Pod", namespace, pod, "log")

        def once() -> str:
            # the API server answers 406 to text/plain alone on pods/log; kubectl's Accept
            raw = self._send("GET", path, query, accept="application/json, */*")
            try:
                return str(raw.data.decode("utf-8", "replace"))
            finally:
                raw.release_conn()

        return str(self._retry(once))


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _selectors(label: str | None, field: str | None) -> list[tuple[str, Any]]:
    query: list[tuple[str, Any]] = []
    if label:
        query.append(("labelSelector", label))
    if field:
        query.append(("fieldSelector", field))
    return query


def _status_message(text: str) -> str:
    """The ``message`` of a Status answer, else the text; truncated either way."""
    try:
        doc = json.loads(text)
    except ValueError:
        return truncate(text, 200)
    if isinstance(doc, dict) and doc.get("message"):
        return truncate(str(doc["message"]), 300)
    return truncate(text, 200)
