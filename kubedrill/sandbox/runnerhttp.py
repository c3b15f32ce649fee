"""The pod runner's HTTP side: ``/healthz`` and one DCGM-named exporter per GPU node at
``/dcgm/<node>/metrics`` (rendered from the node's busy ledger and device assignments)."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kubedrill.sandbox.state import State

__all__ = ["RunnerHttp", "write_json"]


def write_json(path: Path, doc: object) -> None:
    """Replace path atomically (readers such as Prometheus' file SD never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunnerHttp:
    def __init__(self, state: State, gpu_nodes: Mapping[str, int]) -> None:
        self.state = state
        self.gpu_nodes = dict(gpu_nodes)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, body, ctype = outer.respond(self.path)
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return  # scraped every few seconds: not worth a log line

        self.server = ThreadingHTTPServer(("127.0.0.1", state.addon_ports.pod_runner), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, path: str) -> tuple[int, str, str]:
        path = path.split("?", 1)[0]
        if path == "/healthz":
            return 200, "ok", "text/plain"
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "dcgm" and parts[2] == "metrics":
            node = parts[1]
            if node not in self.gpu_nodes:
                return 404, f"no GPU node {node!r}\n", "text/plain"
            from kubedrill.sandbox.dcgm import read_assignments, render_node

            ledger = self.state.paths.dir / "gpus" / node
            text = render_node(
                node,
                self.gpu_nodes[node],
                ledger,
                read_assignments(ledger / "assignments.json"),
                self.state.config.gpu_product,
                time.time(),
            )
            return 200, text, "text/plain; version=0.0.4; charset=utf-8"
        return 404, "not found\n", "text/plain"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
