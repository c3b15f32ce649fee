"""The steps of ``up``: run kwokctl, wait for a component with its log at hand, start
the addons. Split from :mod:`kubedrill.sandbox.lifecycle` to keep modules small."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from kubedrill.adapters.kube import ApiFailed
from kubedrill.sandbox.addons import addon_manifests, addon_processes, prepare_certs
from kubedrill.sandbox.api import condition
from kubedrill.sandbox.binaries import keda_crd_dir, metrics_server_manifests
from kubedrill.sandbox.config import SandboxPaths
from kubedrill.sandbox.manifests import audit_policy, kwokctl_config
from kubedrill.sandbox.procs import ComponentFailed, alive, read_pid, spawn
from kubedrill.sandbox.state import State

__all__ = [
    "apiservices_available",
    "configure_prometheus",
    "create_control_plane",
    "kwokctl_env",
    "nodes_ready",
    "run_kwokctl",
    "start_addon",
    "start_pod_runner",
    "wait_until",
]


def kwokctl_env(paths: SandboxPaths, bins: Mapping[str, Path]) -> dict[str, str]:
    env = dict(os.environ)
    # kwokctl renders metrics-server's kustomize base with `kubectl kustomize`.
    env["PATH"] = f"{bins['kubectl'].parent}{os.pathsep}{env.get('PATH', '')}"
    env["KWOK_WORKDIR"] = str(paths.kwok_workdir)
    env["KUBECACHEDIR"] = str(paths.dir / "kube-cache")  # not ~/.kube/cache
    for var in [v for v in env if v.startswith("KWOK_") and v != "KWOK_WORKDIR"]:
        del env[var]  # a user's KWOK_* defaults must not leak into our cluster
    return env


def run_kwokctl(
    state: State, args: list[str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    paths = state.paths
    cmd = [str(state.bins["kwokctl"]), "--name", paths.name, *args]
    log = paths.dir / "kwokctl.log"
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        return subprocess.run(
            cmd,
            env=kwokctl_env(paths, state.bins),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=paths.dir,
        )


def wait_until(
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


def create_control_plane(state: State) -> None:
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
            paths.dir / "prometheus" / "data",
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
        proc = run_kwokctl(state, args, timeout_s=240)
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


def apiservices_available(state: State, names: tuple[str, ...]) -> bool:
    api = state.api()
    try:
        return all(
            condition(api.get("APIService", None, n) or {}, "Available") == "True" for n in names
        )
    except ApiFailed:
        return False


def nodes_ready(state: State) -> bool:
    try:
        items, _ = state.api().list("Node", None)
    except ApiFailed:
        return False
    return bool(items) and all(condition(n, "Ready") == "True" for n in items)


def crds_established(state: State, directory: Path) -> bool:
    api = state.api()
    try:
        crds, _ = api.list("CustomResourceDefinition", None)
    except ApiFailed:
        return False
    names = {c["metadata"]["name"] for c in crds if condition(c, "Established") == "True"}
    wanted = {
        p.name.split("_", 1)[1].removesuffix(".yaml") + "." + p.name.split("_", 1)[0]
        for p in directory.glob("*.yaml")
    }
    return wanted <= names


def start_addon(state: State, addon: str) -> None:
    paths = state.paths
    kubectl = state.kubectl()
    if addon == "keda":
        crds = keda_crd_dir()
        kubectl.run(["apply", "--server-side", "--force-conflicts", "-f", str(crds)])
        wait_until(
            state,
            "kube-apiserver",
            True,
            "KEDA CRDs established",
            lambda: crds_established(state, crds),
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


def start_pod_runner(state: State) -> None:
    paths = state.paths
    argv = [sys.executable, "-m", "kubedrill.sandbox.podrunner", "--dir", str(paths.dir)]
    spawn(
        argv,
        paths.log_file("pod-runner", False),
        paths.pid_file("pod-runner", False),
        dict(os.environ),
        paths.addon_dir,
    )


def scrape_jobs(sandbox_dir: Path) -> list[dict[str, object]]:
    """Prometheus jobs for the pod runner's file-SD lists: every process-backed pod (with
    its namespace and pod as labels) and the DCGM exporters, every 2 s."""
    sd = sandbox_dir / "prometheus"
    return [
        {
            "job_name": "kubedrill-pods",
            "scrape_interval": "2s",
            "scrape_timeout": "1s",
            "file_sd_configs": [{"files": [str(sd / "pods.json")], "refresh_interval": "5s"}],
        },
        {
            "job_name": "kubedrill-dcgm",
            "scrape_interval": "2s",
            "scrape_timeout": "1s",
            "honor_labels": True,  # keep the exporter's namespace/pod labels as they are
            "file_sd_configs": [{"files": [str(sd / "dcgm.json")], "refresh_interval": "5s"}],
        },
    ]


def configure_prometheus(state: State) -> None:
    """Add our scrape jobs to kwokctl's Prometheus configuration and reload it (SIGHUP)."""
    paths = state.paths
    cfg_path = paths.cluster / "prometheus.yaml"
    doc = yaml.safe_load(cfg_path.read_text()) or {}
    jobs = [
        j
        for j in doc.get("scrape_configs") or []
        if not str(j.get("job_name", "")).startswith("kubedrill-")
    ]
    doc["scrape_configs"] = jobs + scrape_jobs(paths.dir)
    (paths.dir / "prometheus").mkdir(parents=True, exist_ok=True)
    for name in ("pods.json", "dcgm.json"):
        target = paths.dir / "prometheus" / name
        if not target.exists():
            target.write_text("[]")
    cfg_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    pid = read_pid(paths.pid_file("prometheus", True))
    if pid is None or not alive(pid, str(paths.dir)):
        raise ComponentFailed("prometheus", "is not running", paths.log_file("prometheus", True))
    os.kill(pid, signal.SIGHUP)
    url = f"{state.prometheus_url}/api/v1/status/config"
    wait_until(
        state,
        "prometheus",
        True,
        "configuration reloaded with the kubedrill-pods job",
        lambda: _config_has(url, "kubedrill-pods"),
        30,
    )


def _config_has(url: str, needle: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
            return needle in resp.read().decode(errors="replace")
    except OSError:
        return False
