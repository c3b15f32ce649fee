"""One timeline, one clock: every observation of a run, appended as it happens.

Producers in this process call :meth:`Timeline.record`; producers in child processes
(Locust workers, the reference service) append JSON lines to a spool file with
:class:`SpoolWriter`, and :meth:`Timeline.ingest` folds them in. ``time.monotonic()`` is
system-wide on Linux, so timestamps from children are on the same clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

from kubedrill.errors import ConfigError
from kubedrill.types import Window

__all__ = [
    "BUILTIN_PAYLOADS",
    "ChaosMarker",
    "LoadWindow",
    "MetricSample",
    "Note",
    "ObjectTransition",
    "Observation",
    "Payload",
    "PayloadTypes",
    "PhaseMark",
    "SpoolWriter",
    "Timeline",
]

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Payload:
    """Base of every observation payload; ``kind`` names it in JSON."""

    kind: ClassVar[str] = "payload"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def interval(self) -> tuple[float, float] | None:
        """The time span the payload describes, when it is more than its record time."""
        return None


@dataclass(frozen=True, slots=True)
class PhaseMark(Payload):
    """Start or end of a named phase (baseline / inject / recover / anything)."""

    kind: ClassVar[str] = "phase"
    name: str
    edge: Literal["start", "end"]


@dataclass(frozen=True, slots=True)
class ObjectTransition(Payload):
    """A watched Kubernetes object changed (Deployment replicas, Pod phase, Node readiness…)."""

    kind: ClassVar[str] = "k8s"
    api_kind: str
    namespace: str
    name: str
    event: Literal["ADDED", "MODIFIED", "DELETED"]
    fields: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadWindow(Payload):
    """One recording window of one endpoint from one load worker.

    ``histogram`` is an HdrHistogram (microseconds) in its standard compressed base64
    encoding, so windows from many workers merge exactly. ``start``/``end`` are on the
    monotonic clock; latency is measured from each request's intended send time.
    """

    kind: ClassVar[str] = "load.window"
    endpoint: str
    start: float
    end: float
    count: int
    errors: Mapping[str, int]
    histogram: str
    intended: int = 0
    dropped: int = 0
    worker: str = ""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def interval(self) -> tuple[float, float] | None:
        return (self.start, self.end)


@dataclass(frozen=True, slots=True)
class ChaosMarker(Payload):
    """A chaos action's life: journaled → injected → rolled_back (or failed)."""

    kind: ClassVar[str] = "chaos"
    action: str
    target: str
    stage: Literal["journaled", "injected", "rolled_back", "failed", "refused"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MetricSample(Payload):
    """A sample of a metric (Prometheus, NVML, the reference service)."""

    kind: ClassVar[str] = "metric"
    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Note(Payload):
    """Free-text event worth showing in a report (a warning, a skipped step)."""

    kind: ClassVar[str] = "note"
    text: str
    level: Literal["info", "warning", "error"] = "info"


BUILTIN_PAYLOADS: tuple[type[Payload], ...] = (
    PhaseMark,
    ObjectTransition,
    LoadWindow,
    ChaosMarker,
    MetricSample,
    Note,
)

P = TypeVar("P", bound=Payload)


class PayloadTypes:
    """Registry of payload classes by ``kind``; inject a custom one to add kinds."""

    def __init__(self, types: tuple[type[Payload], ...] = BUILTIN_PAYLOADS) -> None:
        self._by_kind: dict[str, type[Payload]] = {}
        for t in types:
            self.register(t)

    def register(self, cls: type[P]) -> type[P]:
        """Add ``cls``; usable as a decorator on a registry instance."""
        if cls.kind in self._by_kind and self._by_kind[cls.kind] is not cls:
            raise ValueError(f"observation kind {cls.kind!r} is already registered")
        self._by_kind[cls.kind] = cls
        return cls

    def decode(self, kind: str, data: Mapping[str, Any]) -> Payload:
        cls = self._by_kind.get(kind)
        if cls is None:
            raise KeyError(kind)
        return cls(**data)


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


class Timeline:
    """Append-only, thread-safe record of a run."""

    def __init__(self, types: PayloadTypes | None = None) -> None:
        self._types = types or PayloadTypes()
        self._lock = threading.Lock()
        self._items: list[Observation[Any]] = []
        self._spools: dict[Path, int] = {}
        # Anchor between the two clocks, to place monotonic times on the wall clock.
        self.mono0 = time.monotonic()
        self.wall0 = time.time()

    # ---------------------------------------------------------------- append
    def record(
        self, data: Payload, source: str = "", t: float | None = None, wall: float | None = None
    ) -> Observation[Any]:
        now_m = time.monotonic() if t is None else t
        now_w = self.to_wall(now_m) if wall is None else wall
        obs: Observation[Any] = Observation(now_m, now_w, source, data)
        with self._lock:
            self._items.append(obs)
        return obs

    def to_wall(self, t: float) -> float:
        return self.wall0 + (t - self.mono0)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark a phase around a block: ``with timeline.phase("inject"): ...``."""
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
        """Fold in complete lines appended to spools since the last call; returns how many."""
        added = 0
        with self._lock:
            spools = list(self._spools.items())
        for path, offset in spools:
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a partial last line waits for the next call
            for n, line in enumerate(chunk[:end].splitlines()):
                if line.strip():
                    obs = self._decode(json.loads(line), f"{path} (line after byte {offset}, #{n})")
                    with self._lock:
                        self._items.append(obs)
                    added += 1
            with self._lock:
                self._spools[path] = offset + end
        return added

    # ----------------------------------------------------------------- query
    def observations(self) -> list[Observation[Any]]:
        with self._lock:
            return sorted(self._items, key=lambda o: o.t)

    def select(
        self, cls: type[P], window: Window | None = None, source: str | None = None
    ) -> list[Observation[P]]:
        """Observations whose payload is ``cls``, optionally within ``window``, by time."""
        return [
            o
            for o in self.observations()
            if isinstance(o.data, cls)
            and (window is None or window.contains(o.t))
            and (source is None or o.source == source)
        ]

    def phases(self) -> dict[str, Window]:
        """Every phase that started, by name; one still open ends now."""
        starts: dict[str, float] = {}
        out: dict[str, Window] = {}
        for o in self.select(PhaseMark):
            if o.data.edge == "start":
                starts.setdefault(o.data.name, o.t)
            elif o.data.name in starts:
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
        tl._items = [tl._decode(item, f"observations[{i}]") for i, item in enumerate(raw)]
        return tl

    def _decode(self, item: Any, where: str) -> Observation[Any]:
        try:
            data = self._types.decode(item["kind"], item["data"])
            return Observation(float(item["t"]), float(item["wall"]), str(item["source"]), data)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                "timeline", where, "an observation {t, wall, source, kind, data}"
            ) from e


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
