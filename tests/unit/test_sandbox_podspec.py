"""Reading a process-backed pod, the status written for it, and the Service proxy."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubedrill.sandbox.podproc import PodProcess, probe_once
from kubedrill.sandbox.podspec import Probe, SpecError, expand, parse_pod, pod_ip
from kubedrill.sandbox.podstatus import status_patch
from kubedrill.sandbox.svcproxy import ServiceProxy


def _pod(**container: Any) -> dict[str, Any]:
    c = {"name": "app", "command": ["python", "-m", "svc"], "args": ["--port", "$(PORT)"]}
    c.update(container)
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"nodeName": "gpu-0", "containers": [c], "terminationGracePeriodSeconds": 7},
    }


def test_parse_reads_command_probe_grace_and_gpus() -> None:
    spec = parse_pod(
        _pod(
            readinessProbe={"httpGet": {"path": "/ready"}, "periodSeconds": 2},
            resources={"limits": {"nvidia.com/gpu": "2"}},
            env=[
                {"name": "A", "value": "x"},
                {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
            ports=[{"containerPort": 8080}],
        )
    )
    assert spec.command == ("python", "-m", "svc", "--port", "$(PORT)")
    assert spec.readiness == Probe(path="/ready", period_s=2.0)
    assert spec.grace_s == 7 and spec.gpus == 2 and spec.restart_policy == "Always"
    assert spec.env == (("A", "x"), ("ME", "$(POD_NAME)"))  # secrets are not resolved
    assert spec.container_port == 8080 and str(spec.key) == "ns/p"


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ({"command": [], "args": []}, "command/args"),
        ({"readinessProbe": {"exec": {"command": ["true"]}}}, "httpGet and tcpSocket"),
        ({"readinessProbe": {"httpGet": {}, "periodSeconds": -1}}, "periodSeconds"),
        ({"resources": {"limits": {"nvidia.com/gpu": "two"}}}, "nvidia.com/gpu"),
    ],
)
def test_parse_names_the_field_it_cannot_run(container: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_pod(_pod(**container))


def test_expand_follows_kubernetes_rules() -> None:
    env = {"PORT": "1234"}
    assert expand("--port=$(PORT)", env) == "--port=1234"
    assert expand("$(MISSING) $$(PORT) $$", env) == "$(MISSING) $(PORT) $"


def test_pod_ip_is_unique_per_port_and_not_loopback() -> None:
    assert pod_ip(20000) == "10.244.78.32"
    assert len({pod_ip(p) for p in range(20000, 30000)}) == 10000


def _proc(tmp_path: Path, **kw: Any) -> PodProcess:
    spec = parse_pod(_pod(**kw))
    return PodProcess(spec, 20000, ("3",), tmp_path, tmp_path / "log", {}, str(tmp_path))


def test_status_of_a_crashed_container_waiting_to_restart(tmp_path: Path) -> None:
    pp = _proc(tmp_path)
    pp.started_wall = time.time()
    pp.last_exit = (137, time.time() - 5, time.time())
    pp.restart_count = 2
    status = status_patch(pp)["status"]
    assert status["phase"] == "Running" and status["podIP"] == "10.244.78.32"
    cs = status["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["restartCount"] == 2 and cs["ready"] is False
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False"


def test_status_of_a_finished_pod_follows_its_exit_code(tmp_path: Path) -> None:
    pp = _proc(tmp_path)
    pp.started_wall, pp.finished = time.time(), True
    pp.last_exit = (0, time.time(), time.time())
    assert status_patch(pp)["status"]["phase"] == "Succeeded"
    pp.last_exit = (3, time.time(), time.time())
    assert status_patch(pp)["status"]["phase"] == "Failed"


def test_env_expands_references_and_marks_the_process(tmp_path: Path) -> None:
    pp = _proc(tmp_path, env=[{"name": "URL", "value": "http://x:$(PORT)/"}])
    env = pp.env()
    assert env["URL"] == "http://x:20000/"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "3" and env["KUBEDRILL_GPU_LEDGER"] == str(tmp_path)
    assert env["KUBEDRILL_SANDBOX_POD"] == str(tmp_path)


def test_probe_once_http_and_tcp() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not probe_once(Probe(path=None, timeout_s=0.5), port)  # not listening
        s.listen()
        assert probe_once(Probe(path=None, timeout_s=0.5), port)


class _Echo:
    """A loopback server answering every connection with its name, then closing."""

    def __init__(self, name: bytes) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        self.name = name
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.name)


def _ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
        return c.recv(100)


@pytest.fixture
def proxy() -> Iterator[ServiceProxy]:
    p = ServiceProxy()
    yield p
    p.close()


def test_proxy_round_robins_over_ready_backends_only(proxy: ServiceProxy) -> None:
    a, b = _Echo(b"a"), _Echo(b"b")
    port = proxy.sync({"ns/web": [a.port, b.port]})["ns/web"]
    assert sorted(_ask(port) for _ in range(4)) == [b"a", b"a", b"b", b"b"]
    proxy.sync({"ns/web": [b.port]})  # a is no longer ready
    assert {_ask(port) for _ in range(4)} == {b"b"}
    proxy.sync({"ns/web": []})  # nothing ready: the connection is closed at once
    assert _ask(port) == b""
    assert proxy.sync({}) == {}
    with pytest.raises(OSError):
        _ask(port)


def test_proxy_skips_a_backend_that_refuses(proxy: ServiceProxy) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    b = _Echo(b"b")
    port = proxy.sync({"ns/web": [dead_port, b.port]})["ns/web"]
    assert {_ask(port) for _ in range(4)} == {b"b"}


def test_proxy_close_leaves_no_half_closed_connection_behind() -> None:
    """A connection still piped when the proxy closes is ended on the proxy's loop: no
    transport is left for the garbage collector to warn about (CI failed a later test on
    exactly that ResourceWarning)."""
    import gc
    import sys

    held = socket.socket()  # a backend that accepts and never answers
    held.bind(("127.0.0.1", 0))
    held.listen()
    p = ServiceProxy()
    port = p.sync({"ns/web": [held.getsockname()[1]]})["ns/web"]
    client = socket.create_connection(("127.0.0.1", port), timeout=2)
    conn, _ = held.accept()  # the proxy's upstream connection is open: piping has begun
    seen: list[str] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(f"{u.exc_type.__name__}: {u.exc_value}")
    try:
        p.close()
        for s_ in (client, conn, held):
            s_.close()
        gc.collect()
    finally:
        sys.unraisablehook = old_hook
    assert not seen, seen
