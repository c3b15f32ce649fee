"""Load benchmark (``make bench-load``): prints the figures and writes reports/bench/load.json.

Bars (issue 4):

* ``co_p95_error_pct``, ``co_p99_error_pct`` ≤ 10: the open model's p95/p99 against the
  reference service (emulated, 10 ms service time, a 1 s stall every 10 s) at 100 req/s
  for 60 s, versus the values derived from the stall schedule. Plain Locust's closed
  model is run beside it on the same service during the same stalls
  (``plain_locust_p95_ms``/``plain_locust_p99_ms``).
  The CO figures count only when the open-model run completed with nothing dropped;
  otherwise they are null, with the run's outcome and dropped count as the reason.
* ``runner_vs_plain_locust_ratio`` ≥ 0.9: requests per second of ``kubedrill load``'s
  runner (HDR recording on) vs plain ``locust --headless`` with the same FastHttpUser
  locustfile, same users, same endpoint, alternated in one run (median of the pairs; the
  ratio of the means is reported beside it). The pair must measure the generators, not
  the server: it runs against a fixed-200 keep-alive target on loopback (nginx when
  installed, else a small asyncio server in its own process), whose ceiling ``wrk``
  measures before and after the pairs (``target_ceiling_rps``: the lower of the two).
  ``headroom_x`` = ceiling / the fastest generator run; below 3 the pair is marked
  ``pair_valid: false`` and the bar fails.
  ``runner_cpu_us_per_req`` / ``plain_locust_cpu_us_per_req``: user + sys CPU of each
  generator's process group (``getrusage(RUSAGE_CHILDREN)`` around the run: the group
  leader and the children it reaped), per completed request. ``wrk_rps`` is wrk against
  the emulated reference service, which capped the pair before (for comparison only).
* ``rate_accuracy_pct`` ≤ 2: achieved arrival rate vs 500 req/s.

The machine may be shared: each part records ``os.getloadavg()`` before and after.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubedrill.load import LoadSpec, run_load, summarize
from kubedrill.load.spec import REFERENCE_LOCUSTFILE
from kubedrill.refservice.testing import run_service

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench" / "load.json"
PAYLOAD = '{"inputs": [[0.1, 0.2, 0.3, 0.4]]}'
MIN_HEADROOM_X = 3.0


# ----------------------------------------------------------------- analytic CO figures
def stall_left(t: float, every: float, length: float) -> float:
    """The reference service's schedule: stalls [k·every, k·every + length), k ≥ 1."""
    if t < every:
        return 0.0
    phase = math.fmod(t, every)
    return length - phase if phase < length else 0.0


def simulate(rate: float, duration: float, service: float, every: float, length: float,
             slots: int, offset: float) -> list[float]:  # fmt: skip
    """Exact latencies of the open model against the emulated service: arrivals every
    1/rate from ``offset`` (service clock); FIFO ``slots``; a request waits out a stall
    before and after its service time, holding its slot."""
    free = [0.0] * slots  # when each slot frees up (a heap: FIFO takes the earliest)
    out = []
    for k in range(round(rate * duration)):
        a = offset + k / rate
        start = max(a, heapq.heappop(free))
        begin = start + stall_left(start, every, length)
        done = begin + service
        done += stall_left(done, every, length)
        heapq.heappush(free, done)
        out.append(done - a)
    return sorted(out)


