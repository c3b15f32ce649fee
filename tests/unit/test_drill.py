"""The drill a scenario gets: load settings reach drill.load(), and its caps hold."""

from __future__ import annotations

import pytest

from kubedrill import ConfigError, Drill, load_settings


def _drill(**load: object) -> Drill:
    settings = load_settings(env={}, overrides={f"load.{k}": v for k, v in load.items()})
    return Drill("s", settings)


def test_load_settings_are_the_defaults_of_drill_load() -> None:
    run = _drill(workers=3, window_s=2.0).load("http://127.0.0.1:9", 5, rate=10)
    assert run.spec.workers == 3 and run.spec.window_s == 2.0
    assert run.timeline is not None and not run.running  # nothing started yet
    explicit = _drill(workers=3).load("http://127.0.0.1:9", 5, rate=10, workers=1)
    assert explicit.spec.workers == 1


def test_drill_load_refuses_what_the_caps_forbid() -> None:
    with pytest.raises(ConfigError, match=r"load\.max_rate: rate: expected at most 100"):
        _drill(max_rate=100.0).load("http://127.0.0.1:9", 5, rate=500)
    with pytest.raises(ConfigError, match=r"load\.max_duration_s: duration: expected at most 60"):
        _drill(max_duration_s=60.0).load("http://127.0.0.1:9", 120, rate=5)
