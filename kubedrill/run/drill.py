"""The ``drill`` object a scenario receives: its settings, its timeline, its checks."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from kubedrill.adapters.prom import PrometheusClient, PrometheusUnavailable
from kubedrill.chaos import Action, Chaos, Fault
from kubedrill.chaos.ctk import CtkRun
from kubedrill.checks import Check, CheckResult, Evidence, RolledBackCheck, expect
from kubedrill.core.errors import ConfigError
from kubedrill.core.settings import Settings
from kubedrill.core.thresholds import parse_threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.load import LoadRun, LoadSpec
from kubedrill.timeline import Attachment, Note, Payload, Timeline

__all__ = ["Drill"]


class _CtkOutcome(Check):
    """``chaostoolkit_failures == 0``: the experiment completed without a deviation or a
    failed activity (read from its journal, not from ``chaos``'s exit code)."""

    kind = "chaostoolkit"

    def __init__(self, name: str, run: CtkRun) -> None:
        super().__init__(
            parse_threshold("chaostoolkit_failures == 0"),
            None,
            f"Chaos Toolkit experiment {name} succeeded",
        )
        self.run = run

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        bad = 0 if self.run.ok else max(1, len(self.run.failed))
        return Evidence(float(bad), self.run.reason, verdict=None if self.run.ok else Verdict.FAIL)


class Drill:
    """Registers a scenario's claims and evaluates them over its timeline at the end."""

    def __init__(self, scenario_id: str, settings: Settings, timeline: Timeline | None = None):
        self.scenario_id = scenario_id
        self.settings = settings
        self.timeline = timeline if timeline is not None else Timeline()
        self._checks: list[Check] = []
        self._results: list[CheckResult] | None = None
        self._chaos: Chaos | None = None

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

    # ------------------------------------------------------------ chaos
    def chaos(self, action: Action, dry_run: bool | None = None) -> Fault:
        """A fault on this scenario's timeline, rolled back however the block ends::

            with drill.chaos(PodKill(selector="app=web", count=1)):
                time.sleep(drill.seconds(30))

        The first call opens a chaos session on the run's cluster: it checks the context
        against ``chaos.contexts`` and undoes what earlier, killed runs left. It also adds
        the claim that every fault was rolled back (``faults_not_rolled_back == 0``)."""
        if self._chaos is None:
            import sys

            from kubedrill.adapters.kube import KubeAdapter

            adapter = KubeAdapter.from_settings(self.settings.cluster)
            self._chaos = Chaos(
                adapter, self.settings, self.timeline, say=lambda m: print(m, file=sys.stderr)
            )
            self._chaos.reconcile()
            self._rollback_claim()
        return self._chaos.fault(action, dry_run=self.dry_run if dry_run is None else dry_run)

    def chaos_toolkit(
        self,
        experiment: str | Path,
        var: Mapping[str, str] | None = None,
        timeout_s: float = 900.0,
    ) -> CtkRun:
        """Run a Chaos Toolkit experiment with ``chaos run`` in its own process (it blocks;
        start load first). Its markers and notes land on this scenario's timeline, its CTK
        journal is attached to the report, and the claims that every fault was rolled back
        and that the experiment succeeded are added (``CtkRun.ok``: completed, no deviation,
        no failed activity — ``chaos`` itself exits 0 when an action fails)."""
        from kubedrill.chaos.ctk import run_experiment, settings_env

        self._rollback_claim()
        path = Path(experiment)
        workdir = Path(tempfile.mkdtemp(prefix="kubedrill-ctk-"))
        run = run_experiment(
            path,
            settings_env(self.settings),
            self.timeline,
            workdir,
            timeout_s=timeout_s,
            var=var,
        )
        text = json.dumps(run.journal, indent=1, default=str) if run.journal else ""
        self.timeline.record(
            Attachment(f"Chaos Toolkit journal: {path.name}", "application/json", text[: 1 << 20]),
            source="chaostoolkit",
        )
        self.timeline.record(
            Note(
                run.reason if not run.ok else f"chaostoolkit: {path.name}: {run.status}",
                "info" if run.ok else "error",
            ),
            source="chaostoolkit",
        )
        self.add(_CtkOutcome(path.name, run))
        return run

    def _rollback_claim(self) -> None:
        if not any(isinstance(c, RolledBackCheck) for c in self._checks):
            self.add(
                RolledBackCheck(
                    expect("faults_not_rolled_back == 0").threshold, None, "every fault rolled back"
                )
            )

    def close(self) -> None:
        """Roll back any fault still active (the plugin calls this in teardown)."""
        if self._chaos is not None:
            self._chaos.close()

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
