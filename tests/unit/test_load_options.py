"""The Locust side's ``--kd-*`` options, validated without Locust."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from loadtests.options import from_namespace
from loadtests.shapes import ShapeError


def test_defaults_are_the_closed_model_bounded_by_an_hour() -> None:
    o = from_namespace(None)
    assert not o.open_model and o.duration == 3600 and o.spool == ""


def test_a_rate_turns_on_the_open_model_with_its_shape() -> None:
    o = from_namespace(
        SimpleNamespace(kd_rate=50, kd_shape="ramp", kd_shape_args="ramp_s=5", kd_duration=10)
    )
    assert o.open_model and o.shape is not None
    assert o.shape.rate(2.5) == pytest.approx(25)


@pytest.mark.parametrize(
    ("ns", "match"),
    [
        ({"kd_rate": -1}, "kd-rate"),
        ({"kd_rate": 5, "kd_shape_args": "peak=x", "kd_shape": "spike"}, "peak"),
        ({"kd_window": 0}, "kd-window"),
        ({"kd_max_inflight": 0}, "kd-max-inflight"),
        ({"kd_timeout": 0}, "kd-timeout"),
    ],
)
def test_bad_values_name_the_option(ns: dict, match: str) -> None:
    with pytest.raises((ValueError, ShapeError), match=match):
        from_namespace(SimpleNamespace(**ns))
