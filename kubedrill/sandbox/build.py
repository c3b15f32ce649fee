"""Build the sandbox's upstream Go binaries from the Go module proxy, with a cache.

Versions live in ``versions.toml`` beside this file. Each component is built in a
throw-away wrapper module that requires the upstream module and copies the replace
directives of its go.mod (see ``derive_replaces``), because ``go install pkg@version``
refuses modules with replaces. Binaries land in ``~/.cache/kubedrill/bin/<hash>`` and
are reused while a per-component stamp (spec + go version) matches.
``KUBEDRILL_BIN_DIR`` points at prebuilt binaries and skips building altogether.

Every build run writes ``<bin_dir>/build-record.json`` (see ``update_record``): the
seconds each component built (built ones only, not reused), the run's wall seconds,
``os.cpu_count()``, the go version, the machine and the UTC date. The last *cold* run
(every component of versions.toml built, none reused, completed) is kept under
``cold``; warm, partial or failed runs only replace ``last_run``.
``benchmarks/bench_sandbox.py`` reads ``cold_build_s`` from it.

    python -m kubedrill.sandbox.build [--only etcd,kwok] [--bin-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE
from typing import IO, Any

VERSIONS_FILE = Path(__file__).with_name("versions.toml")
BIN_DIR_ENV = "KUBEDRILL_BIN_DIR"
TAIL_LINES = 20
RECORD_NAME = "build-record.json"
RECORD_KIND = "kubedrill.sandbox.build-record"
_STAGING_PREFIX = "./staging/src/"


class BuildFailed(Exception):
    """A component failed to build; the message names it, its log and the log's tail."""

    def __init__(self, component: str, log_path: Path, tail: Sequence[str]) -> None:
        self.component = component
        self.log_path = log_path
        self.tail = list(tail)
        super().__init__(format_failure(component, log_path, tail))


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    version: str
    binaries: dict[str, str]
    ldflags: tuple[str, ...] = ()
    also_require: tuple[str, ...] = ()
    staging_version: str | None = None


@dataclass
class BuildResult:
    bin_dir: Path
    prebuilt: bool = False
    built: dict[str, float] = field(default_factory=dict)  # binary -> seconds
    reused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    components_built: dict[str, float] = field(default_factory=dict)  # component -> seconds
    record_path: Path | None = None

    def path(self, binary: str) -> Path:
        return self.bin_dir / binary


def load_versions(text: str) -> list[Component]:
    """Parse versions.toml text into components, in file order."""
    data = tomllib.loads(text)
    table = data.get("components")
    if not isinstance(table, dict) or not table:
        raise ValueError("versions.toml: no [components.*] tables")
    out: list[Component] = []
    for name, raw in table.items():
        where = f"versions.toml: components.{name}"
        missing = [k for k in ("module", "version", "binaries") if k not in raw]
        if missing:
            raise ValueError(f"{where} lacks {missing[0]!r}")
        if not isinstance(raw["binaries"], dict) or not raw["binaries"]:
            raise ValueError(f"{where}.binaries is empty")
        if not str(raw["version"]).startswith("v"):
            raise ValueError(f"{where}.version must start with 'v'")
        staging = raw.get("staging_version")
        out.append(
            Component(
                name=name,
                module=str(raw["module"]),
                version=str(raw["version"]),
                binaries={str(k): str(v) for k, v in raw["binaries"].items()},
                ldflags=tuple(str(f) for f in raw.get("ldflags", [])),
                also_require=tuple(str(r) for r in raw.get("also_require", [])),
                staging_version=None if staging is None else str(staging),
            )
        )
    return out


def versions_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _version_fields(version: str) -> dict[str, str]:
    bare = version.removeprefix("v")
    major, _, rest = bare.partition(".")
    return {"version": version, "bare": bare, "major": major, "minor": rest.split(".")[0]}


