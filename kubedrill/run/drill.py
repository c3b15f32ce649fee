"""The ``drill`` object a scenario receives: its settings, its timeline, its checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from kubedrill.adapters.prom import PrometheusClient, PrometheusUnavailable
from kubedrill.checks import Check, CheckResult, expect
from kubedrill.core.errors import ConfigError
from kubedrill.core.settings import Settings
from kubedrill.load import LoadRun, LoadSpec
from kubedrill.timeline import Note, Payload, Timeline

__all__ = ["Drill"]


class Drill:
    """Registers a scenario's claims and evaluates them over its timeline at the end."""

    def __init__(self, scenario_id: str, settings: Settings, timeline: Timeline | None = None):
        self.scenario_id = scenario_id
        self.settings = settings
        self.timeline = timeline or Timeline()
        self._checks: list[Check] = []
        self._results: list[CheckResult] | None = None

    # ------------------------------------------------------------ claims
    def add(self, check: Check) -> Check:
        if self._results is not None:
            raise RuntimeError(
                "checks were already evaluated; register them before the scenario ends"
            )
        self._checks.append(check)
        return check

    def expect(
        self, expression: str, phase: str | None = None, name: str | None = None, **params: Any
    ) -> Check:
        """Register a claim: ``drill.expect("p95_ms <= 100", phase="inject")``.

        With ``query=`` the claim is judged by Prometheus over the phase window
        (``drill.expect("value < 0.01", query="rate(errors[1m])")``).
        """
        if "query" in params and "client" not in params:
            params["client"], reason = self._prometheus()
            params.setdefault("unavailable_reason", reason)
        return self.add(expect(expression, phase=phase, name=name, **params))

    def use_prometheus(self, url: str) -> None:
        """Judge this scenario's PromQL claims with the Prometheus at ``url``."""
        prom = dataclasses.replace(self.settings.prometheus, url=url)
        self.settings = dataclasses.replace(self.settings, prometheus=prom)

    def _prometheus(self) -> tuple[PrometheusClient | None, str]:
        try:
            return PrometheusClient(self.settings.prometheus), ""
        except PrometheusUnavailable as e:
            return None, str(e)

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(self._checks)

    # ------------------------------------------------------------ recording
    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        with self.timeline.phase(name):
            yield

    def record(self, data: Payload, source: str = "scenario") -> None:
        self.timeline.record(data, source=source)

    def note(self, text: str, level: Literal["info", "warning", "error"] = "info") -> None:
        self.timeline.record(Note(text, level), source="scenario")

    def load(self, url: str, duration: float, **spec: Any) -> LoadRun:
        """A Locust run onto this scenario's timeline, with the run's load settings
        (``load.workers``, ``load.window_s``) as defaults and its caps (``load.max_rate``,
        ``load.max_duration_s``) enforced: ``with drill.load(url, 30, rate=40): ...``."""
        cfg = self.settings.load
        spec.setdefault("workers", cfg.workers)
        spec.setdefault("window_s", cfg.window_s)
        rate = spec.get("rate")
        if rate is not None and rate > cfg.max_rate:
            raise ConfigError("load.max_rate", "rate", f"at most {cfg.max_rate:g} requests/s", rate)
        if duration > cfg.max_duration_s:
            raise ConfigError(
                "load.max_duration_s", "duration", f"at most {cfg.max_duration_s:g} s", duration
            )
        return LoadRun(LoadSpec(url=url, duration=duration, **spec), self.timeline)

    # ------------------------------------------------------------ run knobs
    @property
    def dry_run(self) -> bool:
        return self.settings.run.dry_run

    def seconds(self, nominal: float) -> float:
        """A duration scaled by ``--time-scale`` (e.g. 0.1 for a quick CI pass)."""
        return nominal * self.settings.run.time_scale

    # ------------------------------------------------------------ verdicts
    def collect(self) -> None:
        """Let checks fetch outside evidence now, while its sources are up (the plugin calls
        this when the scenario body returns, before fixtures tear down)."""
        if self._results is None:
            self.timeline.ingest()
            for c in self._checks:
                c.collect(self.timeline)

    def evaluate(self) -> list[CheckResult]:
        """Evaluate every check once (after the scenario's fixtures tore down); later calls
        return the same results. Raises ``TimelineCorrupt`` if a spool is damaged."""
        if self._results is None:
            self.timeline.ingest()
            floor = self.settings.run.coverage_floor
            self._results = [c.evaluate(self.timeline, floor) for c in self._checks]
        return list(self._results)
