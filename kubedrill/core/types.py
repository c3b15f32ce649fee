"""Small value types shared by every layer: verdicts and time windows."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Verdict", "Window", "worst"]


class Verdict(enum.Enum):
    """Outcome of a check. Ordered by severity: ``worst()`` of a set is the scenario verdict."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    INCONCLUSIVE = "INCONCLUSIVE"
    FAIL = "FAIL"
    ERROR = "ERROR"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Verdict.PASS: 0, Verdict.INCONCLUSIVE: 1, Verdict.FAIL: 2, Verdict.ERROR: 3}


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    """The most severe verdict; an empty set proves nothing, so it is INCONCLUSIVE."""
    if not verdicts:
        return Verdict.INCONCLUSIVE
    return max(verdicts, key=lambda v: v.severity)


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open interval ``[start, end)`` on the run's monotonic clock (seconds)."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window end {self.end} is before start {self.start}")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end}