def expand_ldflags(component: Component, all_components: Sequence[Component]) -> str:
    """Join ldflags, filling {version}/{bare}/{major}/{minor} and {other.bare} etc."""
    subst: dict[str, str] = {}
    for other in all_components:
        for key, value in _version_fields(other.version).items():
            subst[f"{{{other.name}.{key}}}"] = value
    for key, value in _version_fields(component.version).items():
        subst[f"{{{key}}}"] = value
    flags = " ".join(component.ldflags)
    for placeholder, value in subst.items():
        flags = flags.replace(placeholder, value)
    return flags


def derive_replaces(gomod_json: str, staging_version: str | None) -> list[str]:
    """Turn the replaces of `go mod edit -json` output into wrapper `-replace` values.

    Version replaces are copied; `=> ./staging/src/<mod>` becomes `<mod>@staging_version`;
    any other local-path replace (etcd's ../api, ./FORBIDDEN_DEPENDENCY) is dropped, since
    the upstream requires already pin those modules.
    """
    doc = json.loads(gomod_json)
    out: list[str] = []
    for rep in doc.get("Replace") or []:
        old, new = rep["Old"], rep["New"]
        lhs = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        if new.get("Version"):
            out.append(f"{lhs}={new['Path']}@{new['Version']}")
        elif new["Path"].startswith(_STAGING_PREFIX):
            if staging_version is None:
                raise ValueError(f"{old['Path']} is replaced by staging; set staging_version")
            out.append(f"{lhs}={old['Path']}@{staging_version}")
    return out


def stamp_text(component: Component, go_version: str) -> str:
    return json.dumps({"component": asdict(component), "go": go_version}, sort_keys=True)


def stamp_matches(bin_dir: Path, component: Component, go_version: str) -> bool:
    """True when the stamp names this exact spec and go version and all binaries exist."""
    stamp = bin_dir / ".stamps" / f"{component.name}.json"
    try:
        if stamp.read_text() != stamp_text(component, go_version):
            return False
    except OSError:
        return False
    return all((bin_dir / b).is_file() for b in component.binaries)


def format_failure(component: str, log_path: Path, tail: Sequence[str]) -> str:
    lines = "\n".join(f"  | {line}" for line in tail[-TAIL_LINES:]) or "  | (log is empty)"
    return f"building {component} failed; last lines of its log:\n{lines}\nfull log: {log_path}"


def select(components: Sequence[Component], only: Sequence[str] | None) -> list[Component]:
    """Components named in `only` (component or binary names), in file order."""
    if not only:
        return list(components)
    wanted = set(only)
    known = {c.name for c in components} | {b for c in components for b in c.binaries}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(unknown)}; known: {sorted(known)}")
    return [c for c in components if c.name in wanted or wanted & set(c.binaries)]


