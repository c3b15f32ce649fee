"""The DCGM metrics reader against a real Prometheus scraping an exporter that has only
the basic fields (the default dcgm-exporter CSV: no profiling ratios): busy falls back
to DCGM_FI_DEV_GPU_UTIL, scaled from percent to a ratio, and says so; a signal with no
candidate served says which names it tried."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubedrill.adapters.localprom import run_prometheus, wait_for_series
from kubedrill.adapters.prom import PrometheusClient
from kubedrill.core.settings import PrometheusSettings
from kubedrill.gpujobs import GpuMetricReader
from kubedrill.timeline import MetricSample, Timeline

EXPOSITION = (
    "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
    'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="gpu-0"} 73\n'
    "# TYPE DCGM_FI_DEV_FB_USED gauge\n"
    'DCGM_FI_DEV_FB_USED{gpu="0",Hostname="gpu-0"} 2048\n'
)


class Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = EXPOSITION.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_busy_falls_back_to_gpu_util_and_records_ratios() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        with run_prometheus({"dcgm": [target]}, interval_s=0.5) as prom:
            wait_for_series(prom.url, "DCGM_FI_DEV_GPU_UTIL")
            time.sleep(1.0)
            client = PrometheusClient(PrometheusSettings(url=prom.url, step_s=0.5, timeout_s=3))
            reader = GpuMetricReader(client)
            now = time.time()
            busy = reader.read("gpu_busy", now - 3, now, labels={"gpu": "0"})
            assert busy.source == "DCGM_FI_DEV_GPU_UTIL", busy.describe()
            assert (
                busy.tried[0] == "DCGM_FI_PROF_GR_ENGINE_ACTIVE" and "fallback" in busy.describe()
            )
            values = [v for s in busy.series for _, v in s.points]
            assert values and all(abs(v - 0.73) < 1e-9 for v in values)
            sm = reader.read("sm_active", now - 3, now)
            assert sm.source is None and "DCGM_FI_PROF_SM_ACTIVE" in sm.describe()
            tl = Timeline()
            assert reader.record(tl, busy) == len(values)
            sample = tl.select(MetricSample)[0].data
            assert sample.name == "gpu.gpu_busy"
            assert sample.labels["dcgm_field"] == "DCGM_FI_DEV_GPU_UTIL"
    finally:
        server.shutdown()
        server.server_close()
