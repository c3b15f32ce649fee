"""A run: scenarios, their checks' results, their timelines, and the overall verdict."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kubedrill import __version__
from kubedrill.checks.base import CheckResult
from kubedrill.core.settings import Settings
from kubedrill.core.types import Verdict, worst
from kubedrill.run.policy import gate_for
from kubedrill.timeline import Timeline

__all__ = [
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "TIMELINE_ENCODING",
    "RunRecord",
    "ScenarioResult",
    "decode_timeline",
    "encode_timeline",
    "new_run_id",
]

SCHEMA_ID = "https://kubedrill.dev/schemas/run-v3.json"
SCHEMA_VERSION = 3
#: v3 stores a timeline by columns: one series per (kind, source), each field one list.
#: Keys are written once per series instead of once per observation, and a long game day
#: (10^4 windows with their HDR histograms, 10^4 cluster events) stays a few MB.
TIMELINE_ENCODING = "columns/1"


def encode_timeline(timeline: Timeline) -> dict[str, Any]:
    """A timeline in the v3 columnar form; :func:`decode_timeline` reads it back exactly
    (times are kept to the microsecond)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for o in timeline.observations():
        groups.setdefault((o.data.kind, o.source), []).append(o)
    series: list[dict[str, Any]] = []
    for (kind, source), items in groups.items():
        rows = [o.data.to_dict() for o in items]
        names = list(rows[0]) if rows else []
        series.append(
            {
                "kind": kind,
                "source": source,
                "t": [round(o.t, 6) for o in items],
                "wall": [round(o.wall, 6) for o in items],
                "columns": {n: [r.get(n) for r in rows] for n in names},
            }
        )
    return {
        "clock": {"mono0": timeline.mono0, "wall0": timeline.wall0},
        "encoding": TIMELINE_ENCODING,
        "series": series,
    }


def decode_timeline(doc: dict[str, Any]) -> dict[str, Any]:
    """A run document's timeline (v3 columns or v2 observations) as the observation list
    :meth:`Timeline.from_json` reads, in time order."""
    if "observations" in doc:  # v2
        return doc
    observations: list[dict[str, Any]] = []
    for s in doc["series"]:
        cols: dict[str, list[Any]] = s["columns"]
        names = list(cols)
        for i, (t, wall) in enumerate(zip(s["t"], s["wall"], strict=True)):
            observations.append(
                {
                    "t": t,
                    "wall": wall,
                    "source": s["source"],
                    "kind": s["kind"],
                    "data": {n: cols[n][i] for n in names},
                }
            )
    observations.sort(key=lambda o: o["t"])
    return {"clock": doc["clock"], "observations": observations}


def new_run_id(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class ScenarioResult:
    id: str
    name: str
    markers: list[str]
    started: float
    ended: float
    status: Literal["ran", "skipped", "errored"]
    checks: list[CheckResult] = field(default_factory=list)
    message: str = ""
    timeline: Timeline | None = None

    @property
    def verdict(self) -> Verdict | None:
        """None for a skipped scenario; ERROR when the scenario itself broke."""
        if self.status == "skipped":
            return None
        if self.status == "errored":
            return Verdict.ERROR
        return worst([c.verdict for c in self.checks])

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "id": self.id,
            "name": self.name,
            "markers": self.markers,
            "status": self.status,
            "verdict": None if v is None else v.value,
            "message": self.message,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "duration_s": round(self.ended - self.started, 3),
            "checks": [c.to_dict() for c in self.checks],
            "timeline": None if self.timeline is None else encode_timeline(self.timeline),
        }


@dataclass(slots=True)
class RunRecord:
    settings: Settings
    run_id: str = field(default_factory=new_run_id)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """Worst scenario verdict under the gate policy (a selected scenario that was
        skipped makes it INCONCLUSIVE by default); a run with nothing that ran proved nothing."""
        return gate_for(self.settings).run_verdict([s.verdict for s in self.scenarios])

    def skipped(self) -> list[ScenarioResult]:
        return [s for s in self.scenarios if s.status == "skipped"]

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for s in self.scenarios:
            for c in s.checks:
                out[c.verdict.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        ended = self.ended if self.ended is not None else time.time()
        return {
            "$schema": SCHEMA_ID,
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "kubedrill_version": __version__,
            "started": iso(self.started),
            "ended": iso(ended),
            "duration_s": round(ended - self.started, 3),
            "dry_run": self.settings.run.dry_run,
            "suite": self.settings.run.suite,
            "inconclusive_policy": self.settings.run.inconclusive,
            "skipped_policy": self.settings.run.skipped,
            "coverage_floor": self.settings.run.coverage_floor,
            "skipped": [{"id": s.id, "reason": s.message} for s in self.skipped()],
            "target": self.settings.redacted()["target"],
            "settings": self.settings.redacted(),
            "verdict": self.verdict.value,
            "check_counts": self.counts(),
            "scenarios": [s.to_dict() for s in self.scenarios],
        }