def prebuilt_bin_dir(environ: Mapping[str, str]) -> Path | None:
    value = environ.get(BIN_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "kubedrill"


def default_bin_dir(versions_text: str) -> Path:
    return default_cache_dir() / "bin" / versions_hash(versions_text)


def go_env(cache_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(
        GOMODCACHE=str(cache_dir / "go" / "mod"),
        GOCACHE=str(cache_dir / "go" / "build"),
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-mod=mod",
        GOWORK="off",
    )
    return env


def go_version(env: Mapping[str, str]) -> str:
    return subprocess.run(
        ["go", "env", "GOVERSION"], env=dict(env), capture_output=True, text=True, check=True
    ).stdout.strip()


class _StepFailed(Exception):
    pass


def _run(cmd: Sequence[str], log: IO[str], env: Mapping[str, str], cwd: Path) -> str:
    """Run cmd, stderr (and stdout) into the log; return stdout."""
    log.write(f"$ {shlex.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(list(cmd), cwd=cwd, env=dict(env), stdout=PIPE, stderr=log, text=True)
    log.write(f"{proc.stdout}# exit {proc.returncode}\n")
    log.flush()
    if proc.returncode != 0:
        raise _StepFailed
    return proc.stdout


def _tail(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    except OSError:
        return []


def _prepare_wrapper(comp: Component, work: Path, log: IO[str], env: Mapping[str, str]) -> None:
    _run(["go", "mod", "init", f"kubedrill.invalid/sandbox/{comp.name}"], log, env, work)
    raw = _run(["go", "mod", "download", "-json", f"{comp.module}@{comp.version}"], log, env, work)
    info: dict[str, Any] = json.loads(raw)
    if info.get("Error"):
        raise _StepFailed
    upstream = _run(["go", "mod", "edit", "-json", info["GoMod"]], log, env, work)
    edits = [f"-require={comp.module}@{comp.version}"]
    edits += [f"-require={r}" for r in comp.also_require]
    edits += [f"-replace={r}" for r in derive_replaces(upstream, comp.staging_version)]
    _run(["go", "mod", "edit", *edits], log, env, work)


def _build_component(
    comp: Component,
    all_components: Sequence[Component],
    bin_dir: Path,
    cache_dir: Path,
    env: Mapping[str, str],
    on_binary: Callable[[str, float], None],
) -> None:
    log_path = cache_dir / "logs" / f"{comp.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ldflags = expand_ldflags(comp, all_components)
    with log_path.open("w") as log, tempfile.TemporaryDirectory(prefix="kubedrill-go-") as tmp:
        work = Path(tmp)
        log.write(f"# {comp.name} {comp.module}@{comp.version} in {work}\n")
        try:
            start = time.monotonic()
            _prepare_wrapper(comp, work, log, env)
            setup = time.monotonic() - start
            log.write(f"# wrapper ready in {setup:.1f}s\n")
            for binary, package in comp.binaries.items():
                start = time.monotonic()
                tmp_out = bin_dir / f".{binary}.tmp"
                cmd = ["nice", "-n", "10", "go", "build", "-trimpath", "-ldflags", ldflags]
                _run([*cmd, "-o", str(tmp_out), package], log, env, work)
                os.replace(tmp_out, bin_dir / binary)
                seconds = time.monotonic() - start + setup
                setup = 0.0  # the first binary carries the wrapper/download time
                rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
                log.write(f"# built {binary} in {seconds:.1f}s; peak child RSS so far {rss} MiB\n")
                on_binary(binary, seconds)
        except (_StepFailed, ValueError, KeyError, json.JSONDecodeError) as exc:
            if not isinstance(exc, _StepFailed):
                log.write(f"# error: {exc!r}\n")
            log.close()
            raise BuildFailed(comp.name, log_path, _tail(log_path)) from None


def build(
    components: list[str] | None,
    bin_dir: Path,
    cache_dir: Path,
    progress: Callable[[str], None],
    *,
    versions_file: Path = VERSIONS_FILE,
    environ: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build (or reuse) the selected components' binaries into bin_dir."""
    started = time.monotonic()
    environ = os.environ if environ is None else environ
    versions_text = versions_file.read_text()
    all_components = load_versions(versions_text)
    chosen = select(all_components, components)
    wanted = [b for c in chosen for b in c.binaries]
    prebuilt = prebuilt_bin_dir(environ)
    if prebuilt is not None:
        missing = [b for b in wanted if not (prebuilt / b).is_file()]
        progress(f"using prebuilt binaries from {BIN_DIR_ENV}={prebuilt}")
        return BuildResult(bin_dir=prebuilt, prebuilt=True, missing=missing)

    env = go_env(cache_dir, environ)
    caches_empty = {k: _cache_empty(cache_dir / "go" / k) for k in ("build", "mod")}
    gover = go_version(env)
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / ".stamps").mkdir(exist_ok=True)
    result = BuildResult(bin_dir=bin_dir, record_path=record_path(bin_dir))
    step = 0

    def record(outcome: str, failed: str | None = None) -> None:
        run = run_entry(
            outcome=outcome, selected=chosen, all_components=all_components, result=result,
            wall_s=time.monotonic() - started, go_version=gover, versions_text=versions_text,
            caches_empty=caches_empty, failed=failed,
        )  # fmt: skip
        update_record(bin_dir, run)

    for comp in chosen:
        if stamp_matches(bin_dir, comp, gover):
            for binary in comp.binaries:
                step += 1
                progress(f"[{step}/{len(wanted)}] {binary} reused")
                result.reused.append(binary)
            continue
        (bin_dir / ".stamps" / f"{comp.name}.json").unlink(missing_ok=True)

        def on_binary(binary: str, seconds: float) -> None:
            nonlocal step
            step += 1
            result.built[binary] = seconds
            progress(f"[{step}/{len(wanted)}] {binary} … {seconds:.0f}s")

        comp_start = time.monotonic()
        try:
            _build_component(comp, all_components, bin_dir, cache_dir, env, on_binary)
        except BuildFailed:
            with contextlib.suppress(OSError):  # the build failure is the error to report
                record("failed", comp.name)
            raise
        result.components_built[comp.name] = time.monotonic() - comp_start
        (bin_dir / ".stamps" / f"{comp.name}.json").write_text(stamp_text(comp, gover))
    record("completed")
    return result


def record_path(bin_dir: Path) -> Path:
    return bin_dir / RECORD_NAME


def read_record(bin_dir: Path) -> dict[str, Any] | None:
    """The build record in bin_dir, or None when there is none or it is not ours."""
    try:
        doc = json.loads(record_path(bin_dir).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("kind") == RECORD_KIND else None


def _cache_empty(path: Path) -> bool:
    try:
        return not any(path.iterdir())
    except OSError:
        return True


def run_entry(
    *,
    outcome: str,
    selected: Sequence[Component],
    all_components: Sequence[Component],
    result: BuildResult,
    wall_s: float,
    go_version: str,
    versions_text: str,
    caches_empty: Mapping[str, bool],
    failed: str | None = None,
) -> dict[str, Any]:
    """One build run, as it goes into the record."""
    full = [c.name for c in selected] == [c.name for c in all_components]
    return {
        "outcome": outcome,  # "completed" or "failed"
        "failed_component": failed,
        "cold": not result.reused,  # no component reused: everything selected was built
        "all_components": full,  # every component of versions.toml was selected
        "wall_s": round(wall_s, 1),
        "components_s": {k: round(v, 1) for k, v in result.components_built.items()},
        "binaries_s": {k: round(v, 1) for k, v in result.built.items()},
        "reused": list(result.reused),
        "selected": [c.name for c in selected],
        "cpu_count": os.cpu_count(),
        "go_version": go_version,
        "machine": platform.machine(),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions_hash": versions_hash(versions_text),
        # a build into an empty bin dir with a warm GOCACHE is "cold" here, but much faster
        "go_build_cache_was_empty": caches_empty.get("build", True),
        "go_mod_cache_was_empty": caches_empty.get("mod", True),
    }


def is_full_cold(run: Mapping[str, Any] | None) -> bool:
    """A completed run that built every component of versions.toml and reused none."""
    return bool(
        run and run.get("outcome") == "completed" and run.get("cold") and run.get("all_components")
    )


def update_record(bin_dir: Path, run: Mapping[str, Any]) -> dict[str, Any]:
    """Write run as ``last_run``, and as ``cold`` when it was a completed cold build of
    every component. A warm, partial or failed run never replaces the cold record.
    Written atomically; returns the record."""
    old = read_record(bin_dir) or {}
    doc: dict[str, Any] = {"kind": RECORD_KIND, "cold": old.get("cold"), "last_run": dict(run)}
    if is_full_cold(run):
        doc["cold"] = dict(run)
    path = record_path(bin_dir)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubedrill.sandbox.build", description=__doc__)
    parser.add_argument("--only", help="comma-separated component or binary names")
    parser.add_argument("--bin-dir", type=Path, help="default ~/.cache/kubedrill/bin/<hash>")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    bin_dir = args.bin_dir or default_bin_dir(VERSIONS_FILE.read_text())

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = build(only, bin_dir, args.cache_dir, progress)
    except (BuildFailed, ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.missing:
        print(f"error: missing in {result.bin_dir}: {', '.join(result.missing)}", file=sys.stderr)
        return 1
    total = sum(result.built.values())
    print(f"built {len(result.built)} ({total:.0f}s), reused {len(result.reused)}", file=sys.stderr)
    if result.record_path is not None:
        print(f"build record: {result.record_path}", file=sys.stderr)
    print(result.bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