def nearest_rank(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def analytic(rate: float, duration: float, service: float, every: float, length: float,
             slots: int) -> dict[str, Any]:  # fmt: skip
    """p95/p99 from the stall schedule.

    A request arriving ``u`` into a stall waits ``(length - u) + service``; over whole
    periods a fraction ``length/every`` of arrivals does, so the naive form is
    ``p_q = length + service - (1 - q)·every`` (510 / 910 ms for the bench). The reference
    service also holds back answers of requests still in service when a stall opens, so
    arrivals in the ``service`` before each stall wait too: ``p_q = length + 2·service -
    (1 - q)·every`` (520 / 920 ms). The exact simulation of the service (FIFO slots, stall
    wait before and after the service time) is the reference; it is computed for ten
    phases of the run against the stall schedule to show the figures do not depend on it.
    """
    naive = {f"p{q}": (length + service - (1 - q / 100) * every) * 1000 for q in (95, 99)}
    closed = {f"p{q}": (length + 2 * service - (1 - q / 100) * every) * 1000 for q in (95, 99)}
    sims: dict[str, list[float]] = {"p95": [], "p99": []}
    for j in range(10):  # run start at 10 phases of the stall period (after the first stall)
        lat = simulate(rate, duration, service, every, length, slots, every + j * every / 10)
        for q in (95, 99):
            sims[f"p{q}"].append(nearest_rank(lat, q) * 1000)
    return {
        "naive_ms": naive,
        "closed_form_ms": closed,
        "simulated_ms": {k: statistics.mean(v) for k, v in sims.items()},
        "simulated_range_ms": {k: [min(v), max(v)] for k, v in sims.items()},
    }


# ------------------------------------------------------------------------ plain Locust
def plain_locust(url: str, users: int, seconds: int, workdir: Path, user_rps: float = 0.0,
                 tag: str = "plain") -> subprocess.Popen[bytes]:  # fmt: skip
    """Plain ``locust --headless`` (no spool: no kubedrill recording) with --csv stats."""
    cmd = [sys.executable, "-m", "locust", "-f", str(REFERENCE_LOCUSTFILE), "--headless",
           "--host", url, "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s",
           "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "0",
           "--csv", str(workdir / tag)]  # fmt: skip
    if user_rps:
        cmd += ["--kd-user-rps", f"{user_rps:g}"]
    with (workdir / f"{tag}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def locust_stats(prefix: Path) -> dict[str, float]:
    """The Aggregated row of Locust's ``<prefix>_stats.csv``."""
    with Path(f"{prefix}_stats.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {"count": float(row["Request Count"]), "rps": float(row["Requests/s"]),
            "p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"]), "max_ms": float(row["100%"])}  # fmt: skip


# ------------------------------------------------------------- fixed-response target
NGINX_CONF = """worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type application/json;
        location / {{ return 200 '{{"outputs": [[0.5]]}}'; }}
    }}
}}
"""

