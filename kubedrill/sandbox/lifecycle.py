"""``up`` and ``down``: a real control plane from kwokctl's binary runtime, fake nodes,
metrics-server, Prometheus, and the prometheus-adapter/KEDA processes beside them."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from kubedrill.errors import ActionFailed
from kubedrill.sandbox.addons import (
    ADDON_APISERVICES,
    AddonPorts,
    addon_manifests,
    addon_processes,
    prepare_certs,
)
from kubedrill.sandbox.api import ApiError, condition
from kubedrill.sandbox.binaries import keda_crd_dir, metrics_server_manifests, resolve_binaries
from kubedrill.sandbox.config import SandboxConfig, SandboxPaths
from kubedrill.sandbox.manifests import (
    ControlPlanePorts,
    audit_policy,
    kwokctl_config,
    node_docs,
)
from kubedrill.sandbox.procs import (
    ComponentFailed,
    alive,
    free_ports,
    pids_under,
    read_pid,
    spawn,
    stop_all,
)
from kubedrill.sandbox.state import State, check_component, check_health

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
)


def _kwokctl_env(paths: SandboxPaths, bins: Mapping[str, Path]) -> dict[str, str]:
    env = dict(os.environ)
    # kwokctl renders metrics-server's kustomize base with `kubectl kustomize`.
    env["PATH"] = f"{bins['kubectl'].parent}{os.pathsep}{env.get('PATH', '')}"
    env["KWOK_WORKDIR"] = str(paths.kwok_workdir)
    env["KUBECACHEDIR"] = str(paths.dir / "kube-cache")  # not ~/.kube/cache
    for var in [v for v in env if v.startswith("KWOK_") and v != "KWOK_WORKDIR"]:
        del env[var]  # a user's KWOK_* defaults must not leak into our cluster
    return env


def _kwokctl(state: State, args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    paths = state.paths
    cmd = [str(state.bins["kwokctl"]), "--name", paths.name, *args]
    log = paths.dir / "kwokctl.log"
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        return subprocess.run(
            cmd,
            env=_kwokctl_env(paths, state.bins),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=paths.dir,
        )


def _wait(
    state: State,
    component: str,
    managed: bool,
    what: str,
    probe: Callable[[], bool],
    timeout_s: float,
) -> None:
    """Poll probe until true; fail fast, with the log tail, if the process dies."""
    paths = state.paths
    log = paths.log_file(component, managed)
    deadline = time.monotonic() + timeout_s
    while True:
        if probe():
            return
        if not alive(read_pid(paths.pid_file(component, managed)), str(paths.dir)):
            raise ComponentFailed(component, f"exited while waiting for {what}", log)
        if time.monotonic() > deadline:
            raise ComponentFailed(component, f"not ready after {timeout_s:g}s ({what})", log)
        time.sleep(0.2)


def _create_control_plane(state: State) -> None:
    cfg, paths = state.config, state.paths
    paths.audit_policy.write_text(audit_policy())
    paths.kwokctl_config.write_text(
        kwokctl_config(
            cfg,
            state.bins,
            state.ports,
            paths.audit_policy,
            metrics_server_manifests(),
            paths.pki / "ca.crt",
        )
    )
    args = [
        "create",
        "cluster",
        f"--config={paths.kwokctl_config}",
        f"--kubeconfig={paths.kubeconfig}",
        "--enable=metrics-server",
        "--enable=prometheus",
        f"--heartbeat-factor={cfg.heartbeat_factor:g}",
        "--timeout=3m",
    ]
    try:
        proc = _kwokctl(state, args, timeout_s=240)
    except subprocess.TimeoutExpired:
        raise ComponentFailed(
            "kwokctl", "create cluster timed out", paths.dir / "kwokctl.log"
        ) from None
    if proc.returncode != 0:
        for name, managed in state.components():
            pid_file = paths.pid_file(name, managed)
            if managed and pid_file.exists() and not alive(read_pid(pid_file), str(paths.dir)):
                raise ComponentFailed(
                    name, "exited during `kwokctl create cluster`", paths.log_file(name, True)
                )
        raise ComponentFailed(
            "kwokctl", f"create cluster exited {proc.returncode}", paths.dir / "kwokctl.log"
        )


def _apiservices_available(state: State, names: tuple[str, ...]) -> bool:
    api = state.api()
    try:
        return all(
            condition(api.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{n}"), "Available")
            == "True"
            for n in names
        )
    except ApiError:
        return False


def _nodes_ready(state: State) -> bool:
    try:
        items = state.api().get("/api/v1/nodes").get("items") or []
    except ApiError:
        return False
    return bool(items) and all(condition(n, "Ready") == "True" for n in items)


def _crds_established(state: State, directory: Path) -> bool:
    api = state.api()
    try:
        crds = api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").get("items") or []
    except ApiError:
        return False
    names = {c["metadata"]["name"] for c in crds if condition(c, "Established") == "True"}
    wanted = {
        p.name.split("_", 1)[1].removesuffix(".yaml") + "." + p.name.split("_", 1)[0]
        for p in directory.glob("*.yaml")
    }
    return wanted <= names


def _start_addon(state: State, addon: str) -> None:
    paths = state.paths
    kubectl = state.kubectl()
    if addon == "keda":
        crds = keda_crd_dir()
        kubectl.run(["apply", "--server-side", "--force-conflicts", "-f", str(crds)])
        _wait(
            state,
            "kube-apiserver",
            True,
            "KEDA CRDs established",
            lambda: _crds_established(state, crds),
            60,
        )
    kubectl.apply(addon_manifests(addon, state.addon_ports))
    prepare_certs(paths)
    for proc in addon_processes(addon, paths, state.bins, state.addon_ports, state.prometheus_url):
        env = dict(os.environ)
        env.update(dict(proc.env))
        spawn(
            proc.argv,
            paths.log_file(proc.name, False),
            paths.pid_file(proc.name, False),
            env,
            paths.addon_dir,
        )


def _addon_ready_step(state: State, addon: str) -> Callable[[], None]:
    names = ADDON_APISERVICES[addon]
    component = "keda-adapter" if addon == "keda" else addon

    def run() -> None:
        _wait(
            state,
            component,
            False,
            f"APIService {', '.join(names)} Available",
            lambda: _apiservices_available(state, names),
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
        return lambda: _wait(state, component, managed, what, probe, timeout_s)

    steps: list[tuple[str, Callable[[], None]]] = [
        (
            "control plane started (etcd, kube-apiserver, kube-controller-manager, "
            "kube-scheduler, kwok-controller, metrics-server, prometheus)",
            lambda: _create_control_plane(state),
        ),
        ("kube-apiserver /readyz ok", ready("kube-apiserver", True, "/readyz", 90)),
        (
            f"{len(nodes)} nodes created ({cfg.gpu_nodes} GPU x {cfg.gpus_per_node} "
            f"nvidia.com/gpu, {cfg.cpu_nodes} CPU)",
            lambda: state.kubectl().apply(nodes),
        ),
    ]
    steps += [(f"{a} started", _addon_start_step(state, a)) for a in cfg.addons]
    steps += [
        (
            "nodes Ready",
            lambda: _wait(
                state, "kwok-controller", True, "nodes Ready", lambda: _nodes_ready(state), 120
            ),
        ),
        (
            "metrics.k8s.io Available (metrics-server)",
            ready("metrics-server", True, "APIService", 90),
        ),
        ("prometheus ready", ready("prometheus", True, "/-/ready", 60)),
    ]
    if "keda" in cfg.addons:
        steps.append(("keda-operator ready", ready("keda-operator", False, "/readyz", 90)))
    for addon in cfg.addons:
        group = ADDON_APISERVICES[addon][0].split(".", 1)[1]
        steps.append((f"{group} Available ({addon})", _addon_ready_step(state, addon)))
    return steps


def _addon_start_step(state: State, addon: str) -> Callable[[], None]:
    return lambda: _start_addon(state, addon)


def up(cfg: SandboxConfig, progress: Progress, *, allow_build: bool = True) -> tuple[State, bool]:
    """Bring the sandbox up, or report it when it already runs. Returns (state, reused)."""
    paths = cfg.paths
    existing = State.load(paths)
    if existing is not None and existing.phase == "ready":
        health = check_health(existing)
        if health.all_ready:
            return existing, True
        why = ", ".join(health.down()) or "nodes"
        progress(f"stale sandbox at {paths.dir} ({why} not ready): recreating it")
    if paths.dir.exists():
        down(paths, progress)
    start = time.monotonic()
    bins = resolve_binaries(progress, allow_build=allow_build)
    ports = free_ports(14)
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
    stop_all(strays, marker)
    return stopped + [f"pid {p}" for p in strays]


def down(paths: SandboxPaths, progress: Progress) -> list[str]:
    """Stop everything and remove the sandbox folder. Returns what was stopped."""
    state = State.load(paths)
    stopped = _stop_processes(paths, state)
    if state is not None and paths.cluster.exists():
        try:  # removes kwokctl's cluster tree and our kubeconfig's context
            _kwokctl(state, ["delete", "cluster", f"--kubeconfig={paths.kubeconfig}"], 60)
        except (subprocess.TimeoutExpired, OSError) as e:
            progress(f"kwokctl delete cluster failed ({e}); removing files directly")
    left = pids_under(paths.dir, PROGRAMS)
    if left:
        raise ActionFailed(f"sandbox: processes {left} under {paths.dir} would not stop")
    shutil.rmtree(paths.dir, ignore_errors=True)
    if paths.dir.exists():
        raise ActionFailed(f"sandbox: could not remove {paths.dir}")
    return stopped
