"""Talk to the sandbox's API server: raw HTTPS with the admin certificate (stdlib only) for
polling, and the built kubectl for applying manifests. No ``kubernetes`` import here; the
engine's kube adapter is the only module allowed that.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedrill.core.errors import ActionFailed, truncate

__all__ = ["ApiClient", "ApiError", "Kubectl", "condition"]


class ApiError(ActionFailed):
    def __init__(self, what: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(what)


@dataclass(frozen=True)
class ApiClient:
    """Requests to https://127.0.0.1:<port> authenticated by the cluster's admin cert."""

    server: str
    ca: Path
    cert: Path
    key: Path
    timeout_s: float = 5.0

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx

    def request_text(
        self,
        method: str,
        path: str,
        body: object = None,
        content_type: str = "application/json",
    ) -> str:
        url = self.server + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310 - fixed https URL on loopback
                req, timeout=self.timeout_s, context=self._context()
            ) as resp:
                return str(resp.read().decode("utf-8", errors="replace"))
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", errors="replace")
            raise ApiError(f"{method} {path}: HTTP {e.code}: {truncate(text)}", e.code) from None
        except (OSError, ssl.SSLError) as e:
            raise ApiError(f"{method} {path}: {e}") from None

    def get_text(self, path: str) -> str:
        return self.request_text("GET", path)

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        doc = json.loads(self.request_text(method, path, body, content_type) or "{}")
        if not isinstance(doc, dict):
            raise ApiError(f"{method} {path}: expected a JSON object")
        return doc

    def patch(self, path: str, body: object, strategic: bool = True) -> dict[str, Any]:
        kind = "strategic-merge-patch" if strategic else "merge-patch"
        return self.request("PATCH", path, body, f"application/{kind}+json")

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def ready(self) -> bool:
        try:
            return self.get_text("/readyz") == "ok"
        except ApiError:
            return False


def condition(obj: dict[str, Any], kind: str) -> str | None:
    """status of the condition of type kind ("True"/"False"/"Unknown"), or None."""
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path

    def run(self, args: Sequence[str], stdin: str | None = None, timeout_s: float = 120) -> str:
        # the discovery cache stays beside the kubeconfig, not in ~/.kube/cache
        cache = self.kubeconfig.parent / "kube-cache"
        cmd = [str(self.binary), f"--kubeconfig={self.kubeconfig}", f"--cache-dir={cache}", *args]
        try:
            proc = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise ActionFailed(f"kubectl {' '.join(args)} timed out after {timeout_s:g}s") from None
        if proc.returncode != 0:
            raise ActionFailed(f"kubectl {' '.join(args)}: {truncate(proc.stderr or proc.stdout)}")
        return proc.stdout

    def apply(self, docs: Sequence[dict[str, Any]], server_side: bool = False) -> None:
        payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--force-conflicts"]
        self.run(args, stdin=payload)
