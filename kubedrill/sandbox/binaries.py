"""Find (or build) the binaries and the upstream files the sandbox needs.

Binaries come from :mod:`kubedrill.sandbox.build` (cached, reused in a fraction of a
second) or ``KUBEDRILL_BIN_DIR``; Prometheus is Debian's. Manifests that ship only in
upstream module zips (metrics-server's kustomize base, KEDA's CRDs) are read from the Go
module cache the build filled, or downloaded into it with ``go mod download``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from kubedrill.core.errors import PreconditionUnmet
from kubedrill.sandbox import build

__all__ = [
    "BINARIES",
    "PROMETHEUS_ENV",
    "keda_crd_dir",
    "metrics_server_manifests",
    "resolve_binaries",
]

PROMETHEUS_ENV = "KUBEDRILL_PROMETHEUS_BIN"
BINARIES = (
    "etcd",
    "etcdctl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "kwokctl",
    "metrics-server",
    "prometheus-adapter",
    "keda-operator",
    "keda-adapter",
)
_HOW_TO_BUILD = (
    "run `make sandbox-build` (python -m kubedrill.sandbox.build; needs go >= 1.26 and the "
    "Go module proxy, ~17 min cold) or point KUBEDRILL_BIN_DIR at prebuilt binaries"
)


def _prometheus(environ: Mapping[str, str]) -> Path:
    explicit = environ.get(PROMETHEUS_ENV, "").strip()
    found = explicit or shutil.which("prometheus") or "/usr/bin/prometheus"
    path = Path(found)
    if not path.is_file():
        raise PreconditionUnmet(
            f"Prometheus not found at {path}",
            "run `make install` (apt-get install --no-install-recommends prometheus) "
            f"or set {PROMETHEUS_ENV}",
        )
    return path


def resolve_binaries(
    progress: Callable[[str], None],
    *,
    allow_build: bool = True,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Every binary the sandbox runs, by name, plus "prometheus". Builds what is missing
    when allowed and go is on PATH; otherwise raises PreconditionUnmet with the fix."""
    env = os.environ if environ is None else environ
    versions_text = build.VERSIONS_FILE.read_text()
    prebuilt = build.prebuilt_bin_dir(env)
    bin_dir = prebuilt or build.default_bin_dir(versions_text)
    missing = [b for b in BINARIES if not (bin_dir / b).is_file()]
    if missing and prebuilt is not None:
        raise PreconditionUnmet(
            f"{build.BIN_DIR_ENV}={bin_dir} lacks {', '.join(missing)}", _HOW_TO_BUILD
        )
    if missing:
        what = f"sandbox binaries missing in {bin_dir} ({', '.join(missing)})"
        if not allow_build or shutil.which("go", path=env.get("PATH")) is None:
            raise PreconditionUnmet(what, _HOW_TO_BUILD)
        progress(f"{what}: building them (cold: ~17 min on 2 cores)")
        try:
            build.build(None, bin_dir, build.default_cache_dir(), progress, environ=env)
        except build.BuildFailed as e:
            raise PreconditionUnmet(str(e), _HOW_TO_BUILD) from None
    out = {name: bin_dir / name for name in BINARIES}
    out["prometheus"] = _prometheus(env)
    return out


def _escape(module_path: str) -> str:
    """The Go module cache's case encoding: an upper-case letter becomes '!' + lower."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module_path)


def module_dir(component: str, environ: Mapping[str, str] | None = None) -> Path:
    """The extracted module zip of a component pinned in versions.toml."""
    env = os.environ if environ is None else environ
    comps = {c.name: c for c in build.load_versions(build.VERSIONS_FILE.read_text())}
    comp = comps[component]
    cache = build.default_cache_dir()
    gomod = cache / "go" / "mod"
    path = gomod / f"{_escape(comp.module)}@{comp.version}"
    if path.is_dir():
        return path
    if shutil.which("go", path=env.get("PATH")) is None:
        raise PreconditionUnmet(
            f"{comp.module}@{comp.version} is not in the Go module cache {gomod}",
            "install go and run `make sandbox-build` (it downloads the module)",
        )
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{comp.module}@{comp.version}"],
        env=build.go_env(cache, env),
        capture_output=True,
        text=True,
        check=False,
        cwd=cache if cache.is_dir() else None,
    )
    try:
        info = json.loads(proc.stdout)
        return Path(info["Dir"])
    except (ValueError, KeyError):
        raise PreconditionUnmet(
            f"could not download {comp.module}@{comp.version}: {proc.stderr.strip()[-300:]}",
            "check GOPROXY and network access to the Go module proxy",
        ) from None


def metrics_server_manifests(environ: Mapping[str, str] | None = None) -> Path:
    return module_dir("metrics-server", environ) / "manifests" / "base"


def keda_crd_dir(environ: Mapping[str, str] | None = None) -> Path:
    return module_dir("keda", environ) / "config" / "crd" / "bases"
