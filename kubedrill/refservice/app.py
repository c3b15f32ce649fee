"""HTTP endpoints of the reference service (aiohttp)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web

from kubedrill.refservice.backends import Backend, BadInput, EmulatedBackend, QueueFull
from kubedrill.refservice.config import ServiceConfig
from kubedrill.refservice.faults import FaultError, Faults, merge_faults
from kubedrill.refservice.ledger import device_ids, writer_id
from kubedrill.refservice.metrics import CONTENT_TYPE, Metrics
from kubedrill.refservice.runtime import OwnEntry, Runtime, process_identity
from kubedrill.timeline import Note, SpoolWriter

__all__ = ["SERVICE", "Service", "build_app", "own_entry"]

log = logging.getLogger("kubedrill.refservice")

_OWN_TTL_POLLS = 5  # own ledger entries expire this many poll intervals after a write
_OWN_TTL_MIN_S = 2.0  # ... and never sooner than this (a busy host wakes the loop late)


def own_entry(cfg: ServiceConfig, env: Mapping[str, str]) -> OwnEntry:
    """What this service writes about itself in a busy-ledger directory."""
    wid = writer_id(env)
    return OwnEntry(
        writer=wid,
        label=f"refservice {wid} pid {os.getpid()}",
        fb_used_mib=cfg.fb_used_mib,
        ttl_s=max(_OWN_TTL_MIN_S, _OWN_TTL_POLLS * cfg.busy_poll_s),
    )


class Service:
    """One service instance: config, state, backend, metrics and its background tasks."""

    def __init__(self, cfg: ServiceConfig, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        devices = device_ids(env)
        if not devices and cfg.mode == "emulated":
            devices = ["0"]  # an emulated pod pretends to hold one GPU
        self.cfg = cfg
        # Emulated pods publish their own share of the device; torch mode's work is real
        # and only a real GPU (and a real DCGM) sees it, so it publishes nothing.
        own = own_entry(cfg, env)
        self.rt = Runtime(
            cfg.faults,
            seed=cfg.seed,
            devices=devices,
            busy_ledger=cfg.busy_ledger,
            own=own if cfg.mode == "emulated" else None,
            slots=cfg.slots,
        )
        self.writer_id = own.writer
        self.metrics = Metrics()
        self.backend: Backend = self._make_backend()
        self.metrics.bind(
            queue_depth=lambda: float(self.backend.queue_depth),
            busy=lambda: self.rt.busy,
            ready=lambda: 0.0 if self.rt.not_ready_reason() else 1.0,
            own_busy=lambda: self.rt.own_busy,
        )
        self.identity = process_identity()
        self.source = f"refservice/{self.identity['host']}/{self.identity['pid']}"
        self._spool = (
            None if cfg.timeline_spool is None else SpoolWriter(cfg.timeline_spool, self.source)
        )
        self.load_error: BaseException | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _make_backend(self) -> Backend:
        observe = self.metrics.batch_size.observe
        if self.cfg.mode == "torch":
            from kubedrill.refservice.torch_backend import TorchBackend  # imports no torch yet

            return TorchBackend(self.cfg, self.rt, observe)
        return EmulatedBackend(self.cfg, self.rt, observe)

    def note(self, text: str, level: Literal["info", "warning", "error"] = "info") -> None:
        """Log, and append a note to the timeline spool when there is one."""
        log.log(logging.WARNING if level != "info" else logging.INFO, "%s", text)
        if self._spool is not None:
            try:
                self._spool.write(Note(f"{self.source}: {text}", level))
            except OSError as e:
                log.warning("timeline spool write failed: %s", e)

    def start(self, on_load_failure: asyncio.Event) -> None:
        """Start loading (startup delay, then the model) and polling the busy ledger."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._load(on_load_failure)))
        if self.cfg.busy_ledger is not None:
            self.rt.poll_once()  # our entry (idle so far) is there from the start
            self._tasks.append(loop.create_task(self.rt.poll_ledger(self.cfg.busy_poll_s)))

    async def _load(self, on_failure: asyncio.Event) -> None:
        try:
            if self.cfg.startup_delay_s > 0:
                await asyncio.sleep(self.cfg.startup_delay_s)
            await self.backend.load()
        except Exception as e:
            log.exception("model load failed")
            self.note(f"model load failed: {e}", "error")
            self.load_error = e
            on_failure.set()
            return
        self.rt.loaded = True
        self.note(f"{self.cfg.mode} model loaded; ready")

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        self.rt.remove_own()  # after the poll stopped, so nothing writes them again
        await self.backend.close()
        if self._spool is not None:
            self._spool.close()
            self._spool = None


