"""The sandbox's side of talking to its API server: the engine's kube adapter (one client
for all of kubedrill) for requests, and the built kubectl for applying manifests.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedrill.adapters.kube import ApiFailed, KubeAdapter
from kubedrill.core.errors import ActionFailed, truncate

__all__ = ["Kubectl", "api_ready", "condition"]


def api_ready(api: KubeAdapter) -> bool:
    """The API server answers ``/readyz`` with ``ok``."""
    try:
        return api.raw("/readyz") == "ok"
    except ApiFailed:
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
