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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubedrill.sandbox.api import ApiClient, ApiError
from kubedrill.sandbox.config import SandboxPaths
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
_POLL_S = 0.5
_USAGE_S = 2.0
_SERVICES_S = 1.0


class Runner:
    def __init__(self, state: State) -> None:
        self.state = state
        self.paths = state.paths
        self.api: ApiClient = state.api()
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
        self._next_usage = 0.0
        self._next_services = 0.0
        self._published: dict[str, str] = {}
        self._targets_written = ""
        base = dict(os.environ)
        bindir = str(Path(sys.executable).parent)  # `python` in a command is our venv's
        base["PATH"] = f"{bindir}{os.pathsep}{base.get('PATH', '')}"
        self.base_env = base

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        self.http.start()
        self._write_dcgm_targets()
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                self.tick()
            except ApiError as e:
                print(f"pod-runner: {e}", file=sys.stderr, flush=True)
            except Exception:  # noqa: BLE001 - a kubelet outlives a bad tick; logged, retried
                traceback.print_exc(file=sys.stderr)
                sys.stderr.flush()
            self.stopping.wait(max(0.05, _POLL_S - (time.monotonic() - t0)))
        self.shutdown()

    def tick(self) -> None:
        listed = self.api.get(f"/api/v1/pods?labelSelector={PROCESS_LABEL}%3Dtrue")
        seen: set[str] = set()
        for pod in listed.get("items") or []:
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
        if now >= self._next_services:
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
        self.pods[key] = pp
        if devices:
            self._write_assignments(ps.node)
            with contextlib.suppress(ApiError):
                self.api.patch(
                    ps.key.path,
                    {"metadata": {"annotations": {GPU_DEVICES_ANNOTATION: ",".join(devices)}}},
                )
        pp.start()
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
            self._patch_status(pp)
            return
        changed = pp.poll_readiness(self.pool)
        if changed is not None:
            if not changed:
                self.events.pod_key(pp, "Unhealthy", "Readiness probe failed", True)
            self._patch_status(pp)

    def _patch_status(self, pp: PodProcess) -> None:
        try:
            self.api.patch(pp.spec.key.path + "/status", status_patch(pp), strategic=False)
        except ApiError as e:
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
            with contextlib.suppress(ApiError):
                self._sync_services()
            pp.terminate(grace_s)
            self._patch_status(pp)
        if pp is not None and not pp.reap_terminating():
            return
        if pp is not None:
            self._release(pp)
            self.pods.pop(key, None)
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta.get("uid")}}
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        try:
            self.api.request("DELETE", path, body)
        except ApiError as e:
            if e.status not in (404, 409):
                raise

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
            with contextlib.suppress(ApiError):
                self.api.patch(pp.spec.key.path, {"metadata": {"annotations": note}})
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
        services = self.api.get("/api/v1/services").get("items") or []
        slices = self.api.get("/apis/discovery.k8s.io/v1/endpointslices").get("items") or []
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
                with contextlib.suppress(ApiError):
                    self.api.patch(
                        f"/api/v1/namespaces/{ns}/services/{name}",
                        {"metadata": {"annotations": {LOCAL_URL_ANNOTATION: url}}},
                    )
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
