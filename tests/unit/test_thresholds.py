from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubedrill.core.durations import parse_duration
from kubedrill.core.errors import ThresholdSyntaxError
from kubedrill.core.thresholds import KNOWN_METRICS, Threshold, parse_threshold


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p95_ms <= 100", Threshold("p95_ms", "<=", 100.0)),
        ("p99_ms<0.5s", Threshold("p99_ms", "<", 500.0)),
        ("error_rate < 0.01", Threshold("error_rate", "<", 0.01)),
        ("error_rate < 1%", Threshold("error_rate", "<", 0.01)),
        ("availability >= 99.9%", Threshold("availability", ">=", 0.999)),
        ("rps >= 50", Threshold("rps", ">=", 50.0)),
        ("scale_up_within: 120s", Threshold("scale_up_within", "<=", 120.0)),
        ("scale_down_within: 2m", Threshold("scale_down_within", "<=", 120.0)),
        ("replicas >= 2", Threshold("replicas", ">=", 2.0)),
    ],
)
def test_parses(text: str, expected: Threshold) -> None:
    got = parse_threshold(text)
    assert (got.metric, got.op) == (expected.metric, expected.op)
    assert got.value == pytest.approx(expected.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("p95 <= 100", "unknown metric 'p95'"),
        ("p96_ms <= 100", "did you mean"),
        ("p95_ms =< 100", "expected '<metric> <op> <number>'"),
        ("p95_ms <= fast", "expected '<metric> <op> <number>'"),
        ("error_rate < 5", "ratio between 0 and 1"),
        ("rps >= 5%", "'%' only applies to ratios"),
        ("scale_up_within: soon", "duration"),
        ("", "expected"),
    ],
)
def test_bad_thresholds_say_what_was_expected(text: str, words: str) -> None:
    with pytest.raises(ThresholdSyntaxError, match=words.replace("(", r"\(")):
        parse_threshold(text)


def test_holds_uses_the_operator() -> None:
    t = parse_threshold("p95_ms <= 100")
    assert t.holds(100) and not t.holds(100.01)
    assert not parse_threshold("error_rate < 0.01").holds(0.01)


@given(
    metric=st.sampled_from([m for m, (u, _) in KNOWN_METRICS.items() if u not in ("s", "ratio")]),
    op=st.sampled_from(["<", "<=", ">", ">=", "=="]),
    value=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_roundtrip_through_str(metric: str, op: str, value: float) -> None:
    t = parse_threshold(f"{metric} {op} {value!r}")
    assert parse_threshold(str(t)).op == t.op
    assert parse_threshold(str(t)).value == pytest.approx(t.value, rel=1e-5)


@given(st.text(max_size=30))
def test_never_raises_anything_but_syntax_errors(text: str) -> None:
    try:
        parse_threshold(text)
    except ThresholdSyntaxError:
        pass


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), (2.5, 2.5)]
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1x", "s", "-1s", True, None, "1s2"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)
