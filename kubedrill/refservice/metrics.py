"""The service's Prometheus metrics, in a registry of its own (never the global one)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["BATCH_BUCKETS", "CONTENT_TYPE", "LATENCY_BUCKETS", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: dense around typical GPU inference times (5 to 250 ms), wide enough for stalls.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
    0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """``refservice_*`` metrics of one service instance."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.duration = Histogram(
            "refservice_request_duration_seconds",
            "Time to answer POST /v1/infer, from arrival to response, every status code.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "refservice_requests",
            "POST /v1/infer requests answered, by HTTP status code.",
            ["code"],
            registry=r,
        )
        self.in_flight = Gauge(
            "refservice_requests_in_flight",
            "POST /v1/infer requests being handled (queued or in service).",
            registry=r,
        )
        self.queue_depth = Gauge(
            "refservice_queue_depth", "Requests waiting for GPU capacity.", registry=r
        )
        self.batch_size = Histogram(
            "refservice_batch_size",
            "Requests per batch run on the device (1 per request in emulated mode).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.gpu_busy = Gauge(
            "refservice_gpu_busy_ratio",
            "Fraction of the device taken by others, from the busy ledger (0 without one).",
            registry=r,
        )
        self.gpu_own_busy = Gauge(
            "refservice_gpu_own_busy_ratio",
            "Fraction of the device's time taken by this service's own work over the last "
            "busy-ledger poll, as published in its ledger entry (0 when it publishes none).",
            registry=r,
        )
        self.ready = Gauge("refservice_ready", "1 when GET /ready answers 200.", registry=r)

    def bind(
        self,
        queue_depth: Callable[[], float],
        busy: Callable[[], float],
        ready: Callable[[], float],
        own_busy: Callable[[], float] | None = None,
    ) -> None:
        """Read the live gauges from the service at scrape time."""
        self.queue_depth.set_function(queue_depth)
        self.gpu_busy.set_function(busy)
        self.ready.set_function(ready)
        if own_busy is not None:
            self.gpu_own_busy.set_function(own_busy)

    def observe(self, code: int, duration_s: float) -> None:
        self.requests.labels(code=str(code)).inc()
        self.duration.observe(duration_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
