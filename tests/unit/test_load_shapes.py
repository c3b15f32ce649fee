"""Load shapes and intended-time scheduling: pure functions, checked exactly."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtests.schedule import arrival_times, window_bounds, window_index
from loadtests.shapes import (
    SHAPES,
    ShapeError,
    expected_arrivals,
    make_shape,
    parse_shape_args,
)


def test_constant_is_flat_and_zero_outside_the_run() -> None:
    s = make_shape("constant", 100, 60)
    assert [s.rate(t) for t in (0, 30, 59.999)] == [100, 100, 100]
    assert s.rate(-0.001) == 0 and s.rate(60) == 0


def test_step_climbs_in_equal_levels_then_holds() -> None:
    s = make_shape("step", 100, 50, {"start": 20, "steps": 5, "step_s": 10})
    assert [s.rate(t) for t in (0, 9.99, 10, 20, 30, 40, 49.9)] == [20, 20, 40, 60, 80, 100, 100]
    default = make_shape("step", 100, 50)  # start rate/5, 5 steps of duration/5
    assert default.rate(0) == 20 and default.rate(45) == 100


def test_ramp_is_linear_then_holds() -> None:
    s = make_shape("ramp", 100, 60, {"ramp_s": 20})
    assert s.rate(0) == 0 and s.rate(10) == pytest.approx(50) and s.rate(20) == 100
    assert s.rate(59) == 100
    assert make_shape("ramp", 100, 60, {"start": 40, "ramp_s": 20}).rate(10) == pytest.approx(70)


def test_spike_is_peak_only_inside_its_window() -> None:
    s = make_shape("spike", 50, 60, {"peak": 500, "at_s": 20, "for_s": 5})
    assert [s.rate(t) for t in (19.99, 20, 24.99, 25)] == [50, 500, 500, 50]
    d = make_shape("spike", 50, 100)
    assert d.params["peak"] == 150 and d.params["at_s"] == 40 and d.params["for_s"] == 20


def test_soak_warms_up_holds_and_ramps_down() -> None:
    s = make_shape("soak", 100, 3600, {"ramp_s": 60, "down_s": 100})
    assert s.rate(30) == pytest.approx(50)
    assert s.rate(1800) == 100
    assert s.rate(3550) == pytest.approx(50)
    assert make_shape("soak", 100, 3600).params["ramp_s"] == 60


@pytest.mark.parametrize(
    ("name", "rate", "args", "arg"),
    [
        ("sine", 10, {}, "shape"),
        ("constant", -1, {}, "rate"),
        ("constant", math.inf, {}, "rate"),
        ("spike", 10, {"peak": -5}, "shape-args.peak"),
        ("spike", 10, {"height": 5}, "shape-args.height"),
        ("step", 10, {"steps": 2.5}, "shape-args.steps"),
        ("ramp", 10, {"ramp_s": 0}, "shape-args.ramp_s"),
    ],
)
def test_bad_shapes_name_the_argument(name: str, rate: float, args: dict, arg: str) -> None:
    with pytest.raises(ShapeError) as e:
        make_shape(name, rate, 60, args)
    assert e.value.arg == arg


def test_parse_shape_args() -> None:
    assert parse_shape_args("peak=300, at_s=20s,for_s=5") == {"peak": 300, "at_s": 20, "for_s": 5}
    assert parse_shape_args("") == {}
    with pytest.raises(ShapeError, match="key=number"):
        parse_shape_args("peak")
    with pytest.raises(ShapeError) as e:
        parse_shape_args("peak=lots")
    assert e.value.arg == "shape-args.peak"


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_schedule_sends_what_the_shape_integrates_to(name: str) -> None:
    shape = make_shape(name, 200, 20)
    times = list(arrival_times(shape.rate, shape.duration))
    assert times == sorted(times) and times[0] >= 0 and times[-1] < 20
    assert len(times) == pytest.approx(expected_arrivals(shape), abs=1.5)


def test_constant_rate_sends_exactly_on_the_grid() -> None:
    times = list(arrival_times(lambda t: 100.0, 12.0))
    assert len(times) == 1200  # not 1201: float sums must not add a send at the end
    assert times == pytest.approx([k / 100 for k in range(1200)], abs=1e-9)


def test_ramp_arrivals_follow_the_integral() -> None:
    # rate 10·t: Λ(t) = 5t², so the j-th send is due at sqrt(j/5)
    times = list(arrival_times(lambda t: 10.0 * t, 10.0))
    assert len(times) == 500
    assert times[1:] == pytest.approx([math.sqrt(j / 5) for j in range(1, 500)], abs=2e-3)


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(min_value=1, max_value=2000),
    workers=st.integers(min_value=1, max_value=8),
)
def test_workers_split_the_stream_exactly(rate: float, workers: int) -> None:
    """Worker i takes requests j ≡ i (mod N): together they are the single stream."""

    def f(t: float) -> float:
        return rate

    whole = list(arrival_times(f, 2.0))
    parts = [list(arrival_times(f, 2.0, worker=i, workers=workers)) for i in range(workers)]
    assert sum(len(p) for p in parts) == len(whole)
    for i, p in enumerate(parts):
        assert p == pytest.approx(whole[i::workers], abs=1e-6)


def test_schedule_is_bounded_by_count_and_time() -> None:
    assert len(list(arrival_times(lambda t: 1e6, 100.0, max_count=10))) == 10
    assert list(arrival_times(lambda t: 0.0, 5.0)) == []
    assert list(arrival_times(lambda t: 10.0, 0.0)) == []
    with pytest.raises(ValueError, match="worker"):
        list(arrival_times(lambda t: 1.0, 1.0, worker=2, workers=2))


def test_window_math_aligns_to_the_clock() -> None:
    assert window_index(12.3, 1.0) == 12
    assert window_index(12.3, 5.0) == 2
    assert window_bounds(2, 5.0) == (10.0, 15.0)
    assert window_index(-0.5, 1.0) == -1