SERVICE = web.AppKey("refservice", Service)


def _error(status: int, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status)


async def _read_inputs(request: web.Request) -> object:
    body = await request.read()
    if not body.strip():
        return None
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as e:
        raise BadInput(f"body: expected JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise BadInput("body: expected UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise BadInput('body: expected a JSON object such as {"inputs": [...]}')
    return payload.get("inputs")


async def infer(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    clock = svc.rt.clock
    t0 = clock()
    svc.metrics.in_flight.inc()
    try:
        resp = await _infer(svc, request, t0)
    finally:
        svc.metrics.in_flight.dec()
    svc.metrics.observe(resp.status, clock() - t0)
    return resp


async def _infer(svc: Service, request: web.Request, t0: float) -> web.Response:
    rt = svc.rt
    reason = "draining" if rt.draining else (None if rt.loaded else "loading")
    if reason:
        return _error(503, reason)
    added = 0.0
    rt.begin()
    try:
        try:
            inputs = await _read_inputs(request)
        except BadInput as e:
            return _error(400, str(e))
        if rt.draw_error():
            return _error(500, "injected error")
        added = rt.faults.added_latency_ms / 1000.0
        if added > 0.0:
            await asyncio.sleep(added)
        try:
            result = await svc.backend.infer(inputs)
        except QueueFull:
            return _error(503, "queue full", max_queue=svc.cfg.max_queue)
        except BadInput as e:
            return _error(400, str(e))
        except Exception as e:
            log.exception("inference failed")
            return _error(500, "inference failed", detail=str(e)[:200])
    finally:
        rt.end()
    timings = {k + "_ms": v * 1000.0 for k, v in result.timings_s.items()}
    timings["added_latency_ms"] = added * 1000.0
    timings["total_ms"] = (rt.clock() - t0) * 1000.0
    return web.json_response(
        {
            "outputs": result.outputs,
            "mode": svc.cfg.mode,
            "batch_size": result.batch_size,
            "rows": result.rows,
            "timings": timings,
            **svc.identity,
        }
    )


async def health(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    return web.json_response(
        {
            "status": "ok",
            "mode": svc.cfg.mode,
            "uptime_s": svc.rt.uptime(),
            "epoch_monotonic": svc.rt.epoch,
            **svc.identity,
        }
    )


async def health_gpu(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    rt = svc.rt
    ledger = rt.ledger
    return web.json_response(
        {
            "mode": svc.cfg.mode,
            "devices": rt.devices,
            "busy_fraction": ledger.busy,
            "own_busy_fraction": rt.own_busy,
            "ledger": {
                "path": None if rt.busy_ledger is None else str(rt.busy_ledger),
                "status": ledger.status,
                "detail": ledger.detail,
                "writer_id": svc.writer_id,
                "own_entries": rt.own_entries,
            },
            "queue_depth": svc.backend.queue_depth,
            "in_flight": rt.in_flight,
            **svc.backend.device_info(),
        }
    )


async def ready(request: web.Request) -> web.Response:
    reason = request.app[SERVICE].rt.not_ready_reason()
    if reason:
        return web.json_response({"ready": False, "reason": reason}, status=503)
    return web.json_response({"ready": True})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def faults_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].rt.faults.to_dict())


def _locked(svc: Service) -> web.Response | None:
    if svc.cfg.runtime_faults:
        return None
    return _error(403, "runtime fault changes are disabled (--runtime-faults off)")


async def faults_post(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    if (refused := _locked(svc)) is not None:
        return refused
    try:
        payload = json.loads(await request.read())
    except ValueError as e:
        return _error(400, f"body: expected a JSON object ({e})")
    try:
        svc.rt.faults = merge_faults(svc.rt.faults, payload)
    except FaultError as e:
        return _error(400, str(e), key=e.key, expected=e.expected)
    svc.note(f"faults set: {json.dumps(svc.rt.faults.to_dict())}")
    return web.json_response(svc.rt.faults.to_dict())


async def faults_delete(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    if (refused := _locked(svc)) is not None:
        return refused
    svc.rt.faults = Faults()
    svc.note("faults cleared")
    return web.json_response(svc.rt.faults.to_dict())


def build_app(svc: Service) -> web.Application:
    app = web.Application()
    app[SERVICE] = svc
    app.router.add_post("/v1/infer", infer)
    app.router.add_get("/health", health)
    app.router.add_get("/health/gpu", health_gpu)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/faults", faults_get)
    app.router.add_post("/admin/faults", faults_post)
    app.router.add_delete("/admin/faults", faults_delete)
    return app
