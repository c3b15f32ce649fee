"""The payloads an observation can carry; ``kind`` names each in JSON.

Add a kind by registering its class on a :class:`PayloadTypes` instance given to the
:class:`~kubedrill.timeline.Timeline`; there is no global registry to mutate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

__all__ = [
    "BUILTIN_PAYLOADS",
    "ChaosMarker",
    "Eviction",
    "LoadOutcome",
    "LoadWindow",
    "MetricSample",
    "Note",
    "ObjectTransition",
    "P",
    "Payload",
    "PayloadTypes",
    "PhaseMark",
    "Scalar",
    "WatchStatus",
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
    #: successful requests that completed during [start, end), whenever they were due
    #: (-1: not recorded, in spools from before it existed)
    answered: int = -1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def interval(self) -> tuple[float, float] | None:
        return (self.start, self.end)


@dataclass(frozen=True, slots=True)
class ChaosMarker(Payload):
    """A chaos action's life: journaled → injected → rolled_back (or failed: the undo did
    not work); refused (nothing was written); leftover (found at a start or by cleanup,
    left by an earlier run, then rolled_back or failed)."""

    kind: ClassVar[str] = "chaos"
    action: str
    target: str
    stage: Literal["journaled", "injected", "rolled_back", "failed", "refused", "leftover"]
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


@dataclass(frozen=True, slots=True)
class LoadOutcome(Payload):
    """How one load run ended, recorded when it ends: a run that failed, was stopped or
    timed out, or dropped sends, is evidence of less than it intended.

    ``planned`` is what the spec asks for in all (the rate shape over its duration),
    ``intended`` counts the sends the schedule reached (dropped included) as far as the
    windows that made it to the timeline tell, ``sent`` those that went out, ``completed``
    those that got an answer or an error back; ``ended`` is when the process was seen gone.
    """

    kind: ClassVar[str] = "load.outcome"
    run: str  # the load run's source name, as on its LoadWindows
    outcome: Literal["completed", "failed", "timed_out", "stopped"]
    started: float
    ended: float
    intended: int
    sent: int
    completed: int
    dropped: int
    returncode: int | None = None
    detail: str = ""
    planned: int = 0  # sends the spec's rate shape asks for over its duration (open model)

    def interval(self) -> tuple[float, float] | None:
        return (self.started, self.ended)


@dataclass(frozen=True, slots=True)
class WatchStatus(Payload):
    """Continuity of the cluster watch of one kind: ``synced`` when a LIST (the first, or a
    relist after a break) has brought the recorded state up to date, ``lost`` when the
    watch broke, ``stopped`` when watching ended, ``unserved`` when the cluster does not
    serve the kind (a CRD that is not installed). Between ``lost`` and the next ``synced``
    the timeline may have missed changes of that kind, or recorded them late."""

    kind: ClassVar[str] = "watch"
    api_kind: str
    state: Literal["synced", "lost", "stopped", "unserved"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Eviction(Payload):
    """One request to the Eviction API and its answer: ``evicted``, ``refused`` (HTTP 429:
    a PodDisruptionBudget held; ``detail`` is the server's reason, naming the budget) or
    ``failed`` (any other error). Recorded by whoever evicts (a drain), so disruption
    checks can count refusals and tell evictions from plain deletes."""

    kind: ClassVar[str] = "k8s.eviction"
    namespace: str
    pod: str
    outcome: Literal["evicted", "refused", "failed"]
    detail: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True)
class Attachment(Payload):
    """A document a scenario attaches to its report (a Chaos Toolkit journal): shown in
    the HTML report under the scenario, kept whole in the JSON."""

    kind: ClassVar[str] = "attachment"
    name: str
    media_type: str
    content: str


BUILTIN_PAYLOADS: tuple[type[Payload], ...] = (
    PhaseMark,
    ObjectTransition,
    LoadWindow,
    ChaosMarker,
    MetricSample,
    Note,
    LoadOutcome,
    WatchStatus,
    Eviction,
    Attachment,
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
