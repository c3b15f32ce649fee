"""A Service-like local endpoint: one loopback listener per Service, each connection
handed round-robin to a ready backend, the way kube-proxy does with a Service's
EndpointSlices. A backend that stops being ready gets no new connections; connections
already open stay until either side closes them (as with conntrack). With no ready
backend a connection is closed at once (kube-proxy rejects it).

The proxy runs an asyncio loop in its own thread; :meth:`ServiceProxy.sync` is called
from the runner's thread with the wanted services and their ready backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["ServiceProxy"]

_CHUNK = 64 * 1024
T = TypeVar("T")


@dataclass
class _Listener:
    server: asyncio.Server
    port: int
    backends: tuple[int, ...] = ()
    rr: itertools.count[int] = field(default_factory=itertools.count)


class ServiceProxy:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="svcproxy", daemon=True)
        self._listeners: dict[str, _Listener] = {}
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def sync(self, wanted: Mapping[str, Sequence[int]]) -> dict[str, int]:
        """Listen for every service in wanted (key -> ready backend ports), stop the others.
        Returns key -> local port."""
        return self._call(self._sync(dict(wanted)))

    async def _sync(self, wanted: dict[str, Sequence[int]]) -> dict[str, int]:
        for key in list(self._listeners):
            if key not in wanted:
                lst = self._listeners.pop(key)
                lst.server.close()
        for key, backends in wanted.items():
            found = self._listeners.get(key)
            lst = found if found is not None else await self._listen(key)
            lst.backends = tuple(backends)
        return {k: v.port for k, v in self._listeners.items()}

    async def _listen(self, key: str) -> _Listener:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._handle(key, reader, writer)
            finally:  # also when cancelled while still connecting upstream
                writer.close()

        server = await asyncio.start_server(handle, self.host, 0)
        lst = _Listener(server, int(server.sockets[0].getsockname()[1]))
        self._listeners[key] = lst
        return lst

    async def _handle(
        self, key: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        lst = self._listeners.get(key)
        backends = lst.backends if lst is not None else ()
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        # try each ready backend once, starting at the round-robin position
        start = next(lst.rr) if lst is not None else 0
        for i in range(len(backends)):
            port = backends[(start + i) % len(backends)]
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        if upstream is None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
            for w in (writer, up_writer):  # closed for good before the handler ends
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await w.wait_closed()

    def close(self) -> None:
        async def stop() -> None:
            for lst in self._listeners.values():
                lst.server.close()
            self._listeners.clear()
            # connections still being piped: end them and let their transports close on
            # this loop, not leave them half-closed for the garbage collector to find
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            for _ in range(3):  # the transports' connection_lost callbacks
                await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await src.read(_CHUNK)
            if not data:
                break
            dst.write(data)
            await dst.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if dst.can_write_eof():
                dst.write_eof()
