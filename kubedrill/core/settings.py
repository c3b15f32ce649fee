"""One typed, frozen settings object.

Precedence, lowest first: defaults → config file (``drill.yaml``) → ``KUBEDRILL_*``
environment → CLI / pytest options. Every source is parsed here, once; a bad value is one
:class:`ConfigError` naming the source (file, variable or flag), the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kubedrill.core.durations import parse_duration
from kubedrill.core.errors import ConfigError

__all__ = [
    "ChaosSettings",
    "ClusterSettings",
    "LoadSettings",
    "PrometheusSettings",
    "ReportSettings",
    "RunSettings",
    "Settings",
    "TargetSettings",
    "load_settings",
]

ENV_PREFIX = "KUBEDRILL_"
DEFAULT_CONFIG = "drill.yaml"  # found in the working directory without a flag


def _positive(v: Any) -> str | None:
    return None if v > 0 else "a number greater than 0"


def _http_url(v: Any) -> str | None:
    if v is None or str(v).startswith(("http://", "https://")):
        return None
    return "an http:// or https:// URL"


def _name(v: Any) -> str | None:
    ok = v is None or (0 < len(v) <= 253 and all(c.isalnum() or c in "-." for c in v))
    return None if ok else "a Kubernetes name (letters, digits, '-' and '.')"


def _check(fn: Callable[[Any], str | None]) -> dict[str, Any]:
    return {"check": fn}


@dataclass(frozen=True, slots=True)
class TargetSettings:
    """The service under test."""

    name: str = "reference-inference"
    namespace: str = field(default="default", metadata=_check(_name))
    url: str | None = field(default=None, metadata=_check(_http_url))


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """How to reach the Kubernetes API."""

    kubeconfig: Path | None = None
    context: str | None = None
    request_timeout_s: float = field(default=10.0, metadata=_check(_positive))


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    url: str | None = field(default=None, metadata=_check(_http_url))
    step_s: float = field(default=5.0, metadata=_check(_positive))
    timeout_s: float = field(default=10.0, metadata=_check(_positive))
    bearer_token: str | None = field(default=None, repr=False, metadata={"secret": True})


def _fraction(v: Any) -> str | None:
    return None if 0 < v <= 1 else "a fraction in (0, 1], e.g. 0.9"


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """What ``drill.load(...)`` gives every load run of a scenario (``LoadSpec`` built by
    hand is the caller's own), and the caps it refuses to exceed."""

    workers: int = field(default=1, metadata=_check(_positive))
    window_s: float = field(default=1.0, metadata=_check(_positive))
    max_duration_s: float = field(default=3600.0, metadata=_check(_positive))
    max_rate: float = field(default=5000.0, metadata=_check(_positive))


@dataclass(frozen=True, slots=True)
class ReportSettings:
    dir: Path = Path("reports")
    formats: tuple[Literal["json", "junit", "markdown", "html"], ...] = (
        "json",
        "junit",
        "markdown",
        "html",
    )


@dataclass(frozen=True, slots=True)
class RunSettings:
    suite: Literal["ci", "gameday", "capacity", "all"] = "all"
    time_scale: float = field(default=1.0, metadata=_check(_positive))
    dry_run: bool = False
    # What an INCONCLUSIVE verdict does to the gate: "fail" (default) or "warn".
    inconclusive: Literal["fail", "warn"] = "fail"
    # What a selected scenario that was skipped (no cluster, precondition unmet) does to the
    # run: "inconclusive" (default: skipped is not passed) or "allow".
    skipped: Literal["inconclusive", "allow"] = "inconclusive"
    # Below this share of its window covered by evidence, a check is INCONCLUSIVE.
    coverage_floor: float = field(default=0.9, metadata=_check(_fraction))


def _globs(v: Any) -> str | None:
    ok = all(0 < len(p) <= 253 and all(c.isalnum() or c in "-._*?" for c in p) for p in v)
    return None if ok else "a list of names or globs (letters, digits, '-', '.', '_', '*', '?')"


def _at_most_one(v: Any) -> str | None:
    return None if 0 < v <= 1 else "a fraction in (0, 1], e.g. 0.5"


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    """What chaos may touch and how hard (docs/chaos.md). Nothing is allowed by default:
    a context, and the nodes for node actions, must be named."""

    # kubeconfig contexts (globs) chaos may act in; empty: none
    contexts: tuple[str, ...] = field(default=(), metadata=_check(_globs))
    # namespaces (globs) whose pods and Jobs chaos may touch; empty: the target's namespace
    namespaces: tuple[str, ...] = field(default=(), metadata=_check(_globs))
    # nodes (globs) chaos may cordon, drain, silence or saturate; empty: none
    nodes: tuple[str, ...] = field(default=(), metadata=_check(_globs))
    # a context or API server whose name looks like production (prod, prd) is refused
    allow_production: bool = False
    # at most this share of the pods a selector matches are disrupted at once
    max_pod_fraction: float = field(default=0.5, metadata=_check(_at_most_one))
    # at most this share of the cluster's nodes are cordoned or silenced at once
    max_node_fraction: float = field(default=0.5, metadata=_check(_at_most_one))
    # the longest one fault may last (a saturation, a drain's hold, a node failure)
    max_fault_s: float = field(default=600.0, metadata=_check(_positive))
    # server-side dead-man switch: markers on what chaos changed expire this long after the
    # fault was due to end, and `kubedrill chaos janitor` undoes them then
    dead_man_s: float = field(default=300.0, metadata=_check(_positive))
    # how long a rollback waits for the cluster to be restored (a burner's pods gone, a
    # silenced node Ready again) before it counts as failed
    rollback_timeout_s: float = field(default=60.0, metadata=_check(_positive))
    # node_drain's force mode (deletes instead of evicting, bypassing PDBs) is refused
    # unless this is true: it exists to prove that PDB-bypass detection works
    allow_force: bool = False
    # the intent journal (fsynced before every injection); default
    # ~/.cache/kubedrill/chaos/journal.jsonl
    journal: Path | None = None
    # node_failure on a real cluster: a command run as `<hook> fail|restore <node>`;
    # without one node_failure works only on kwok nodes (the sandbox)
    node_failure_hook: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    target: TargetSettings = TargetSettings()
    cluster: ClusterSettings = ClusterSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    load: LoadSettings = LoadSettings()
    report: ReportSettings = ReportSettings()
    run: RunSettings = RunSettings()
    chaos: ChaosSettings = ChaosSettings()

    def redacted(self) -> dict[str, dict[str, Any]]:
        """Plain data for reports, with secrets replaced by ``"***"``."""
        out: dict[str, dict[str, Any]] = {}
        for sec in dataclasses.fields(self):
            section = getattr(self, sec.name)
            values: dict[str, Any] = {}
            for f in dataclasses.fields(section):
                v = getattr(section, f.name)
                if f.metadata.get("secret") and v is not None:
                    v = "***"
                elif isinstance(v, Path):
                    v = str(v)
                elif isinstance(v, tuple):
                    v = list(v)
                values[f.name] = v
            out[sec.name] = values
        return out


# ---------------------------------------------------------------- parsing ---

_SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Settings)[f.name] for f in dataclasses.fields(Settings)
}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _describe(inner[0]) + " or null"
    if origin is tuple:
        return "a list of " + _describe(typing.get_args(tp)[0]).removeprefix("a ")
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return names.get(tp, "a path" if tp is Path else str(tp))