# A fixed 200 with keep-alive, for when nginx is not installed (argv: port, lifetime s).
ASYNCIO_TARGET = r"""
import asyncio, sys
BODY = b'{"outputs": [[0.5]]}'
RESP = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: keep-alive\r\n\r\n%s" % (len(BODY), BODY))
class Fixed(asyncio.Protocol):
    def connection_made(self, transport):
        self.t, self.buf = transport, b""
    def data_received(self, data):
        self.buf += data
        if len(self.buf) > 1 << 16:
            self.t.close()
            return
        for _ in range(1000):  # requests pipelined in one read: bounded
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            n = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            if len(rest) < n:
                return
            self.buf = rest[n:]
            self.t.write(RESP)
async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Fixed, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with srv:
        await asyncio.sleep(float(sys.argv[2]))
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fixed_target(workdir: Path, lifetime_s: float, which: str = "auto"
                 ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """A loopback HTTP target answering every request with a fixed 200 (keep-alive), in its
    own process group: nginx (1 worker) when installed (``which`` "auto" or "nginx"), else
    an asyncio server. ``timeout`` bounds its life even if this process dies."""
    port = free_port()
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if which == "nginx" and not nginx:
        raise RuntimeError("--target nginx: nginx is not installed (apt-get install nginx)")
    if nginx and which != "asyncio":
        prefix = workdir / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=port))
        server = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
                  "-g", "daemon off;"]  # fmt: skip
        kind = "nginx (1 worker, return 200)"
    else:
        server = [sys.executable, "-c", ASYNCIO_TARGET, str(port), f"{lifetime_s:g}"]
        kind = "asyncio fixed-200 server (1 process)"
    cmd = ["timeout", "-k", "5", f"{lifetime_s:g}", *server]
    with (workdir / "target.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:  # bounded by the deadline
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (workdir / "target.log").read_text(errors="replace")
                    raise RuntimeError(f"target {kind} did not start: {log_text[-500:]}") from None
                time.sleep(0.1)
        yield {"url": f"http://127.0.0.1:{port}", "kind": kind, "pid": proc.pid}
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=5)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        proc.wait(timeout=5)


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------------------ parts
def part_co(workdir: Path, seconds: int) -> dict[str, Any]:
    rate, service, every, length, slots = 100.0, 0.010, 10.0, 1.0, 256
    before = load_avg()
    stall = ["--stall-every-s", f"{every:g}", "--stall-for-s", f"{length:g}"]
    with run_service(mode="emulated", slots=slots, service_time_ms=service * 1000,
                     extra_args=stall) as svc:  # fmt: skip
        t_service = time.monotonic()
        # start in the periodic regime (the first stall opens `every` s after start)
        time.sleep(max(0.0, t_service + every - 2.0 - time.monotonic()))
        plain = plain_locust(svc.url, 10, seconds, workdir, user_rps=rate / 10, tag="co_plain")
        ours = run_load(LoadSpec(url=svc.url, rate=rate, duration=seconds, request_timeout_s=5),
                        workdir=workdir)  # fmt: skip
        plain.wait(timeout=seconds + 60)
    s = ours.summary
    ref = analytic(rate, seconds, service, every, length, slots)
    want = ref["simulated_ms"]
    closed = locust_stats(workdir / "co_plain")
    p95, p99 = s.percentile("p95"), s.percentile("p99")
    # the CO figures count only for a run that completed with nothing dropped: a dropped
    # send is not in the histogram, so its wait is missing from the percentiles
    if ours.outcome != "completed" or s.dropped or p95 is None or p99 is None:
        co_null_reason: str | None = (
            f"run outcome {ours.outcome}, {s.dropped} dropped of {s.intended} intended, "
            f"{s.count} completed: CO figures need a completed run with nothing dropped"
        )
        err95 = err99 = None
    else:
        co_null_reason = None
        err95 = abs(p95 - want["p95"]) / want["p95"] * 100
        err99 = abs(p99 - want["p99"]) / want["p99"] * 100
    return {
        "outcome": ours.outcome,
        "requests": s.count, "intended": s.intended, "dropped": s.dropped, "errors": s.errors,
        "p50_ms": s.percentile("p50"), "p95_ms": p95, "p99_ms": p99,
        "max_ms": s.percentile("max"),
        "analytic": ref,
        "co_p95_error_pct": err95, "co_p99_error_pct": err99,
        "co_null_reason": co_null_reason,
        "plain_locust": closed,
        "plain_locust_p95_ms": closed["p95_ms"], "plain_locust_p99_ms": closed["p99_ms"],
        "loadavg": {"before": before, "after": load_avg()},
    }  # fmt: skip


def part_throughput(workdir: Path, seconds: int, users: int, rounds: int,
                    target: str = "auto") -> dict[str, Any]:  # fmt: skip
    """Alternate plain Locust and the runner (A B, B A, …) so drift in the machine's load
    hits both alike; RPS of both from Locust's own stats (the same formula). The target is
    a fixed-200 server whose wrk ceiling must be at least MIN_HEADROOM_X times the generators' rate,
    so the pair compares generators, not a server cap."""
    before = load_avg()
    plain_rps: list[float] = []
    ours_rps: list[float] = []
    ours_hdr_rps: list[float] = []
    cpu_us: dict[str, list[float]] = {"plain": [], "ours": []}
    engine_cpu_us: list[float] = []

    def children_cpu() -> float:
        # user + sys of reaped children: the generator's group leader is the only child
        # reaped in its window, and it brings the CPU of the children it reaped
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    def self_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def plain(r: int) -> None:
        cpu0 = children_cpu()
        p = plain_locust(tgt["url"], users, seconds, workdir, tag=f"tp_plain{r}")
        p.wait(timeout=seconds + 60)
        stats = locust_stats(workdir / f"tp_plain{r}")
        plain_rps.append(stats["rps"])
        cpu_us["plain"].append((children_cpu() - cpu0) / stats["count"] * 1e6)

    def ours(r: int) -> None:
        spec = LoadSpec(url=tgt["url"], users=users, duration=seconds,
                        extra_args=("--csv", str(workdir / f"tp_ours{r}")))  # fmt: skip
        cpu0, self0 = children_cpu(), self_cpu()
        res = run_load(spec, workdir=workdir)
        stats = locust_stats(workdir / f"tp_ours{r}")
        ours_rps.append(stats["rps"])
        cpu_us["ours"].append((children_cpu() - cpu0) / stats["count"] * 1e6)
        engine_cpu_us.append((self_cpu() - self0) / stats["count"] * 1e6)
        full = [w for w in res.per_window() if abs(w.duration - 1.0) < 1e-6]
        ours_hdr_rps.append(sum(w.count for w in full) / max(1, len(full)))

    lifetime = 120 + rounds * 2 * (seconds + 90)
    with fixed_target(workdir, lifetime, target) as tgt:
        ceiling = run_wrk(tgt["url"], users, workdir)
        for r in range(rounds):
            for step in (plain, ours) if r % 2 == 0 else (ours, plain):
                step(r)
        ceiling_after = run_wrk(tgt["url"], users, workdir)
    with run_service(mode="emulated", slots=1024, service_time_ms=0) as svc:
        wrk = run_wrk(svc.url, users, workdir)  # the reference service's ceiling: comparison
    fastest = max(plain_rps + ours_rps)
    ceilings = [c for c in (ceiling, ceiling_after) if c is not None]
    target_ceiling = min(ceilings) if ceilings else None
    headroom = target_ceiling / fastest if target_ceiling and fastest > 0 else None
    if headroom is None:
        reason = "no target ceiling: wrk is not installed or printed no Requests/sec"
    elif headroom < MIN_HEADROOM_X:
        reason = (f"target ceiling {target_ceiling:.0f} req/s is only {headroom:.2f} times the "
                  f"fastest generator run ({fastest:.0f} req/s); need {MIN_HEADROOM_X:g}: "
                  "the pair may be server-bound")  # fmt: skip
    else:
        reason = None
    return {
        "users": users, "seconds": seconds, "rounds": rounds, "order": "ABBA…",
        "target": tgt["kind"], "target_url": tgt["url"],
        # the lower of wrk's runs before and after the pairs (same connections as users)
        "target_ceiling_rps": target_ceiling,
        "target_ceiling_runs_rps": [ceiling, ceiling_after],
        "headroom_x": headroom,
        "pair_valid": reason is None, "pair_invalid_reason": reason,
        "plain_locust_rps": plain_rps, "runner_rps": ours_rps,
        "runner_hdr_rps": ours_hdr_rps,
        # the median of the side-by-side pairs: one burst of load from elsewhere on the
        # machine during one run must not decide the figure (the ratio of means is kept too)
        "runner_vs_plain_locust_ratio": statistics.median(
            o / p for o, p in zip(ours_rps, plain_rps, strict=True)
        ),
        "ratio_of_means": statistics.mean(ours_rps) / statistics.mean(plain_rps),
        "pair_ratios": [o / p for o, p in zip(ours_rps, plain_rps, strict=True)],
        # CPU per completed request of each generator's process group (user + sys)
        "plain_locust_cpu_us_per_req": statistics.mean(cpu_us["plain"]),
        "runner_cpu_us_per_req": statistics.mean(cpu_us["ours"]),
        "plain_locust_cpu_us_per_req_runs": cpu_us["plain"],
        "runner_cpu_us_per_req_runs": cpu_us["ours"],
        # the engine's own CPU (this process: spool ingestion into the timeline), not in
        # the runner's figure above
        "runner_engine_cpu_us_per_req": statistics.mean(engine_cpu_us),
        "wrk_rps": wrk,
        "loadavg": {"before": before, "after": load_avg()},
    }  # fmt: skip


def run_wrk(url: str, connections: int, workdir: Path, seconds: int = 10) -> float | None:
    """wrk's Requests/sec for the same POST as the locustfile, or None without wrk."""
    if shutil.which("wrk") is None:
        return None
    script = workdir / "post.lua"
    script.write_text(f"wrk.method = 'POST'\nwrk.body = '{PAYLOAD}'\n"
                      "wrk.headers['Content-Type'] = 'application/json'\n")  # fmt: skip
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
           f"{url}/v1/infer"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    m = re.search(r"Requests/sec:\s*([\d.]+)", out.stdout)
    return float(m.group(1)) if m else None


