"""PromQL checks against a real Prometheus (Debian's binary) scraping itself."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kubedrill.adapters.localprom import LocalPrometheus, free_port, run_prometheus, wait_for_series
from kubedrill.adapters.prom import PrometheusClient
from kubedrill.checks import expect
from kubedrill.core.settings import PrometheusSettings, Settings, load_settings
from kubedrill.core.types import Verdict
from kubedrill.run.drill import Drill
from kubedrill.timeline import MetricSample, Timeline


@pytest.fixture(scope="module")
def prom() -> Iterator[LocalPrometheus]:
    with run_prometheus({}, interval_s=0.5) as p:
        wait_for_series(p.url, 'up{job="self"}')
        yield p


def _client(url: str) -> PrometheusClient:
    return PrometheusClient(PrometheusSettings(url=url, step_s=0.5, timeout_s=3))


def _phase(seconds: float) -> Timeline:
    tl = Timeline()
    with tl.phase("inject"):
        time.sleep(seconds)
    return tl


def test_pass_and_fail_over_exactly_the_phase(prom: LocalPrometheus) -> None:
    tl = _phase(2.0)
    client = _client(prom.url)
    ok = expect("value >= 1", phase="inject", query='up{job="self"}', client=client).evaluate(tl)
    assert ok.verdict is Verdict.PASS, ok.reason
    assert ok.value == 1.0
    bad = expect("value > 1", phase="inject", query='up{job="self"}', client=client).evaluate(tl)
    assert bad.verdict is Verdict.FAIL
    samples = tl.select(MetricSample)
    assert samples and all(s.data.labels["query"] == 'up{job="self"}' for s in samples)
    w = tl.phases()["inject"]
    assert all(w.start - 1e-6 <= s.t <= w.end + 0.5 for s in samples), [
        (s.t - w.start, s.source) for s in samples
    ]


def test_no_series_is_inconclusive(prom: LocalPrometheus) -> None:
    tl = _phase(0.5)
    r = expect(
        "value < 1", phase="inject", query="no_such_metric_total", client=_client(prom.url)
    ).evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert "returned no series" in r.reason


def test_a_query_prometheus_rejects_is_error_naming_it(prom: LocalPrometheus) -> None:
    """A PromQL typo is the claim's fault, not missing evidence: ERROR, which no
    inconclusive policy lets through, naming the query and Prometheus' 400."""
    tl = _phase(0.5)
    r = expect("value < 1", phase="inject", query="rate(up[", client=_client(prom.url)).evaluate(tl)
    assert r.verdict is Verdict.ERROR
    assert "rejected 'rate(up['" in r.reason and "(HTTP 400)" in r.reason


def test_unreachable_prometheus_is_inconclusive() -> None:
    tl = _phase(0.2)
    url = f"http://127.0.0.1:{free_port()}"
    r = expect("value < 1", phase="inject", query="up", client=_client(url)).evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert url in r.reason


def test_drill_without_prometheus_url_is_inconclusive() -> None:
    d = Drill("s", Settings())
    d.expect("value < 1", query="up")
    with d.phase("whole"):
        pass
    (r,) = d.evaluate()
    assert r.verdict is Verdict.INCONCLUSIVE
    assert "--drill-prometheus-url" in r.reason


def test_drill_uses_the_configured_prometheus(prom: LocalPrometheus) -> None:
    d = Drill(
        "s",
        load_settings(env={}, overrides={"prometheus.url": prom.url, "prometheus.step_s": "0.5s"}),
    )
    d.expect("value == 1", phase="p", query='up{job="self"}')
    with d.phase("p"):
        time.sleep(1.5)
    (r,) = d.evaluate()
    assert r.verdict is Verdict.PASS, r.reason


def test_the_sampler_puts_named_queries_on_the_timeline_and_notes_a_bad_one(
    prom: LocalPrometheus,
) -> None:
    from kubedrill.observe import PromSampler
    from kubedrill.timeline import Note

    tl = Timeline()
    queries = {"up": 'up{job="self"}', "typo": "up{job=", "none": "no_such_metric_total"}
    with PromSampler(_client(prom.url), queries, tl, step_s=0.5), tl.phase("sampled"):
        time.sleep(2.2)
    ups = [o for o in tl.select(MetricSample) if o.data.name == "up"]
    assert len(ups) >= 3 and all(o.data.value == 1.0 and o.source == "prometheus" for o in ups)
    assert ups[0].data.labels["job"] == "self"
    assert not [o for o in tl.select(MetricSample) if o.data.name != "up"]
    notes = [o.data.text for o in tl.select(Note)]
    assert len(notes) == 1 and "sampler typo" in notes[0], notes  # once, not every step
    r = expect("value >= 1", phase="sampled", metric="up").evaluate(tl)
    assert r.verdict is Verdict.PASS, r.reason
