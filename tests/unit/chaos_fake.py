"""An in-memory stand-in for our kube adapter (``kubedrill.adapters.kube.KubeAdapter``'s
dict-in, dict-out surface), for unit tests of the chaos engine's own logic. What the real
API server and controllers do (PDBs, evictions, leases) is proven against the sandbox in
tests/integration/test_chaos_sandbox.py."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

from kubedrill.adapters.kube import ApiFailed, EvictionRefused

_uid = itertools.count(1)


def _merge(dst: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        elif isinstance(v, Mapping):
            dst[k] = {}
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def _labels_match(labels: Mapping[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for part in selector.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif part.strip() not in labels:
            return False
    return True


class FakeKube:
    def __init__(self, context: str = "kwok-test", server: str = "https://127.0.0.1:1") -> None:
        self.context = context
        self.server = server
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str, str]] = []
        self.refuse_evictions: set[str] = set()  # "ns/pod" answered 429
        self.fail_patch: set[str] = set()  # kinds whose patch raises (a broken API)

    # -- fixtures --------------------------------------------------------------------
    def add(self, kind: str, name: str, namespace: str = "", **doc: Any) -> dict[str, Any]:
        meta = {"name": name, "uid": f"uid-{next(_uid)}", **doc.pop("metadata", {})}
        if namespace:
            meta["namespace"] = namespace
        obj = {"kind": kind, "metadata": meta, **doc}
        self.objects[(kind, namespace, name)] = obj
        return obj

    def node(self, name: str, ready: bool = True, kwok: bool = True, gpus: int = 0) -> None:
        labels = {"type": "kwok"} if kwok else {}
        alloc = {"nvidia.com/gpu": str(gpus)} if gpus else {}
        cond = [{"type": "Ready", "status": "True" if ready else "Unknown"}]
        self.add(
            "Node",
            name,
            metadata={"labels": labels, "annotations": {}},
            spec={},
            status={"conditions": cond, "allocatable": alloc},
        )
        self.add("Lease", name, "kube-node-lease", spec={"holderIdentity": name})

    def pod(
        self,
        ns: str,
        name: str,
        node: str,
        labels: Mapping[str, str] | None = None,
        owner: str = "ReplicaSet",
        phase: str = "Running",
    ) -> None:
        self.add(
            "Pod",
            name,
            ns,
            metadata={
                "labels": dict(labels or {}),
                "annotations": {},
                "ownerReferences": [{"kind": owner, "name": "x"}],
            },
            spec={"nodeName": node},
            status={"phase": phase},
        )

    # -- the adapter surface ---------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        out = []
        for (k, ns, _), obj in sorted(self.objects.items()):
            if k != kind or (namespace and ns != namespace):
                continue
            if not _labels_match(obj["metadata"].get("labels") or {}, label_selector):
                continue
            if field_selector:
                key, _, want = field_selector.partition("=")
                assert key == "spec.nodeName", field_selector
                if (obj.get("spec") or {}).get("nodeName") != want:
                    continue
            out.append(copy.deepcopy(obj))
        return out, "1"

    def create(self, doc: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        meta = dict(doc["metadata"])
        ns = namespace or meta.get("namespace", "")
        key = (str(doc["kind"]), ns, meta["name"])
        if key in self.objects:
            raise ApiFailed("exists", 409)
        self.writes.append(("create", key[0], ns, meta["name"]))
        obj = copy.deepcopy(dict(doc))
        obj["metadata"] = {**meta, "uid": f"uid-{next(_uid)}", "namespace": ns}
        self.objects[key] = obj
        if doc["kind"] == "Job":  # its pod, Running at once
            tmpl = doc["spec"]["template"]
            self.add(
                "Pod",
                meta["name"] + "-pod",
                ns,
                metadata={"labels": {**tmpl["metadata"]["labels"], "job-name": meta["name"]}},
                spec={"nodeName": tmpl["spec"]["nodeSelector"]["kubernetes.io/hostname"]},
                status={"phase": "Running"},
            )
        return copy.deepcopy(obj)

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        body: Any,
        patch_type: Any = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        if kind in self.fail_patch:
            raise ApiFailed(f"PATCH {kind}/{name}: HTTP 500: broken", 500)
        obj = self.objects.get((kind, namespace or "", name))
        if obj is None:
            raise ApiFailed("not found", 404)
        self.writes.append(("patch", kind, namespace or "", name))
        _merge(obj, body)
        return copy.deepcopy(obj)

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        grace_period_s: int | None = None,
        uid: str | None = None,
        propagation: str = "Background",
    ) -> bool:
        key = (kind, namespace or "", name)
        obj = self.objects.get(key)
        if obj is None or (uid and obj["metadata"].get("uid") != uid):
            return False
        self.writes.append(("delete", kind, namespace or "", name))
        del self.objects[key]
        if kind == "Job":
            for k in [k for k in self.objects if k[0] == "Pod" and k[2].startswith(name)]:
                del self.objects[k]
        if kind == "Lease":  # kwok takes it back
            self.add("Lease", name, "kube-node-lease", spec={"holderIdentity": name})
        return True

    def evict(self, namespace: str, pod: str, grace_period_s: int | None = None) -> None:
        if f"{namespace}/{pod}" in self.refuse_evictions:
            body = '{"message": "Cannot evict pod: it would violate a disruption budget."}'
            raise EvictionRefused("POST eviction: HTTP 429", 429, body)
        self.writes.append(("evict", "Pod", namespace, pod))
        self.objects.pop(("Pod", namespace, pod), None)
