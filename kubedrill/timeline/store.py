"""The timeline store: append-only, thread-safe, kept in time order as it is written.

Producers in this process call :meth:`Timeline.record`; producers in child processes
(Locust workers, the reference service) append JSON lines to a spool file with
:class:`SpoolWriter`, and :meth:`Timeline.ingest` folds them in. ``time.monotonic()`` is
system-wide on Linux, so timestamps from children are on the same clock.

Observations are kept sorted by time on insertion (almost always an append), per payload
class, so :meth:`Timeline.select` is a slice, never a sort: a game day of hours stays linear.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

from kubedrill.core.errors import ConfigError, KubedrillError
from kubedrill.core.types import Window
from kubedrill.timeline.payloads import P, Payload, PayloadTypes, PhaseMark

__all__ = ["Observation", "SpoolWriter", "Timeline", "TimelineCorrupt"]


class TimelineCorrupt(KubedrillError):
    """A spool line could not be decoded: the run's evidence is damaged (an ERROR of the
    run, not a usage error)."""


@dataclass(frozen=True, slots=True)
class Observation(Generic[P]):
    t: float  # monotonic seconds
    wall: float  # unix epoch seconds
    source: str
    data: P

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "wall": self.wall,
            "source": self.source,
            "kind": self.data.kind,
            "data": self.data.to_dict(),
        }


class _Series:
    """Observations of one payload class, sorted by ``t`` (with a parallel key list)."""

    __slots__ = ("items", "keys")

    def __init__(self) -> None:
        self.items: list[Observation[Any]] = []
        self.keys: list[float] = []

    def add(self, obs: Observation[Any]) -> None:
        if not self.keys or obs.t >= self.keys[-1]:
            self.items.append(obs)
            self.keys.append(obs.t)
            return
        i = bisect.bisect_right(self.keys, obs.t)
        self.items.insert(i, obs)
        self.keys.insert(i, obs.t)

    def between(self, window: Window | None) -> list[Observation[Any]]:
        if window is None:
            return list(self.items)
        lo = bisect.bisect_left(self.keys, window.start)
        hi = bisect.bisect_left(self.keys, window.end)
        return self.items[lo:hi]


class Timeline:
    """Append-only, thread-safe record of a run."""

    def __init__(self, types: PayloadTypes | None = None) -> None:
        self._types = types or PayloadTypes()
        self._lock = threading.RLock()
        self._all = _Series()
        self._by_type: dict[type[Payload], _Series] = {}
        self._spools: dict[Path, int] = {}
        self._phase_names: set[str] = set()
        # Anchor between the two clocks, to place monotonic times on the wall clock.
        self.mono0 = time.monotonic()
        self.wall0 = time.time()

    # ---------------------------------------------------------------- append
    def _add(self, obs: Observation[Any]) -> None:  # caller holds the lock
        self._all.add(obs)
        series = self._by_type.get(type(obs.data))
        if series is None:
            series = self._by_type[type(obs.data)] = _Series()
        series.add(obs)

    def record(
        self, data: Payload, source: str = "", t: float | None = None, wall: float | None = None
    ) -> Observation[Any]:
        now_m = time.monotonic() if t is None else t
        now_w = self.to_wall(now_m) if wall is None else wall
        obs: Observation[Any] = Observation(now_m, now_w, source, data)
        with self._lock:
            self._add(obs)
        return obs

    def to_wall(self, t: float) -> float:
        return self.wall0 + (t - self.mono0)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark a phase around a block: ``with timeline.phase("inject"): ...``.

        A phase name is used once per timeline: a second ``stall`` would make the
        ``stall`` window ambiguous, so it is refused (name them ``stall-1``, ``stall-2``).
        """
        with self._lock:
            if name in self._phase_names:
                raise ValueError(
                    f"phase {name!r} was already used on this timeline; give each phase its "
                    f"own name (e.g. {name}-1, {name}-2) so every check judges one window"
                )
            self._phase_names.add(name)
        self.record(PhaseMark(name, "start"), source="phase")
        try:
            yield
        finally:
            self.record(PhaseMark(name, "end"), source="phase")

    # -------------------------------------------------------------- children
    def spool(self, path: Path) -> Path:
        """Create a spool file child processes append to; :meth:`ingest` reads it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        with self._lock:
            self._spools.setdefault(path, 0)
        return path

    def ingest(self) -> int:
        """Fold in complete lines appended to spools since the last call; returns how many.

        One lock is held across read, decode and commit, so two threads ingesting at once
        never fold the same lines twice. A line that does not decode raises
        :class:`TimelineCorrupt` naming the file and byte offset; the offset is not
        advanced past it, so the damage is reported again rather than skipped.
        """
        added = 0
        with self._lock:
            for path, offset in list(self._spools.items()):
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                end = chunk.rfind(b"\n") + 1  # a partial last line waits for the next call
                decoded: list[Observation[Any]] = []
                pos = offset
                for line in chunk[:end].split(b"\n")[:-1]:
                    if line.strip():
                        decoded.append(self._decode_line(line, path, pos))
                    pos += len(line) + 1
                for obs in decoded:
                    self._add(obs)
                added += len(decoded)
                self._spools[path] = offset + end
        return added

    def _decode_line(self, line: bytes, path: Path, pos: int) -> Observation[Any]:
        try:
            item = json.loads(line)
        except ValueError as e:
            raise TimelineCorrupt(
                f"spool {path}: line at byte {pos} is not JSON ({e}): {line[:120]!r}"
            ) from None
        try:
            return self._decode(item, f"{path} byte {pos}")
        except ConfigError as e:
            raise TimelineCorrupt(f"spool {path}: line at byte {pos}: {e}") from None

    # ----------------------------------------------------------------- query
    def observations(self) -> list[Observation[Any]]:
        with self._lock:
            return list(self._all.items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._all.items)

    def select(
        self, cls: type[P], window: Window | None = None, source: str | None = None
    ) -> list[Observation[P]]:
        """Observations whose payload is ``cls``, optionally within ``window``, by time."""
        with self._lock:
            parts = [s.between(window) for t, s in self._by_type.items() if issubclass(t, cls)]
        if not parts:
            return []
        out = parts[0] if len(parts) == 1 else sorted((o for p in parts for o in p), key=_t)
        return out if source is None else [o for o in out if o.source == source]

    def phases(self) -> dict[str, Window]:
        """Every phase that started, by name; one still open ends now."""
        starts: dict[str, float] = {}
        out: dict[str, Window] = {}
        for o in self.select(PhaseMark):
            if o.data.edge == "start":
                starts.setdefault(o.data.name, o.t)
            elif o.data.name in starts and o.data.name not in out:
                out[o.data.name] = Window(starts[o.data.name], o.t)
        now = time.monotonic()
        for name, start in starts.items():
            out.setdefault(name, Window(start, max(now, start)))
        return out

    def span(self) -> Window | None:
        """The whole run: from the timeline's creation (or anything earlier it holds) to just
        after the last thing observed; None when nothing was observed."""
        items = self.observations()
        if not items:
            return None
        start, end = min(self.mono0, items[0].t), items[-1].t
        for o in items:
            span = o.data.interval()
            if span is not None:
                start, end = min(start, span[0]), max(end, span[1])
        return Window(start, end + 1e-6)

    def window_for(self, phase: str | None) -> Window | None:
        """The phase's window, or the whole run for ``None``; None when unknown."""
        return self.span() if phase is None else self.phases().get(phase)

    # ----------------------------------------------------------------- (de)serialize
    def to_json(self) -> dict[str, Any]:
        return {
            "clock": {"mono0": self.mono0, "wall0": self.wall0},
            "observations": [o.to_dict() for o in self.observations()],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], types: PayloadTypes | None = None) -> Timeline:
        tl = cls(types)
        try:
            tl.mono0 = float(doc["clock"]["mono0"])
            tl.wall0 = float(doc["clock"]["wall0"])
            raw = list(doc["observations"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                "timeline", "clock/observations", "a kubedrill timeline document"
            ) from e
        for i, item in enumerate(raw):
            tl._add(tl._decode(item, f"observations[{i}]"))
        return tl

    def _decode(self, item: Any, where: str) -> Observation[Any]:
        try:
            data = self._types.decode(item["kind"], item["data"])
            return Observation(float(item["t"]), float(item["wall"]), str(item["source"]), data)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                "timeline", where, "an observation {t, wall, source, kind, data}"
            ) from e


def _t(o: Observation[Any]) -> float:
    return o.t


class SpoolWriter:
    """Appends observations as JSON lines; safe to use from many processes at once.

    Each observation is one ``write()`` on an ``O_APPEND`` descriptor, so lines from
    concurrent writers never interleave.
    """

    def __init__(self, path: Path, source: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._source = source
        self._wall_offset = time.time() - time.monotonic()

    def write(self, data: Payload, t: float | None = None) -> None:
        now = time.monotonic() if t is None else t
        obs = Observation(now, now + self._wall_offset, self._source, data)
        os.write(self._fd, (json.dumps(obs.to_dict(), separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
