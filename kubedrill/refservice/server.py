"""Run the service: bind, announce, load, serve, and drain gracefully on SIGTERM.

On start the service prints one JSON line to stdout,
``{"event": "listening", "url": "http://127.0.0.1:8123", "port": 8123, "pid": ...}``, so a
launcher that passed ``--port 0`` learns the port. Logs go to stderr.

Exit status: 0 after a clean drain; 1 when in-flight requests were still running at the
end of ``--drain-timeout-s`` or the model failed to load; 2 for a bad flag.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from kubedrill.refservice.app import Service, build_app
from kubedrill.refservice.config import ServiceConfig, parse_args

__all__ = ["main", "serve"]

log = logging.getLogger("kubedrill.refservice")

_CLEANUP_TIMEOUT_S = 0.5  # in-flight work was already drained


def _announce(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def serve(cfg: ServiceConfig) -> int:
    svc = Service(cfg)
    runner = web.AppRunner(
        build_app(svc),
        access_log=log if cfg.access_log else None,
        shutdown_timeout=_CLEANUP_TIMEOUT_S,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, cfg.host, cfg.port)
        await site.start()
        port = int(runner.addresses[0][1])
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        load_failed = asyncio.Event()
        svc.start(load_failed)
        svc.note(f"listening on http://{host}:{port} ({cfg.mode} mode)")
        _announce(
            "listening",
            url=f"http://{host}:{port}",
            port=port,
            pid=svc.identity["pid"],
            mode=cfg.mode,
        )
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(load_failed.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if load_failed.is_set():
            _announce("stopped", reason="load failed", detail=str(svc.load_error))
            return 1
        svc.note(
            f"signal received: draining {svc.rt.in_flight} in-flight request(s), "
            f"up to {cfg.drain_timeout_s:g}s"
        )
        drained = await svc.rt.drain(cfg.drain_timeout_s)
        abandoned = svc.rt.in_flight
        if drained:
            svc.note("drained; stopping")
        else:
            svc.note(f"drain timeout: abandoning {abandoned} request(s) in flight", "warning")
        _announce("stopped", reason="signal", drained=drained, abandoned=abandoned)
        return 0 if drained else 1
    finally:
        await runner.cleanup()
        await svc.close()


def main(argv: Sequence[str] | None = None) -> None:
    cfg = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(serve(cfg)))
