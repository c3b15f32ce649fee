"""``up`` and ``down``: a real control plane from kwokctl's binary runtime, fake nodes,
metrics-server, Prometheus, and the prometheus-adapter/KEDA processes beside them."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from kubedrill.core.errors import ActionFailed
from kubedrill.sandbox.addons import (
    ADDON_APISERVICES,
    AddonPorts,
)
from kubedrill.sandbox.binaries import resolve_binaries
from kubedrill.sandbox.config import SandboxConfig, SandboxPaths
from kubedrill.sandbox.manifests import (
    ControlPlanePorts,
    node_docs,
)
from kubedrill.sandbox.podproc import POD_MARKER_ENV
from kubedrill.sandbox.procs import (
    ComponentFailed,
    alive,
    free_ports,
    pids_under,
    pids_with_env,
    read_pid,
    stop_all,
)
from kubedrill.sandbox.state import State, check_component, check_health
from kubedrill.sandbox.steps import (
    apiservices_available,
    configure_prometheus,
    create_control_plane,
    nodes_ready,
    run_kwokctl,
    start_addon,
    start_pod_runner,
    wait_until,
)

__all__ = ["down", "up"]

Progress = Callable[[str], None]
PROGRAMS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "kwok",
    "kwokctl",
    "metrics-server",
    "prometheus",
    "prometheus-adapter",
    "keda-operator",
    "keda-adapter",
    Path(sys.executable).name,  # the pod runner
)


def _addon_ready_step(state: State, addon: str) -> Callable[[], None]:
    names = ADDON_APISERVICES[addon]
    component = "keda-adapter" if addon == "keda" else addon

    def run() -> None:
        wait_until(
            state,
            component,
            False,
            f"APIService {', '.join(names)} Available",
            lambda: apiservices_available(state, names),
            120,
        )

    return run


def _steps(state: State) -> list[tuple[str, Callable[[], None]]]:
    """What ``up`` does, in order, each with the progress line printed when it is done."""
    cfg = state.config
    api = state.api()
    nodes = node_docs(cfg)

    def ready(component: str, managed: bool, what: str, timeout_s: float) -> Callable[[], None]:
        probe = lambda: check_component(state, component, managed, api).ready  # noqa: E731
        return lambda: wait_until(state, component, managed, what, probe, timeout_s)

    steps: list[tuple[str, Callable[[], None]]] = [
        (
            "control plane started (etcd, kube-apiserver, kube-controller-manager, "
            "kube-scheduler, kwok-controller, metrics-server, prometheus)",
            lambda: create_control_plane(state),
        ),
        ("kube-apiserver /readyz ok", ready("kube-apiserver", True, "/readyz", 90)),
        (
            f"{len(nodes)} nodes created ({cfg.gpu_nodes} GPU x {cfg.gpus_per_node} "
            f"nvidia.com/gpu, {cfg.cpu_nodes} CPU)",
            lambda: state.kubectl().apply(nodes),
        ),
    ]
    steps.append(("pod runner started", lambda: start_pod_runner(state)))
    steps += [(f"{a} started", _addon_start_step(state, a)) for a in cfg.addons]
    steps += [
        (
            "nodes Ready",
            lambda: wait_until(
                state, "kwok-controller", True, "nodes Ready", lambda: nodes_ready(state), 120
            ),
        ),
        (
            "metrics.k8s.io Available (metrics-server)",
            ready("metrics-server", True, "APIService", 90),
        ),
        ("prometheus ready", ready("prometheus", True, "/-/ready", 60)),
        (
            "prometheus scrapes process-backed pods and DCGM exporters",
            lambda: configure_prometheus(state),
        ),
        ("pod runner ready", ready("pod-runner", False, "/healthz", 30)),
    ]
    if "keda" in cfg.addons:
        steps.append(("keda-operator ready", ready("keda-operator", False, "/readyz", 90)))
    for addon in cfg.addons:
        group = ADDON_APISERVICES[addon][0].split(".", 1)[1]
        steps.append((f"{group} Available ({addon})", _addon_ready_step(state, addon)))
    return steps


def _addon_start_step(state: State, addon: str) -> Callable[[], None]:
    return lambda: start_addon(state, addon)


@contextlib.contextmanager
def _locked(paths: SandboxPaths) -> Iterator[None]:
    """One ``up``/``down`` at a time per sandbox root (a flock on the root folder, so no
    lock file is left behind)."""
    paths.dir.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.dir.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


START_ATTEMPTS = 2


def up(cfg: SandboxConfig, progress: Progress, *, allow_build: bool = True) -> tuple[State, bool]:
    """Bring the sandbox up, or report it when it already runs. Returns (state, reused).

    An upstream component that dies while the control plane comes up (metrics-server
    panics when it reaches kube-apiserver a moment before it serves: seen on a loaded
    2-core machine) gets one fresh start of the whole sandbox, with the reason printed;
    a second failure is raised.
    """
    with _locked(cfg.paths):
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return _up(cfg, progress, allow_build)
            except ComponentFailed as e:
                if attempt == START_ATTEMPTS:
                    raise
                first = str(e).splitlines()[0]
                progress(f"start failed ({first}); starting afresh, attempt {attempt + 1}")
        raise AssertionError("unreachable")  # pragma: no cover


def _up(cfg: SandboxConfig, progress: Progress, allow_build: bool) -> tuple[State, bool]:
    paths = cfg.paths
    existing = State.load(paths)
    if existing is not None and existing.phase == "ready":
        health = check_health(existing)
        if health.all_ready:
            return existing, True
        why = ", ".join(health.down()) or "nodes"
        progress(f"stale sandbox at {paths.dir} ({why} not ready): recreating it")
    if paths.dir.exists():
        _down(paths, progress)
    start = time.monotonic()
    bins = resolve_binaries(progress, allow_build=allow_build)
    ports = free_ports(15)
    state = State(
        config=cfg,
        ports=ControlPlanePorts(*ports[:8]),
        addon_ports=AddonPorts(*ports[8:]),
        bins=bins,
        started_at=time.time(),
    )
    paths.dir.mkdir(parents=True, exist_ok=True)
    state.save()
    try:
        for label, fn in _steps(state):
            t0 = time.monotonic()
            fn()
            now = time.monotonic()
            progress(f"{label} … {now - t0:.1f}s (total {now - start:.1f}s)")
    except BaseException:
        _stop_processes(paths, state)
        replace(state, phase="failed").save()
        raise
    ready = replace(state, phase="ready", ready_s=round(time.monotonic() - start, 2))
    ready.save()
    return ready, False


def _stop_processes(paths: SandboxPaths, state: State | None) -> list[str]:
    """Stop every process of this sandbox, all at once (the sandbox is being thrown away,
    so no orderly drain is needed): by pid file, then any leftover of ours still naming
    the sandbox dir. Returns what was stopped."""
    marker = str(paths.dir)
    names: list[tuple[str, bool]] = state.components() if state is not None else []
    by_name = {n: read_pid(paths.pid_file(n, m)) for n, m in reversed(names)}
    running = {n: p for n, p in by_name.items() if alive(p, marker)}
    stop_all(running.values(), marker, timeout_s=3)  # then SIGKILL: nothing to keep
    stopped = list(running)
    strays = pids_under(paths.dir, PROGRAMS)
    strays += [p for p in pids_with_env(POD_MARKER_ENV, marker) if p not in strays]
    stop_all(strays, "", timeout_s=3)
    return stopped + [f"pid {p}" for p in strays]


def down(paths: SandboxPaths, progress: Progress) -> list[str]:
    """Stop everything and remove the sandbox folder. Returns what was stopped."""
    with _locked(paths):
        return _down(paths, progress)


def _down(paths: SandboxPaths, progress: Progress) -> list[str]:
    state = State.load(paths)
    stopped = _stop_processes(paths, state)
    if state is not None and paths.cluster.exists():
        try:  # removes kwokctl's cluster tree and our kubeconfig's context
            run_kwokctl(state, ["delete", "cluster", f"--kubeconfig={paths.kubeconfig}"], 60)
        except (subprocess.TimeoutExpired, OSError) as e:
            progress(f"kwokctl delete cluster failed ({e}); removing files directly")
    left = pids_under(paths.dir, PROGRAMS) + pids_with_env(POD_MARKER_ENV, str(paths.dir))
    if left:
        raise ActionFailed(f"sandbox: processes {left} under {paths.dir} would not stop")
    shutil.rmtree(paths.dir, ignore_errors=True)
    if paths.dir.exists():
        raise ActionFailed(f"sandbox: could not remove {paths.dir}")
    return stopped