def part_rate(workdir: Path, seconds: int, rate: float) -> dict[str, Any]:
    before = load_avg()
    with run_service(mode="emulated", slots=64, service_time_ms=10) as svc:
        res = run_load(LoadSpec(url=svc.url, rate=rate, duration=seconds, request_timeout_s=5),
                       workdir=workdir)  # fmt: skip
    full = [w for w in res.per_window() if abs(w.duration - 1.0) < 1e-6]
    achieved = sum(w.count for w in full) / sum(w.duration for w in full)
    per = [w.count / w.duration for w in full]
    s = summarize(res.windows)
    return {
        "outcome": res.outcome, "target_rps": rate, "seconds": seconds,
        "intended": s.intended, "sent": s.sent, "completed": s.count, "dropped": s.dropped,
        "achieved_rps": achieved, "per_window_rps_min": min(per), "per_window_rps_max": max(per),
        "rate_accuracy_pct": abs(achieved - rate) / rate * 100,
        "p50_ms": s.percentile("p50"), "p99_ms": s.percentile("p99"),
        "loadavg": {"before": before, "after": load_avg()},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs, to try the script")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--target", choices=("auto", "nginx", "asyncio"), default="auto",
                    help="fixed-200 target of the runner-vs-Locust pair (auto: nginx if "
                         "installed, else the asyncio server)")  # fmt: skip
    a = ap.parse_args(argv)
    co_s, tp_s, rate_s = (20, 8, 10) if a.quick else (60, 15, 30)
    workdir = Path(tempfile.mkdtemp(prefix="kubedrill-bench-load-"))
    started = time.time()
    doc: dict[str, Any] = {"kind": "kubedrill.bench.load", "quick": a.quick,
                           "cpus": os.cpu_count(), "loadavg_start": load_avg()}  # fmt: skip
    doc["co"] = part_co(workdir, co_s)
    doc["throughput"] = part_throughput(workdir, tp_s, users=32, rounds=2 if a.quick else 4,
                                        target=a.target)  # fmt: skip
    doc["rate"] = part_rate(workdir, rate_s, 500.0)
    co, tp, rt = doc["co"], doc["throughput"], doc["rate"]
    doc["figures"] = {
        "co_p95_error_pct": co["co_p95_error_pct"], "co_p99_error_pct": co["co_p99_error_pct"],
        "co_run_outcome": co["outcome"], "co_run_dropped": co["dropped"],
        "co_null_reason": co["co_null_reason"],
        "co_p95_ms": co["p95_ms"], "co_p99_ms": co["p99_ms"],
        "analytic_p95_ms": co["analytic"]["simulated_ms"]["p95"],
        "analytic_p99_ms": co["analytic"]["simulated_ms"]["p99"],
        "plain_locust_p95_ms": co["plain_locust_p95_ms"],
        "plain_locust_p99_ms": co["plain_locust_p99_ms"],
        "runner_vs_plain_locust_ratio": tp["runner_vs_plain_locust_ratio"],
        "runner_vs_plain_locust_ratio_of_means": tp["ratio_of_means"],
        "runner_rps": statistics.mean(tp["runner_rps"]),
        "plain_locust_rps": statistics.mean(tp["plain_locust_rps"]),
        "pair_valid": tp["pair_valid"], "pair_invalid_reason": tp["pair_invalid_reason"],
        "pair_target": tp["target"],
        "target_ceiling_rps": tp["target_ceiling_rps"], "headroom_x": tp["headroom_x"],
        "plain_locust_cpu_us_per_req": tp["plain_locust_cpu_us_per_req"],
        "runner_cpu_us_per_req": tp["runner_cpu_us_per_req"],
        "runner_engine_cpu_us_per_req": tp["runner_engine_cpu_us_per_req"],
        "wrk_rps": tp["wrk_rps"],
        "rate_accuracy_pct": rt["rate_accuracy_pct"], "achieved_rps": rt["achieved_rps"],
    }  # fmt: skip
    f = doc["figures"]
    doc["bars"] = {  # a null figure (run not valid) fails its bar
        "co_p95_error_pct<=10": f["co_p95_error_pct"] is not None and f["co_p95_error_pct"] <= 10,
        "co_p99_error_pct<=10": f["co_p99_error_pct"] is not None and f["co_p99_error_pct"] <= 10,
        "runner_vs_plain_locust_ratio>=0.9": f["pair_valid"]
        and f["runner_vs_plain_locust_ratio"] >= 0.9,
        "rate_accuracy_pct<=2": f["rate_accuracy_pct"] <= 2,
    }
    doc["loadavg_end"] = load_avg()
    doc["elapsed_s"] = round(time.time() - started, 1)
    doc["workdir"] = str(workdir)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2) + "\n")
    width = max(len(k) for k in f)
    for k, v in f.items():
        print(f"{k:<{width}}  {v:.2f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    for k, ok in doc["bars"].items():
        print(f"bar {k}: {'PASS' if ok else 'FAIL'}")
    print(f"cpus {doc['cpus']}; loadavg start {doc['loadavg_start']} end {doc['loadavg_end']}; "
          f"elapsed {doc['elapsed_s']}s → {a.out}")  # fmt: skip
    return 0 if all(doc["bars"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
