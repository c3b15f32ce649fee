"""``kubedrill sandbox up | down | status | env``.

Exit codes are decided in :mod:`kubedrill.cli`: a bad flag raises ConfigError (2), a
missing tool PreconditionUnmet and a component that fails ComponentFailed (both 1).
"""

from __future__ import annotations

import json
import shlex
import time

import click

from kubedrill.core.errors import ActionFailed
from kubedrill.sandbox.config import ADDONS, SandboxConfig, SandboxPaths, default_root
from kubedrill.sandbox.lifecycle import down, up
from kubedrill.sandbox.state import Health, State, check_health

__all__ = ["sandbox"]


def _progress(line: str) -> None:
    click.echo(f"sandbox: {line}", err=True)


def _paths(name: str) -> SandboxPaths:
    return SandboxConfig(name=name, root=default_root()).paths


def _load(name: str) -> State:
    state = State.load(_paths(name))
    if state is None:
        raise ActionFailed(
            f"sandbox {name!r} is not up (no state in {_paths(name).dir}); "
            "run `kubedrill sandbox up`"
        )
    return state


def _env_lines(state: State) -> list[str]:
    p = state.paths
    return [
        f"export KUBECONFIG={shlex.quote(str(p.kubeconfig))}",
        f"export KUBEDRILL_PROMETHEUS_URL={state.prometheus_url}",
        f"# API server:  {state.api_url}",
        f"# Prometheus:  {state.prometheus_url}",
        f"# audit log:   {p.audit_log}",
        f"# logs:        {p.cluster / 'logs'} and {p.addon_dir / 'logs'}",
        f"# services:    {p.dir / 'services.json'} (each Service's local URL)",
    ]


def _describe(state: State, health: Health) -> list[str]:
    cfg = state.config
    lines = [
        f"sandbox {cfg.name}: {'ready' if health.all_ready else 'NOT ready'} ({state.paths.dir})",
        f"  nodes: {health.nodes_ready}/{health.nodes_total} Ready "
        f"({cfg.gpu_nodes} GPU x {cfg.gpus_per_node} nvidia.com/gpu "
        f"{cfg.gpu_product}, {cfg.cpu_nodes} CPU); {health.gpus} GPUs allocatable",
    ]
    width = max(len(c.name) for c in health.components)
    for c in health.components:
        mark = "up  " if c.ready else ("DOWN" if not c.running else "WAIT")
        pid = f"pid {c.pid}" if c.running else "-"
        lines.append(f"  {mark} {c.name:<{width}}  {pid:<10} {c.detail}")
    lines.append(f"  kubeconfig:  {state.paths.kubeconfig}")
    lines.append(f"  API server:  {state.api_url}")
    lines.append(f"  Prometheus:  {state.prometheus_url}")
    lines.append(f"  audit log:   {state.paths.audit_log}")
    for key, url in sorted(_services(state).items()):
        lines.append(f"  service {key}: {url}")
    return lines


def _services(state: State) -> dict[str, str]:
    try:
        doc = json.loads((state.paths.dir / "services.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


@click.group("sandbox")
def sandbox() -> None:
    """A local Kubernetes control plane with fake GPU nodes (kwok), for drills and tests."""


_name = click.option("--name", default="kubedrill", show_default=True, help="sandbox name")


@sandbox.command("up")
@_name
@click.option("--gpu-nodes", type=int, default=2, show_default=True)
@click.option("--cpu-nodes", type=int, default=2, show_default=True)
@click.option("--gpus-per-node", type=int, default=8, show_default=True)
@click.option("--gpu-product", default="NVIDIA-H100-80GB-HBM3", show_default=True)
@click.option(
    "--heartbeat-factor",
    type=float,
    default=0.5,
    show_default=True,
    help="scales kubelet-like timings; 0.5: 20 s node lease and node-monitor grace period",
)
@click.option(
    "--addons",
    default=",".join(ADDONS),
    show_default=True,
    help="comma-separated: prometheus-adapter, keda (empty for none)",
)
@click.option("--no-build", is_flag=True, help="fail instead of building missing binaries")
def up_command(
    name: str,
    gpu_nodes: int,
    cpu_nodes: int,
    gpus_per_node: int,
    gpu_product: str,
    heartbeat_factor: float,
    addons: str,
    no_build: bool,
) -> None:
    """Start the sandbox (idempotent: a running one is reported, not restarted)."""
    cfg = SandboxConfig(
        name=name,
        root=default_root(),
        gpu_nodes=gpu_nodes,
        cpu_nodes=cpu_nodes,
        gpus_per_node=gpus_per_node,
        gpu_product=gpu_product,
        heartbeat_factor=heartbeat_factor,
        addons=tuple(a.strip() for a in addons.split(",") if a.strip()),
    )
    start = time.monotonic()
    state, reused = up(cfg, _progress, allow_build=not no_build)
    health = check_health(state)
    if reused:
        _progress(f"already running (up since {time.ctime(state.started_at)})")
        asked = (gpu_nodes, cpu_nodes, gpus_per_node)
        have = (state.config.gpu_nodes, state.config.cpu_nodes, state.config.gpus_per_node)
        if asked != have:
            _progress(
                f"note: it runs with gpu/cpu nodes, gpus per node = {have}, not {asked}; "
                "run `kubedrill sandbox down` first to change them"
            )
    else:
        _progress(f"ready in {time.monotonic() - start:.1f}s")
    click.echo("\n".join(_describe(state, health)), err=True)
    click.echo("\n".join(_env_lines(state)))


@sandbox.command("down")
@_name
def down_command(name: str) -> None:
    """Stop every sandbox process and remove its state (kubeconfig, logs, etcd data)."""
    paths = _paths(name)
    if not paths.dir.exists():
        _progress(f"{name}: nothing to do ({paths.dir} does not exist)")
        return
    stopped = down(paths, _progress)
    _progress(
        f"{name}: stopped {', '.join(stopped) or 'nothing (no process was running)'}; "
        f"removed {paths.dir}"
    )


@sandbox.command("status")
@_name
def status_command(name: str) -> None:
    """Which components are up, the nodes, the URLs and the audit log (exit 1 if not ready)."""
    state = _load(name)
    health = check_health(state)
    click.echo("\n".join(_describe(state, health)))
    if not health.all_ready:
        down_list = ", ".join(health.down()) or "nodes"
        raise ActionFailed(f"sandbox {name!r} is not ready: {down_list}")


@sandbox.command("env")
@_name
def env_command(name: str) -> None:
    """Print `export KUBECONFIG=…` and the URLs: eval "$(kubedrill sandbox env)"."""
    state = _load(name)
    click.echo("\n".join(_env_lines(state)))
