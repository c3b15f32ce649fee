"""``GET pods/{name}/log`` for process-backed pods, the way a real cluster serves it.

On a real cluster the API server proxies ``pods/log`` to the node's kubelet
(``status.daemonEndpoints.kubeletEndpoint.Port`` on the node's address), and the kubelet
reads the container's log file, which the container runtime wrote in the CRI format
(``<RFC3339Nano> <stdout|stderr> <F|P> <text>``, one file per restart). In the sandbox the
node's kubelet endpoint is kwok-controller. kwok serves ``/containerLogs/...`` from a
``Logs`` object (``kwok.x-k8s.io/v1alpha1``, enabled with kwokctl's ``enableCRDs: [Logs]``)
that names the file per container, and reads it with the kubelet's own CRI log reader.

So the pod runner plays the container runtime's part:

- :class:`LogPump` reads the process's stdout and stderr pipes (as containerd's shim does)
  and writes each line twice: as-is to ``pods/<ns>/<pod>/<container>.log`` (the plain log
  the sandbox always had) and in the CRI format to
  ``pods/<ns>/<pod>/<container>/<restart>.log`` (kubelet's layout);
- :func:`logs_doc` is the ``Logs`` object for the pod, owned by the pod (so the garbage
  collector removes it with the pod), pointing at the current and the previous file.

Nothing here serves HTTP: the API server, kwok and the kubelet's reader do that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = ["LOGS_API_VERSION", "MAX_LINE", "LogPump", "cri_line", "cri_log_path", "logs_doc"]

LOGS_API_VERSION = "kwok.x-k8s.io/v1alpha1"
MAX_LINE = 16 * 1024  # a runtime splits longer lines into partial (P) records, as here


def cri_log_path(pod_dir: Path, container: str, restart: int) -> Path:
    """kubelet's layout: one file per container restart."""
    return pod_dir / container / f"{restart}.log"


def _stamp(wall: float) -> str:
    dt = datetime.fromtimestamp(wall, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def cri_line(wall: float, stream: str, chunk: bytes) -> bytes:
    """One CRI log record: full (F) when ``chunk`` ends a line, else partial (P)."""
    full = chunk.endswith(b"\n")
    body = chunk[:-1] if full else chunk
    return b"%s %s %s %s\n" % (_stamp(wall).encode(), stream.encode(), b"F" if full else b"P", body)


class LogPump:
    """Copies a process's stdout and stderr into the plain log and the CRI log until EOF."""

    def __init__(self, plain: Path, cri: Path) -> None:
        cri.parent.mkdir(parents=True, exist_ok=True)
        self._plain = plain.open("ab")
        self._cri = cri.open("ab")
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._open = 0

    def start(self, streams: Mapping[str, IO[bytes] | None]) -> None:
        pipes = [(name, pipe) for name, pipe in streams.items() if pipe is not None]
        self._open = len(pipes)
        if not pipes:
            self._close()
        for name, pipe in pipes:
            t = threading.Thread(
                target=self._copy, args=(name, pipe), name=f"log-{name}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def _copy(self, stream: str, pipe: IO[bytes]) -> None:
        try:
            while chunk := pipe.readline(MAX_LINE):
                now = time.time()
                with self._lock:
                    self._plain.write(chunk)
                    self._plain.flush()
                    self._cri.write(cri_line(now, stream, chunk))
                    self._cri.flush()
        except (OSError, ValueError):  # the pipe or a file closed under us: the pod is gone
            pass
        finally:
            pipe.close()
            with self._lock:
                self._open -= 1
                last = self._open == 0
            if last:
                self._close()

    def _close(self) -> None:
        with self._lock:
            self._plain.close()
            self._cri.close()

    def wait(self, timeout_s: float = 2.0) -> None:
        """Until both streams reached EOF, so a terminated container's log is complete
        (bounded: a grandchild of the process may hold the pipes open)."""
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))


def logs_doc(
    namespace: str, pod: str, uid: str, container: str, current: Path, previous: Path | None
) -> dict[str, Any]:
    """kwok's ``Logs`` object for one process-backed pod (its name and namespace), owned
    by the pod."""
    log: dict[str, Any] = {"containers": [container], "logsFile": str(current)}
    if previous is not None:
        log["previousLogsFile"] = str(previous)
    return {
        "apiVersion": LOGS_API_VERSION,
        "kind": "Logs",
        "metadata": {
            "name": pod,
            "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}],
        },
        "spec": {"logs": [log]},
    }
