"""Load shapes: pure functions of elapsed seconds → arrival rate (requests per second).

No locust import here: the engine validates shapes with this module, unit tests check
it exactly, and the open-model scheduler in Locust's processes evaluates it.

Every shape is 0 before 0 and from ``duration`` on. ``rate`` is the shape's nominal
rate (the CLI's ``--rate``); extra parameters come from ``--shape-args`` (defaults in
brackets):

* ``constant``: ``rate``.
* ``step``: ``steps`` [5] equal levels from ``start`` [rate/steps] up to ``rate``, each
  held ``step_s`` [duration/steps] seconds; ``rate`` after the last.
* ``ramp``: linear from ``start`` [0] to ``rate`` over ``ramp_s`` [duration], then ``rate``.
* ``spike``: ``rate``, and ``peak`` [3·rate] during ``[at_s, at_s + for_s)``
  [0.4·duration, 0.2·duration].
* ``soak``: linear warm-up from 0 over ``ramp_s`` [min(60, 0.1·duration)], then ``rate``
  for a long time, with an optional linear ramp down over the last ``down_s`` [0] seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "SHAPES",
    "RateShape",
    "ShapeError",
    "expected_arrivals",
    "make_shape",
    "parse_shape_args",
]

MAX_RATE = 1_000_000.0


class ShapeError(ValueError):
    """A shape name or argument is invalid; ``arg`` names it."""

    def __init__(self, arg: str, expected: str, got: object = None) -> None:
        self.arg = arg
        self.expected = expected
        self.got = got
        got_part = "" if got is None else f" (got {got!r})"
        super().__init__(f"{arg}: expected {expected}{got_part}")


RateFn = Callable[[float, Mapping[str, float]], float]


def _constant(t: float, p: Mapping[str, float]) -> float:
    return p["rate"]


def _step(t: float, p: Mapping[str, float]) -> float:
    steps = int(p["steps"])
    k = min(int(t // p["step_s"]), steps - 1)
    if steps == 1:
        return p["rate"]
    return p["start"] + (p["rate"] - p["start"]) * k / (steps - 1)


def _ramp(t: float, p: Mapping[str, float]) -> float:
    if t >= p["ramp_s"]:
        return p["rate"]
    return p["start"] + (p["rate"] - p["start"]) * t / p["ramp_s"]


def _spike(t: float, p: Mapping[str, float]) -> float:
    return p["peak"] if p["at_s"] <= t < p["at_s"] + p["for_s"] else p["rate"]


def _soak(t: float, p: Mapping[str, float]) -> float:
    rate, up, down, duration = p["rate"], p["ramp_s"], p["down_s"], p["duration"]
    level = rate if up <= 0 or t >= up else rate * t / up
    if down > 0 and t > duration - down:
        level = min(level, rate * (duration - t) / down)
    return level


# name → (rate function, {arg: default(rate, duration)})
_Default = Callable[[float, float], float]
SHAPES: dict[str, tuple[RateFn, dict[str, _Default]]] = {
    "constant": (_constant, {}),
    "step": (
        _step,
        {
            "steps": lambda r, d: 5.0,
            "start": lambda r, d: r / 5.0,
            "step_s": lambda r, d: d / 5.0,
        },
    ),
    "ramp": (_ramp, {"start": lambda r, d: 0.0, "ramp_s": lambda r, d: d}),
    "spike": (
        _spike,
        {
            "peak": lambda r, d: 3.0 * r,
            "at_s": lambda r, d: 0.4 * d,
            "for_s": lambda r, d: 0.2 * d,
        },
    ),
    "soak": (_soak, {"ramp_s": lambda r, d: min(60.0, 0.1 * d), "down_s": lambda r, d: 0.0}),
}


@dataclass(frozen=True, slots=True)
class RateShape:
    """A validated shape: ``shape.rate(t)`` is the arrival rate at ``t`` seconds in."""

    name: str
    duration: float
    params: Mapping[str, float] = field(default_factory=dict)

    def rate(self, t: float) -> float:
        if t < 0.0 or t >= self.duration:
            return 0.0
        return max(0.0, SHAPES[self.name][0](t, self.params))

    def describe(self) -> str:
        extra = ", ".join(
            f"{k}={v:g}" for k, v in self.params.items() if k not in ("rate", "duration")
        )
        head = f"{self.name}({self.params['rate']:g}/s for {self.duration:g}s"
        return head + (f", {extra})" if extra else ")")


def _finite(arg: str, value: float, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
    ok = math.isfinite(value) and lo <= value <= hi and not (lo_open and value == lo)
    if not ok:
        bound = f"{'>' if lo_open else '≥'} {lo:g}" + ("" if math.isinf(hi) else f" and ≤ {hi:g}")
        raise ShapeError(arg, f"a number {bound}", value)


def make_shape(
    name: str, rate: float, duration: float, args: Mapping[str, float] | None = None
) -> RateShape:
    """Validate ``name`` and its args and fill in defaults; raises :class:`ShapeError`."""
    if name not in SHAPES:
        raise ShapeError("shape", f"one of {', '.join(SHAPES)}", name)
    _finite("rate", rate, 0.0, MAX_RATE)
    _finite("duration", duration, 0.0, lo_open=True)
    defaults = SHAPES[name][1]
    args = dict(args or {})
    for k in args:
        if k not in defaults:
            allowed = ", ".join(defaults) or "none"
            raise ShapeError(f"shape-args.{k}", f"an argument of shape {name!r} ({allowed})")
    p: dict[str, float] = {"rate": float(rate), "duration": float(duration)}
    for k, default in defaults.items():
        p[k] = float(args[k]) if k in args else default(rate, duration)
    for k in defaults:
        if k == "steps":
            if p[k] != int(p[k]) or not 1 <= p[k] <= 10_000:
                raise ShapeError("shape-args.steps", "an integer from 1 to 10000", p[k])
        elif k in ("start", "peak"):
            _finite(f"shape-args.{k}", p[k], 0.0, MAX_RATE)
        elif k in ("step_s", "ramp_s") and name != "soak":
            _finite(f"shape-args.{k}", p[k], 0.0, lo_open=True)
        else:
            _finite(f"shape-args.{k}", p[k], 0.0)
    return RateShape(name, float(duration), p)


def parse_shape_args(text: str) -> dict[str, float]:
    """``"peak=300,at_s=20"`` → ``{"peak": 300.0, "at_s": 20.0}``; raises :class:`ShapeError`."""
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ShapeError("shape-args", "comma-separated key=number pairs", part)
        try:
            out[key] = float(value.strip().removesuffix("s") if key.endswith("_s") else value)
        except ValueError:
            raise ShapeError(f"shape-args.{key}", "a number", value.strip()) from None
    return out


def expected_arrivals(shape: RateShape, step: float = 0.001) -> float:
    """∫ rate dt over the whole shape (midpoint rule): how many sends it calls for."""
    n = max(1, math.ceil(shape.duration / step))
    dt = shape.duration / n
    return sum(shape.rate((i + 0.5) * dt) for i in range(n)) * dt
