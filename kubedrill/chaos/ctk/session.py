"""What the Chaos Toolkit side shares, without chaoslib: arguments, settings, sessions.

* Arguments arrive from experiment files, often as strings (``${...}`` substitutions of
  environment values): :func:`text`, :func:`integer`, :func:`number`, :func:`duration`,
  :func:`flag` and :func:`names` convert them, and a bad one is a
  :class:`~kubedrill.core.errors.ConfigError` that names the function, the argument and
  what was expected. An empty string counts as not given.
* Settings are kubedrill's (:func:`settings_from`): ``drill.yaml`` from the configuration key
  ``kubedrill_config`` (else ``$KUBEDRILL_CONFIG`` or ``./drill.yaml``), then the
  ``KUBEDRILL_*`` environment, then configuration keys ``kubedrill_<section>_<key>``
  (``kubedrill_chaos_nodes: "gpu-*"``) and ``kubedrill_kubeconfig``, highest.
* Markers: with ``$KUBEDRILL_TIMELINE_SPOOL`` set, everything the chaos engine records also
  goes to that spool file (:class:`SpoolTimeline`), where a parent kubedrill run's
  :meth:`~kubedrill.timeline.Timeline.ingest` folds it into its own timeline.
* :func:`undo_own` rolls back what *this process* left: open journal intents and cluster
  markers whose holder is this process (host, pid and start time), whatever their owner
  token, so the control can clean up after every action of its experiment.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kubedrill.adapters.kube import KubeAdapter
from kubedrill.chaos.engine import Chaos, Reconciled
from kubedrill.chaos.journal import Owner
from kubedrill.chaos.undo import find_leftovers
from kubedrill.core.durations import parse_duration
from kubedrill.core.errors import ConfigError
from kubedrill.core.settings import Settings, load_settings
from kubedrill.timeline import ChaosMarker, Note, SpoolWriter, Timeline
from kubedrill.timeline.payloads import Payload
from kubedrill.timeline.store import Observation

__all__ = [
    "ACTIVITIES_ENV",
    "SPOOL_ENV",
    "SpoolTimeline",
    "close_adapter",
    "close_timeline",
    "duration",
    "flag",
    "holder_of_this_process",
    "integer",
    "make_adapter",
    "marker_dicts",
    "names",
    "number",
    "open_session",
    "settings_from",
    "text",
    "timeline_from_env",
    "undo_own",
    "unwrap_error",
]

SPOOL_ENV = "KUBEDRILL_TIMELINE_SPOOL"  # a parent run's spool file (runner.py sets it)
ACTIVITIES_ENV = "KUBEDRILL_CTK_ACTIVITIES"  # the control's activity journal (default path)
_PREFIX = "kubedrill_"
_SECTIONS = tuple(f.name for f in dataclasses.fields(Settings))

# -- arguments --------------------------------------------------------------------------


def _given(value: object) -> bool:
    return value is not None and value != ""


def text(func: str, name: str, value: object) -> str | None:
    if not _given(value):
        return None
    if not isinstance(value, str):
        raise ConfigError(func, name, "a string", value)
    return value


def integer(func: str, name: str, value: object, minimum: int | None = None) -> int | None:
    if not _given(value):
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError
        out = int(value)
    except ValueError:
        raise ConfigError(func, name, "an integer", value) from None
    if minimum is not None and out < minimum:
        raise ConfigError(func, name, f"an integer of at least {minimum}", value)
    return out


def number(func: str, name: str, value: object) -> float | None:
    if not _given(value):
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        out = float(value)
    except ValueError:
        raise ConfigError(func, name, "a number", value) from None
    if not math.isfinite(out):
        raise ConfigError(func, name, "a finite number", value)
    return out


def duration(func: str, name: str, value: object) -> float | None:
    if not _given(value):
        return None
    try:
        return parse_duration(value)
    except ValueError as e:
        raise ConfigError(func, name, str(e), value) from None


def flag(func: str, name: str, value: object, default: bool = False) -> bool:
    if not _given(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(func, name, "true or false", value)


def names(func: str, name: str, value: object) -> tuple[str, ...]:
    """A list of names, or one comma-separated string of them; empty: none given."""
    if not _given(value):
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(func, name, "a list of names or a comma-separated string", value)
    return tuple(i.strip() for i in items if i.strip())


def unwrap_error(text: str) -> str:
    """chaoslib wraps an activity's error in ``chaoslib.exceptions.ActivityFailed: `` once
    per layer; the message without those prefixes."""
    prefix = "chaoslib.exceptions.ActivityFailed: "
    text = text.strip()
    while text.startswith(prefix):
        text = text[len(prefix) :].strip()
    return text


# -- settings ---------------------------------------------------------------------------


def _overrides(configuration: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in configuration.items():
        if not key.startswith(_PREFIX) or key == _PREFIX + "config":
            continue
        rest = key[len(_PREFIX) :]
        if rest == "kubeconfig":
            rest = "cluster_kubeconfig"
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(
                "experiment configuration",
                key,
                "kubedrill_config, kubedrill_kubeconfig or kubedrill_<section>_<key> with a "
                f"section of {', '.join(_SECTIONS)} (e.g. kubedrill_chaos_nodes)",
            )
        field = rest[len(section) + 1 :]
        known = [f.name for f in dataclasses.fields(getattr(Settings(), section))]
        if field not in known:
            raise ConfigError(
                "experiment configuration",
                key,
                f"a setting of section {section}: "
                + ", ".join(f"{_PREFIX}{section}_{k}" for k in known),
            )
        if _given(value):
            out[f"{section}.{field}"] = value
    return out


def settings_from(
    configuration: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> Settings:
    """kubedrill's settings for an activity (see the module doc for the precedence)."""
    conf = dict(configuration or {})
    path = text("experiment configuration", "kubedrill_config", conf.get(_PREFIX + "config"))
    return load_settings(
        Path(path) if path else None,
        env=os.environ if env is None else env,
        overrides=_overrides(conf),
        override_source="experiment configuration (kubedrill_*)",
    )


