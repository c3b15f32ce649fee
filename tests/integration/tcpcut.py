"""A loopback TCP proxy that can cut the line: ``python tcpcut.py HOST PORT``.

Prints the port it listens on (127.0.0.1), then forwards every connection to HOST:PORT.
SIGUSR1 cuts: every open connection is closed and new ones are closed on accept, as a
network partition between a client and the API server would look to the client. SIGUSR2
restores. SIGTERM ends it. Used to cut a real watch for real (no fake client).
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

cut = threading.Event()
conns: set[socket.socket] = set()
lock = threading.Lock()


def pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while not cut.is_set():
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def close_all() -> None:
    with lock:
        for s in list(conns):
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        conns.clear()


def on_cut(*_: object) -> None:
    cut.set()
    threading.Thread(target=close_all, daemon=True).start()


def on_restore(*_: object) -> None:
    cut.clear()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGUSR1, on_cut)
    signal.signal(signal.SIGUSR2, on_restore)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    print(srv.getsockname()[1], flush=True)
    while True:
        client, _ = srv.accept()
        if cut.is_set():
            client.close()
            continue
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        with lock:
            conns.update((client, upstream))
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main()