class _Expected(ValueError):
    """A conversion error whose message says what was expected."""


def _coerce(tp: Any, raw: Any, name: str, from_text: bool) -> Any:
    """Convert ``raw`` to ``tp``; ``from_text`` is set for env vars and CLI flags."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if raw is None or (from_text and raw in ("", "null", "none")):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner[0], raw, name, from_text)
    if origin is Literal:
        if raw in typing.get_args(tp):
            return raw
        raise ValueError
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        if from_text and isinstance(raw, str):
            raw = [p.strip() for p in raw.split(",") if p.strip()]
        if not isinstance(raw, list | tuple):
            raise ValueError
        return tuple(_coerce(item, r, name, from_text) for r in raw)
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if from_text and isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on"):
            return True
        if from_text and isinstance(raw, str) and raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError
    if tp is float:
        if name.endswith("_s"):
            try:
                return parse_duration(raw)
            except ValueError as e:
                raise _Expected(str(e)) from None
        if isinstance(raw, bool):
            raise ValueError
        if isinstance(raw, int | float) or (from_text and isinstance(raw, str)):
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        raise ValueError
    if tp is int:
        if isinstance(raw, bool):
            raise ValueError
        if isinstance(raw, int):
            return raw
        if from_text and isinstance(raw, str):
            return int(raw)
        raise ValueError
    if tp is str:
        if isinstance(raw, str) and raw:
            return raw
        raise ValueError
    if tp is Path:
        if isinstance(raw, str | Path) and str(raw):
            return Path(raw).expanduser()
        raise ValueError
    raise TypeError(f"unsupported settings type {tp!r}")  # pragma: no cover - programmer error


def _build_section(section: str, values: Mapping[str, tuple[Any, str, bool]], base: Any) -> Any:
    cls = _SECTIONS[section]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for key, (raw, source, from_text) in values.items():
        f = fields[key]
        try:
            value = _coerce(hints[key], raw, key, from_text)
        except (ValueError, TypeError) as e:
            expected = str(e) if isinstance(e, _Expected) else _describe(hints[key])
            raise ConfigError(source, f"{section}.{key}", expected, raw) from None
        problem = (
            f.metadata["check"](value) if "check" in f.metadata and value is not None else None
        )
        if problem:
            raise ConfigError(source, f"{section}.{key}", problem, raw)
        changes[key] = value
    return dataclasses.replace(base, **changes)


def _suggest(key: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse ``drill.yaml`` into ``{section: {key: value}}``, checking every name."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "an existing, readable YAML file (file not found)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            source, "", f"a readable UTF-8 YAML file ({e.__class__.__name__})"
        ) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(source, where, "valid YAML") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(
            source, "", "a mapping of sections (target, cluster, …) at top level", doc
        )
    out: dict[str, dict[str, Any]] = {}
    for section, body in doc.items():
        if not isinstance(section, str) or section not in _SECTIONS:
            hint = _suggest(str(section), list(_SECTIONS))
            shown = section if isinstance(section, str) and section.isprintable() else repr(section)
            raise ConfigError(source, shown, "a known section: " + ", ".join(_SECTIONS) + hint)
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(source, section, "a mapping of keys", body)
        names = [f.name for f in dataclasses.fields(_SECTIONS[section])]
        for key in body:
            if not isinstance(key, str) or key not in names:
                shown = key if isinstance(key, str) and key.isprintable() else repr(key)
                raise ConfigError(
                    source,
                    f"{section}.{shown}",
                    "a known key: " + ", ".join(names) + _suggest(str(key), names),
                )
        out[section] = dict(body)
    return out


def _env_values(env: Mapping[str, str]) -> dict[str, dict[str, tuple[Any, str, bool]]]:
    out: dict[str, dict[str, tuple[Any, str, bool]]] = {}
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var in (ENV_PREFIX + "CONFIG", ENV_PREFIX + "BIN_DIR"):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        for section in _SECTIONS:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                names = [f.name for f in dataclasses.fields(_SECTIONS[section])]
                if key not in names:
                    raise ConfigError(var, f"{section}.{key}", "a known key: " + ", ".join(names))
                out.setdefault(section, {})[key] = (raw, var, True)
                break
        # other KUBEDRILL_* variables (bin dir, sandbox dir) belong to other tools
    return out


def load_settings(
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_source: str = "command line",
    cwd: Path | None = None,
) -> Settings:
    """Build :class:`Settings` from every source, in precedence order.

    ``overrides`` maps dotted keys (``"prometheus.url"``) to values given on the command line;
    ``None`` values are ignored so unset options do not mask lower layers. Without
    ``config`` (or ``$KUBEDRILL_CONFIG``), ``drill.yaml`` in ``cwd`` (default: the working
    directory) is used when it exists.
    """
    env = os.environ if env is None else env
    if config is None and env.get(ENV_PREFIX + "CONFIG"):
        config = Path(env[ENV_PREFIX + "CONFIG"])
    if config is None and (cwd or Path.cwd()).joinpath(DEFAULT_CONFIG).is_file():
        config = (cwd or Path.cwd()) / DEFAULT_CONFIG
    layers: list[dict[str, dict[str, tuple[Any, str, bool]]]] = []
    if config is not None:
        file_doc = read_config_file(config)
        layers.append(
            {
                s: {k: (v, str(config), False) for k, v in body.items()}
                for s, body in file_doc.items()
            }
        )
    layers.append(_env_values(env))
    cli: dict[str, dict[str, tuple[Any, str, bool]]] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in _SECTIONS or key not in {
            f.name for f in dataclasses.fields(_SECTIONS[section])
        }:
            raise ConfigError(override_source, dotted, "a known setting")
        cli.setdefault(section, {})[key] = (value, override_source, isinstance(value, str))
    layers.append(cli)

    sections = {name: getattr(Settings(), name) for name in _SECTIONS}
    for layer in layers:
        for section, values in layer.items():
            sections[section] = _build_section(section, values, sections[section])
    return Settings(**sections)
