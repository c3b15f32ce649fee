"""One timeline, one clock: every observation of a run, appended as it happens."""

from kubedrill.timeline.payloads import (
    BUILTIN_PAYLOADS,
    Attachment,
    ChaosMarker,
    Eviction,
    LoadOutcome,
    LoadWindow,
    MetricSample,
    Note,
    ObjectTransition,
    Payload,
    PayloadTypes,
    PhaseMark,
    Scalar,
    WatchStatus,
)
from kubedrill.timeline.store import Observation, SpoolWriter, Timeline, TimelineCorrupt

__all__ = [
    "BUILTIN_PAYLOADS",
    "Attachment",
    "ChaosMarker",
    "Eviction",
    "LoadOutcome",
    "LoadWindow",
    "MetricSample",
    "Note",
    "ObjectTransition",
    "Observation",
    "Payload",
    "PayloadTypes",
    "PhaseMark",
    "Scalar",
    "SpoolWriter",
    "Timeline",
    "TimelineCorrupt",
    "WatchStatus",
]