def make_adapter(settings: Settings) -> Any:
    """The kube adapter for the settings' cluster (tests replace it with a fake)."""
    return KubeAdapter.from_settings(settings.cluster)


# -- the timeline -----------------------------------------------------------------------


class SpoolTimeline(Timeline):
    """A timeline that also appends every observation to a parent run's spool file."""

    def __init__(self, spool: Path, source: str = "chaostoolkit") -> None:
        super().__init__()
        self._writer = SpoolWriter(spool, source)

    def record(
        self, data: Payload, source: str = "", t: float | None = None, wall: float | None = None
    ) -> Observation[Any]:
        obs = super().record(data, source, t, wall)
        self._writer.write(data, obs.t)
        return obs

    def close(self) -> None:
        self._writer.close()


def timeline_from_env(env: Mapping[str, str] | None = None) -> Timeline:
    spool = (os.environ if env is None else env).get(SPOOL_ENV)
    return SpoolTimeline(Path(spool)) if spool else Timeline()


def close_timeline(timeline: Timeline) -> None:
    if isinstance(timeline, SpoolTimeline):
        timeline.close()


def marker_dicts(timeline: Timeline) -> list[dict[str, str]]:
    """The chaos markers and notes recorded so far, as plain data for CTK's journal."""
    out: list[dict[str, str]] = []
    for obs in timeline.select(ChaosMarker):
        m = obs.data
        out.append({"action": m.action, "target": m.target, "stage": m.stage, "detail": m.detail})
    for note in timeline.select(Note):
        out.append({"note": note.data.text, "level": note.data.level})
    return out


# -- sessions ---------------------------------------------------------------------------


def open_session(
    settings: Settings,
    timeline: Timeline,
    say: Callable[[str], None],
    check_context: bool = True,
) -> Chaos:
    """A :class:`Chaos` session on the cluster the settings name. ``check_context=False``
    only for cleanup: it touches nothing chaos did not mark."""
    adapter = make_adapter(settings)
    try:
        return Chaos(adapter, settings, timeline, say=say, check_context=check_context)
    except BaseException:
        close_adapter(adapter)
        raise


def close_adapter(adapter: object) -> None:
    close = getattr(adapter, "close", None)
    if callable(close):
        close()


def holder_of_this_process() -> str:
    """The holder string the chaos engine puts on what this process changes."""
    me = Owner.me()
    return f"{me.host}/{me.pid}/{me.start}"


def undo_own(chaos: Chaos, holders: Iterable[str] = ()) -> list[Reconciled]:
    """Undo what this process (or one of ``holders``) left, journal first, then the cluster
    markers (checked against the API); each is a ``leftover`` then ``rolled_back`` (or
    ``failed``) marker. Other runs' markers are left alone."""
    wanted = {holder_of_this_process(), *holders}
    out: list[Reconciled] = []
    for intent in chaos.journal.open_intents():
        o = intent.owner
        if f"{o.host}/{o.pid}/{o.start}" not in wanted:
            continue
        chaos.timeline.record(
            ChaosMarker(intent.action, intent.target, "leftover", "journal"), "chaos"
        )
        ok = chaos.undo_intent(intent)
        out.append(Reconciled("journal", intent.target, "undone" if ok else "failed", ok))
    for left in find_leftovers(chaos.adapter):
        if left.holder in wanted:
            out.append(chaos.undo_leftover(left))
    return out
