"""The pod runner: the kubelet of process-backed pods, and the sandbox's kube-proxy.

kwok plays the kubelet for every pod except those labelled ``kubedrill.io/process=true``
(kwok-controller runs with ``--disregard-status-with-label-selector`` on that label).
For those, this process, started by ``kubedrill sandbox up``:

- starts the first container's command as a local process once the pod is bound to a
  node, on a free loopback port (``$PORT``), with GPU device ids for ``nvidia.com/gpu``;
- writes the pod's status as a kubelet would: Running, a pod IP, Ready gated on the
  readiness probe, restart counts, back-off, Succeeded/Failed per ``restartPolicy``;
- on deletion sends SIGTERM, waits ``terminationGracePeriodSeconds``, then SIGKILL, and
  only then removes the pod (grace 0, uid precondition);
- writes the process group's real CPU and memory use into ``kwok.x-k8s.io/usage-cpu``
  and ``usage-memory``, where kwok's metrics (hence metrics-server, hence the HPA) read them;
- keeps Prometheus file-SD target lists: every running pod (labels namespace, pod,
  node) and one DCGM exporter per GPU node (served here, see :mod:`kubedrill.sandbox.dcgm`);
- proxies every Service with a selector on a loopback port to its ready endpoints (from
  the EndpointSlice controller), and writes that URL into the Service's
  ``kubedrill.io/local-url`` annotation.

Run as ``python -m kubedrill.sandbox.podrunner --dir <sandbox folder>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubedrill.adapters.kube import ApiFailed, KubeAdapter
from kubedrill.adapters.listwatch import ListWatch
from kubedrill.sandbox.config import SandboxPaths
from kubedrill.sandbox.kubeletlogs import logs_doc
from kubedrill.sandbox.podproc import POD_MARKER_ENV, PodProcess, cpu_and_rss_by_group
from kubedrill.sandbox.podspec import (
    GPU_DEVICES_ANNOTATION,
    PROCESS_LABEL,
    ProcessSpec,
    SpecError,
    parse_pod,
)
from kubedrill.sandbox.podstatus import Events, status_patch
from kubedrill.sandbox.procs import free_ports
from kubedrill.sandbox.runnerhttp import RunnerHttp, write_json
from kubedrill.sandbox.state import State
from kubedrill.sandbox.svcproxy import ServiceProxy

__all__ = ["LOCAL_URL_ANNOTATION", "Runner", "main"]

LOCAL_URL_ANNOTATION = "kubedrill.io/local-url"
# a new value (any nonce) SIGKILLs the pod's process, which restarts by restartPolicy: the
# "container crash" of kubedrill's pod_kill action (kubedrill/chaos/pod_kill.py)
CRASH_ANNOTATION = "sandbox.kubedrill.io/crash"
_POLL_S = 0.5  # process exits and readiness probes: local work, no API request
_USAGE_S = 2.0
_SERVICES_S = 10.0  # a full service sync without a change seen, as a safety net


class Cache:
    """Objects of one kind kept current by a list+watch (a small informer): the runner
    reads them instead of listing every tick, and ``wake`` tells it something changed."""

    def __init__(self, wake: threading.Event) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.wake = wake

    @staticmethod
    def key(obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def replace(self, items: list[dict[str, Any]]) -> None:
        with self.lock:
            self.items = {self.key(o): o for o in items}
        self.synced.set()
        self.wake.set()

    def apply(self, event: str, obj: Mapping[str, Any]) -> None:
        with self.lock:
            if event == "DELETED":
                self.items.pop(self.key(obj), None)
            else:
                self.items[self.key(obj)] = dict(obj)
        self.wake.set()

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.items.values())


class Runner:
    def __init__(self, state: State) -> None:
        self.state = state
        self.paths = state.paths
        self.api: KubeAdapter = state.api()
        self.events = Events(self.api)
        self.pods: dict[str, PodProcess] = {}  # "ns/name" -> process
        self.failed_specs: set[str] = set()  # uids already reported as unrunnable
        cfg = state.config
        self.gpu_nodes = {f"gpu-{i}": cfg.gpus_per_node for i in range(cfg.gpu_nodes)}
        self.nodes = set(self.gpu_nodes) | {f"cpu-{i}" for i in range(cfg.cpu_nodes)}
        self.taken: dict[str, dict[str, str]] = {n: {} for n in self.gpu_nodes}  # dev -> pod
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")
        self.proxy = ServiceProxy()
        self.http = RunnerHttp(state, self.gpu_nodes)
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.pod_cache, self.svc_cache, self.slice_cache = (Cache(self.wake) for _ in range(3))
        self._services_dirty = True
        self._next_usage = 0.0
        self._next_services = 0.0
        self._published: dict[str, str] = {}
        self._targets_written = ""
        base = dict(os.environ)
        bindir = str(Path(sys.executable).parent)  # `python` in a command is our venv's
        base["PATH"] = f"{bindir}{os.pathsep}{base.get('PATH', '')}"
        self.base_env = base

    # -- the loop ---------------------------------------------------------------

    def _watch(self, kind: str, cache: Cache, label_selector: str | None = None) -> None:
        def changed(event: str, obj: Mapping[str, Any]) -> None:
            cache.apply(event, obj)
            if cache is not self.pod_cache:
                self._services_dirty = True

        def listed(items: list[dict[str, Any]]) -> None:
            cache.replace(items)
            self._services_dirty = True

        ListWatch(
            self.api, kind, None,
            on_sync=listed, on_event=changed,
            on_first_error=lambda _e: False,  # keep trying: the runner starts with the API
            on_error=lambda d: print(f"pod-runner: watch {kind}: {d}", file=sys.stderr, flush=True),
            stop=self.stopping, timeout_s=60, label_selector=label_selector,
        ).start(f"pod-runner-watch-{kind}")  # fmt: skip

    def run(self) -> None:
        self.http.start()
        self._write_dcgm_targets()
        self._watch("Pod", self.pod_cache, f"{PROCESS_LABEL}=true")
        self._watch("Service", self.svc_cache)
        self._watch("EndpointSlice", self.slice_cache)
        while not self.stopping.is_set():
            t0 = time.monotonic()
            self.wake.clear()
            try:
                self.tick()
            except ApiFailed as e:
                print(f"pod-runner: {e}", file=sys.stderr, flush=True)
            except Exception:  # noqa: BLE001 - a kubelet outlives a bad tick; logged, retried
                traceback.print_exc(file=sys.stderr)
                sys.stderr.flush()
            # a watched change wakes the loop at once; otherwise it supervises at _POLL_S
            self.wake.wait(max(0.02, _POLL_S - (time.monotonic() - t0)))
            if self.stopping.is_set():
                break
        self.shutdown()

    def tick(self) -> None:
        if not self.pod_cache.synced.is_set():
            return
        seen: set[str] = set()
        for pod in self.pod_cache.snapshot():
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            seen.add(key)
            self._reconcile(key, pod)
        for key in [k for k in self.pods if k not in seen]:  # removed without us (force)
            self._forget(key, self.pods[key], grace_s=0.5)
        for key, pp in list(self.pods.items()):
            self._supervise(key, pp)
        now = time.monotonic()
        if now >= self._next_usage:
            self._next_usage = now + _USAGE_S
            self._report_usage()
            self._write_pod_targets()
        if (self._services_dirty and self.svc_cache.synced.is_set()) or now >= self._next_services:
            self._services_dirty = False
            self._next_services = now + _SERVICES_S
            self._sync_services()

    def _reconcile(self, key: str, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        node = spec.get("nodeName")
        pp = self.pods.get(key)
        if pp is not None and pp.spec.key.uid != meta.get("uid"):  # same name, new pod
            self._forget(key, pp, grace_s=0.5)
            pp = None
        if meta.get("deletionTimestamp"):
            self._delete(key, pod, pp)
            return
        crash = str((meta.get("annotations") or {}).get(CRASH_ANNOTATION) or "")
        if pp is not None and crash and crash != pp.crash_seen:  # a new crash request
            pp.crash_seen = crash
            self.events.pod(pod, "Killing", "container crash injected (SIGKILL)", warning=True)
            pp.crash()
        if pp is not None or not node or node not in self.nodes:
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return
        try:
            ps = parse_pod(pod)
        except SpecError as e:
            if meta.get("uid") not in self.failed_specs:
                self.failed_specs.add(str(meta.get("uid")))
                self.events.pod(pod, "Failed", str(e), warning=True)
            return
        self._start_new(key, ps, pod)

    def _start_new(self, key: str, ps: ProcessSpec, pod: dict[str, Any]) -> None:
        devices = self._allocate(ps)
        if devices is None:
            self.events.pod(pod, "UnexpectedAdmissionError", "no free GPU device", warning=True)
            return
        ledger = self.paths.dir / "gpus" / ps.node if ps.node in self.gpu_nodes else None
        if ledger is not None:
            ledger.mkdir(parents=True, exist_ok=True)
        port = free_ports(1)[0]
        log = self.paths.dir / "pods" / ps.key.namespace / ps.key.name / f"{ps.container}.log"
        pp = PodProcess(ps, port, devices, ledger, log, self.base_env, str(self.paths.dir))
        # a crash asked for before this process existed is not a crash of it
        pp.crash_seen = str((pod["metadata"].get("annotations") or {}).get(CRASH_ANNOTATION) or "")
        self.pods[key] = pp
        if devices:
            self._write_assignments(ps.node)
            with contextlib.suppress(ApiFailed):
                self.api.patch(
                    "Pod", ps.key.namespace, ps.key.name,
                    {"metadata": {"annotations": {GPU_DEVICES_ANNOTATION: ",".join(devices)}}},
                )  # fmt: skip
        pp.start()
        self._publish_logs(pp)
        if pp.proc is None:
            self.events.pod(pod, "Failed", f"could not start {ps.command[0]!r}", warning=True)
        else:
            self.events.pod(pod, "Started", f"Started process {pp.proc.pid} on port {port}")
        self._patch_status(pp)

    def _allocate(self, ps: ProcessSpec) -> tuple[str, ...] | None:
        if ps.gpus == 0:
            return ()
        taken = self.taken.get(ps.node)
        if taken is None:
            return None
        free = [str(i) for i in range(self.gpu_nodes[ps.node]) if str(i) not in taken]
        if len(free) < ps.gpus:
            return None
        chosen = tuple(free[: ps.gpus])
        for d in chosen:
            taken[d] = str(ps.key)
        return chosen

    def _release(self, pp: PodProcess) -> None:
        taken = self.taken.get(pp.spec.node)
        if taken is None or not pp.devices:
            return
        for d in pp.devices:
            taken.pop(d, None)
        self._write_assignments(pp.spec.node)

    def _write_assignments(self, node: str) -> None:
        doc: dict[str, dict[str, str]] = {}
        for dev, owner in self.taken[node].items():
            ns, name = owner.split("/", 1)
            container = self.pods[owner].spec.container if owner in self.pods else ""
            doc[dev] = {"namespace": ns, "pod": name, "container": container}
        write_json(self.paths.dir / "gpus" / node / "assignments.json", doc)

    def _supervise(self, key: str, pp: PodProcess) -> None:
        if pp.terminating_until is not None:
            return
        code = pp.check_exit()
        if code is not None:
            restart = pp.should_restart(code)
            if restart:
                wait = pp.schedule_restart()
                self.events.pod_key(
                    pp, "BackOff", f"process exited {code}; restarting in {wait:g}s", True
                )
            else:
                pp.finished = True
            self._patch_status(pp)
            return
        if pp.proc is None and not pp.finished and time.monotonic() >= pp.backoff_until:
            pp.restart_count += 1
            pp.start()
            self._publish_logs(pp)
            self._patch_status(pp)
            return
        changed = pp.poll_readiness(self.pool)
        if changed is not None:
            if not changed:
                self.events.pod_key(pp, "Unhealthy", "Readiness probe failed", True)
            self._patch_status(pp)

    def _publish_logs(self, pp: PodProcess) -> None:
        """kwok's Logs object for the pod: `pods/log` through the API server (kubeletlogs)."""
        k, n = pp.spec.key, pp.restart_count
        doc = logs_doc(k.namespace, k.name, k.uid, pp.spec.container, pp.cri_log(n),
                       pp.cri_log(n - 1) if n > 0 else None)  # fmt: skip
        with contextlib.suppress(ApiFailed):  # KindNotServed: a sandbox made before Logs
            self.api.apply(doc)

    def _patch_status(self, pp: PodProcess) -> None:
        try:
            k = pp.spec.key
            self.api.patch("Pod", k.namespace, k.name, status_patch(pp), "merge", "status")
        except ApiFailed as e:
            if e.status != 404:
                raise

    def _delete(self, key: str, pod: dict[str, Any], pp: PodProcess | None) -> None:
        meta = pod["metadata"]
        if pp is not None and pp.terminating_until is None:
            grace = meta.get("deletionGracePeriodSeconds")
            grace_s = float(grace) if isinstance(grace, int | float) else pp.spec.grace_s
            if pp.running:
                self.events.pod(pod, "Killing", f"Stopping process (grace {grace_s:g}s)")
            # Out of the Service proxies first, then SIGTERM. A real cluster does both at
            # about the same time (kube-proxy often a second later): see docs/sandbox.md.
            pp.terminating_until = time.monotonic() + grace_s
            with contextlib.suppress(ApiFailed):
                self._sync_services()
            pp.terminate(grace_s)
            self._patch_status(pp)
        if pp is not None and not pp.reap_terminating():
            return
        if pp is not None:
            self._release(pp)
            self.pods.pop(key, None)
        # gone already, or a new pod by that name (the uid precondition): False, fine
        self.api.delete(
            "Pod", meta["namespace"], meta["name"], grace_period_s=0, uid=str(meta.get("uid"))
        )

    def _forget(self, key: str, pp: PodProcess, grace_s: float) -> None:
        pp.terminate(grace_s)
        deadline = time.monotonic() + grace_s + 3
        while not pp.reap_terminating() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._release(pp)
        self.pods.pop(key, None)

    # -- usage, targets, services ------------------------------------------------

    def _report_usage(self) -> None:
        groups = cpu_and_rss_by_group()
        for pp in list(self.pods.values()):
            measured = pp.cpu_usage(groups)
            if measured is None:
                continue
            cores, rss = measured
            note = {
                "kwok.x-k8s.io/usage-cpu": f"{max(1, round(cores * 1000))}m",
                "kwok.x-k8s.io/usage-memory": f"{max(1, rss // (1024 * 1024))}Mi",
            }
            if note == pp.usage_sent:  # an idle pod: no write, no watch event for anyone
                continue
            with contextlib.suppress(ApiFailed):
                k = pp.spec.key
                self.api.patch("Pod", k.namespace, k.name, {"metadata": {"annotations": note}})
                pp.usage_sent = note

    def _write_pod_targets(self) -> None:
        targets = [
            {
                "targets": [f"127.0.0.1:{pp.port}"],
                "labels": {
                    "namespace": pp.spec.key.namespace,
                    "pod": pp.spec.key.name,
                    "container": pp.spec.container,
                    "node": pp.spec.node,
                },
            }
            for pp in self.pods.values()
            if pp.running and pp.terminating_until is None
        ]
        text = json.dumps(targets, sort_keys=True)
        if text != self._targets_written:
            write_json(self.paths.dir / "prometheus" / "pods.json", targets)
            self._targets_written = text

    def _write_dcgm_targets(self) -> None:
        port = self.state.addon_ports.pod_runner
        targets = [
            {
                "targets": [f"127.0.0.1:{port}"],
                "labels": {"__metrics_path__": f"/dcgm/{node}/metrics", "node": node},
            }
            for node in sorted(self.gpu_nodes)
        ]
        write_json(self.paths.dir / "prometheus" / "dcgm.json", targets)

    def _sync_services(self) -> None:
        services = self.svc_cache.snapshot()
        slices = self.slice_cache.snapshot()
        ready: dict[str, list[int]] = {}
        for sl in slices:
            meta = sl["metadata"]
            svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            if not svc:
                continue
            ports = ready.setdefault(f"{meta['namespace']}/{svc}", [])
            for ep in sl.get("endpoints") or []:
                ref = ep.get("targetRef") or {}
                if ref.get("kind") != "Pod" or not (ep.get("conditions") or {}).get("ready"):
                    continue
                pp = self.pods.get(f"{ref.get('namespace', meta['namespace'])}/{ref.get('name')}")
                if pp is not None and pp.running and pp.terminating_until is None:
                    ports.append(pp.port)
        wanted = {
            f"{s['metadata']['namespace']}/{s['metadata']['name']}": sorted(
                ready.get(f"{s['metadata']['namespace']}/{s['metadata']['name']}", [])
            )
            for s in services
            if (s.get("spec") or {}).get("selector")
        }
        local = self.proxy.sync(wanted)
        urls = {k: f"http://127.0.0.1:{p}" for k, p in local.items()}
        for s in services:
            key = f"{s['metadata']['namespace']}/{s['metadata']['name']}"
            url = urls.get(key)
            have = (s["metadata"].get("annotations") or {}).get(LOCAL_URL_ANNOTATION)
            if url is not None and have != url:
                ns, name = key.split("/", 1)
                with contextlib.suppress(ApiFailed):
                    self.api.patch(
                        "Service", ns, name,
                        {"metadata": {"annotations": {LOCAL_URL_ANNOTATION: url}}},
                    )  # fmt: skip
        if urls != self._published:
            write_json(self.paths.dir / "services.json", urls)
            self._published = urls

    def shutdown(self) -> None:
        """Stop every pod process (SIGTERM, then SIGKILL after 5 s), then the servers."""
        for pp in self.pods.values():
            pp.terminate(min(5.0, pp.spec.grace_s))
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and not all(
            pp.reap_terminating() for pp in self.pods.values()
        ):
            time.sleep(0.05)
        self.proxy.close()
        self.http.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubedrill.sandbox.podrunner")
    parser.add_argument("--dir", required=True, type=Path, help="the sandbox folder")
    args = parser.parse_args(argv)
    state = State.load(SandboxPaths(args.dir, args.dir.name))
    if state is None:
        print(f"pod-runner: no sandbox state in {args.dir}", file=sys.stderr)
        return 2
    os.environ.pop(POD_MARKER_ENV, None)
    runner = Runner(state)
    signal.signal(signal.SIGTERM, lambda *_: runner.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: runner.stopping.set())
    print(f"pod-runner: serving on 127.0.0.1:{state.addon_ports.pod_runner}", flush=True)
    runner.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
