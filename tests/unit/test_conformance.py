"""The HPA/KEDA conformance checks: each synthetic violation FAILs for its one rule, each
conformant control PASSes, and missing or broken evidence is never a PASS."""

from __future__ import annotations

import json

import pytest

from kubedrill.checks import HpaConformant, expect
from kubedrill.checks.conformance import HpaSample, ReplicaSample, Slack, judge_hpa
from kubedrill.checks.hpaspec import (
    HpaSpec,
    KedaSpec,
    MetricValue,
    SpecError,
    current_metrics,
    parse_quantity,
)
from kubedrill.core.errors import ThresholdSyntaxError
from kubedrill.core.types import Verdict
from kubedrill.timeline import ObjectTransition, Scalar, Timeline, WatchStatus
from tests.unit import conformance_cases as cc
from tests.unit import hpa_sim


@pytest.mark.parametrize("case", cc.CASES, ids=[c.name for c in cc.CASES])
def test_case(case: cc.Case) -> None:
    verdict, rules, reason = cc.run_case(case)
    if case.rule is None:
        assert verdict is Verdict.PASS, reason
        assert "every step inside the envelope" in reason
    else:
        assert verdict is Verdict.FAIL, reason
        assert rules == {case.rule}, reason
        assert f"{case.rule} at " in reason and "allowed" in reason


def test_benchmark_hook() -> None:
    out = cc.conformance_synthetic()
    assert out["conformance_violations_injected"] >= 6
    assert out["conformance_detected"] == out["conformance_violations_injected"]
    assert out["controls_passed"] == sum(1 for c in cc.CASES if c.rule is None)


# ------------------------------------------------------------------ spec parsing
def test_quantities() -> None:
    assert parse_quantity("250m") == pytest.approx(0.25)
    assert parse_quantity("1.5") == 1.5
    assert parse_quantity("2Ki") == 2048.0
    assert parse_quantity("1e3") == 1000.0
    assert parse_quantity("3M") == 3e6
    assert parse_quantity(7) == 7.0
    with pytest.raises(SpecError, match="quantity"):
        parse_quantity("ten")


def test_spec_defaults() -> None:
    legacy = HpaSpec.from_api(
        {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "w"}}
    )
    assert legacy.legacy and legacy.min_replicas == 1 and legacy.target_name == "w"
    assert legacy.metrics[0].name == "cpu" and legacy.metrics[0].target == 80  # API default
    b = HpaSpec.from_api({"maxReplicas": 5, "behavior": {"scaleDown": {"selectPolicy": "Min"}}})
    assert not b.legacy
    assert [(p.type, p.value, p.period_s) for p in b.up.policies] == [
        ("Pods", 4, 15),
        ("Percent", 100, 15),
    ]
    assert b.up.window_s == 0 and b.up.select == "Max"
    assert b.down.window_s is None and b.down.select == "Min"  # the flag's 300 s applies
    assert [(p.type, p.value) for p in b.down.policies] == [("Percent", 100)]
    t = HpaSpec.from_api({"maxReplicas": 5, "behavior": {"scaleUp": {"tolerance": "50m"}}})
    assert t.up.tolerance == pytest.approx(0.05) and t.down.tolerance is None


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"maxReplicas": "ten"}, "maxReplicas"),
        ({"maxReplicas": 2, "minReplicas": 3}, "minReplicas"),
        ({"maxReplicas": 2, "metrics": [{"type": "Custom"}]}, "metrics[0].type"),
        (
            {
                "maxReplicas": 2,
                "behavior": {
                    "scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}
                },
            },
            "behavior.scaleUp.policies[0].value",
        ),
        (
            {"maxReplicas": 2, "behavior": {"scaleDown": {"selectPolicy": "Fast"}}},
            "behavior.scaleDown.selectPolicy",
        ),
    ],
)
def test_bad_spec_names_the_key(spec: dict[str, object], key: str) -> None:
    with pytest.raises(SpecError) as e:
        HpaSpec.from_api(spec)
    assert e.value.key == key and key in str(e.value)


def test_current_metrics_and_keda_spec() -> None:
    (m,) = current_metrics(
        [
            {
                "type": "Pods",
                "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "1500m"}},
            }
        ]
    )
    assert (m.source, m.name, m.average) == ("Pods", "qps", 1.5)
    k = KedaSpec.from_api({"scaleTargetRef": {"name": "w"}, "triggers": [{"type": "cpu"}]})
    assert (k.min_replicas, k.max_replicas, k.cooldown_s, k.polling_s) == (0, 100, 300, 30)
    assert k.activation_replicas == 1 and k.always_active and k.hpa_name is None


# ------------------------------------------------------------------ the engine's edges
def _spec(behavior: dict[str, object] | None = None) -> HpaSpec:
    return HpaSpec.from_api(cc.hpa_spec(behavior=behavior))


def _cpu(util: int) -> tuple[MetricValue, ...]:
    return current_metrics(
        [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": util}}}]
    )


def test_percent_float_trap() -> None:
    """100 replicas + 10 % is ceil(100 x 1.1) = 111 in float64, not 110."""
    spec = HpaSpec.from_api(
        cc.hpa_spec(hi=500, behavior={"scaleUp": {"policies": [cc.percent(10, 60)]}})
    )
    s = [HpaSample(t, 100, 100, _cpu(150), True, True) for t in (0.0, 20.0, 40.0, 60.0)]
    assert judge_hpa(spec, [*s, HpaSample(80.0, 100, 111, _cpu(150), True, True)]) == []
    (v,) = judge_hpa(spec, [*s, HpaSample(80.0, 100, 112, _cpu(150), True, True)])
    assert v.rule == "rate_up" and v.allowed == (100, 111)


def test_change_by_another_actor_loosens_rate_limits() -> None:
    """Someone scales 8 → 4 by hand; the HPA's 4 → 8 right after is within 100 %/15 s."""
    spec = _spec({})
    s = [
        HpaSample(0.0, 8, 8, _cpu(50), True, True),
        HpaSample(10.0, 8, 8, _cpu(51), True, True),
        HpaSample(20.0, 4, 8, _cpu(100), True, True),
    ]
    assert judge_hpa(spec, s) == []


def test_restart_and_gap_forget_the_history() -> None:
    spec = _spec({"scaleUp": {"policies": [cc.pods(2, 60)]}})
    base = [
        HpaSample(0.0, 2, 2, _cpu(50), True, True),
        HpaSample(70.0, 2, 4, _cpu(150), True, True),
    ]
    second = HpaSample(100.0, 4, 6, _cpu(150), True, True)
    assert [v.rule for v in judge_hpa(spec, [*base, second])] == ["rate_up"]
    assert judge_hpa(spec, [*base, second], restarts=[80.0]) == []
    assert judge_hpa(spec, [*base, second], gaps=[(75.0, 90.0)]) == []


def test_stuck_needs_the_target_steady() -> None:
    spec = _spec()
    s = [HpaSample(t, 2, 2, _cpu(150 + int(t) % 2), True, True) for t in range(0, 200, 20)]
    assert judge_hpa(spec, s, until=300.0) == []  # no record of the Deployment: not judged
    steady = [ReplicaSample(0.0, 2, 2, 2, 2)]
    (v,) = judge_hpa(spec, s, replicas=steady, until=300.0)
    assert v.rule == "stuck_below"
    longer = Slack(metric_staleness_s=400.0)
    assert judge_hpa(spec, s, replicas=steady, until=300.0, slack=longer) == []


# ------------------------------------------------------------------ the checks' evidence
def test_expect_forms() -> None:
    c = expect("hpa_violations == 0", object_name="web", namespace="drill", phase="drill")
    assert isinstance(c, HpaConformant) and c.hpa == "web"
    assert "hpa_violations == 0" in str(c.threshold)
    with pytest.raises(ThresholdSyntaxError, match="object_name"):
        expect("hpa_violations == 0")
    with pytest.raises(ThresholdSyntaxError, match="counts violations"):
        expect("hpa_violations >= 1", object_name="web")


def test_no_record_is_inconclusive() -> None:
    tl = cc.Record(cc.hpa_spec()).end(60)
    r = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill").evaluate(tl)
    assert (
        r.verdict is Verdict.INCONCLUSIVE
        and "no observations of HorizontalPodAutoscaler" in r.reason
    )


def test_watch_gap_and_missing_target_are_not_a_pass() -> None:
    tl = cc.idle_ok()
    tl.record(WatchStatus("HorizontalPodAutoscaler", "lost", "reset"), t=100.0)
    tl.record(WatchStatus("HorizontalPodAutoscaler", "synced"), t=150.0)
    r = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill").evaluate(tl)
    assert r.verdict is Verdict.INCONCLUSIVE and "watch of HorizontalPodAutoscaler down" in r.reason
    tl2 = Timeline()
    tl2.record(WatchStatus("HorizontalPodAutoscaler", "synced"), t=0.0)
    rec = cc.Record(cc.hpa_spec())
    rec.tl = tl2
    rec.hpa(0, 2, util=50).hpa(20, 2, util=51)
    r2 = expect.hpa_conformant(cc.HPA, cc.NS).evaluate(tl2)
    assert r2.verdict is Verdict.INCONCLUSIVE and "stuck rules were not judged" in r2.reason


def test_violation_seen_in_partial_evidence_still_fails() -> None:
    tl = cc.tolerance_step()
    tl.record(WatchStatus("HorizontalPodAutoscaler", "lost", "reset"), t=76.0)
    r = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill").evaluate(tl)
    assert r.verdict is Verdict.FAIL and "tolerance at" in r.reason


def test_bad_recorded_spec_is_an_error_naming_the_key() -> None:
    tl = Timeline()
    tl.record(WatchStatus("HorizontalPodAutoscaler", "synced"), t=0.0)
    spec = json.dumps({"maxReplicas": 3, "behavior": {"scaleUp": {"selectPolicy": "Fast"}}})
    fields: dict[str, Scalar] = {
        "spec": spec,
        "current_replicas": 1,
        "desired_replicas": 1,
        "metrics": "[]",
    }
    tl.record(ObjectTransition("HorizontalPodAutoscaler", "drill", "web", "ADDED", fields), t=1.0)
    r = expect.hpa_conformant("web", "drill").evaluate(tl)
    assert r.verdict is Verdict.ERROR and "behavior.scaleUp.selectPolicy" in r.reason


# ------------------------------------------------------------------ a simulated controller
def test_simulated_controller_is_never_flagged() -> None:
    """Zero false positives on a forward simulation of the controller (random specs, load,
    sync jitter, observation lag, slow pod starts)."""
    for seed in range(120):
        tl = hpa_sim.simulate(seed)
        vs = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill").violations(tl)
        assert vs == [], (seed, hpa_sim.describe(seed), [v.describe() for v in vs])


@pytest.mark.parametrize(
    ("fault", "rules"),
    [
        ("no_rate", {"rate_up", "rate_down"}),
        ("no_stabilization", {"stabilization_down", "stabilization_up"}),
        ("no_tolerance", {"tolerance", "stabilization_down", "stabilization_up"}),
    ],
)
def test_broken_controller_is_caught(fault: str, rules: set[str]) -> None:
    """The same simulation with one part of the algorithm broken: most runs where it
    changed what the controller did FAIL, for that part's rules."""
    changed = caught = 0
    for seed in range(40):
        good, bad = hpa_sim.simulate(seed), hpa_sim.simulate(seed, fault=fault)
        if hpa_sim.steps(good) == hpa_sim.steps(bad):
            continue
        changed += 1
        vs = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill").violations(bad)
        caught += bool(vs)
        assert {v.rule for v in vs} <= rules, (seed, [v.describe() for v in vs])
    assert changed >= 10 and caught >= 0.5 * changed


def test_simulated_keda_is_never_flagged() -> None:
    for seed in range(80):
        tl = hpa_sim.simulate_keda(seed)
        vs = expect.keda_conformant(cc.SO, cc.NS, phase="drill").violations(tl)
        assert vs == [], (seed, [v.describe() for v in vs])


@pytest.mark.parametrize(
    ("fault", "rule"), [("no_cooldown", "keda_cooldown"), ("wake_idle", "keda_activation")]
)
def test_broken_keda_is_caught(fault: str, rule: str) -> None:
    changed = caught = 0
    for seed in range(40):
        good, bad = hpa_sim.simulate_keda(seed), hpa_sim.simulate_keda(seed, fault=fault)
        if hpa_sim.replicas(good) == hpa_sim.replicas(bad):
            continue
        changed += 1
        vs = expect.keda_conformant(cc.SO, cc.NS, phase="drill").violations(bad)
        caught += bool(vs)
        assert {v.rule for v in vs} <= {rule}, (seed, [v.describe() for v in vs])
    assert changed >= 10 and caught >= 0.5 * changed


def test_spec_edit_allows_old_and_new_spec_for_a_sync() -> None:
    """scaleUp edited between Pods 1/60 s and the defaults: for a sync period after the
    edit a step either spec allows is allowed; later only the new spec counts."""
    strict = cc.hpa_spec(behavior={"scaleUp": {"policies": [cc.pods(1, 60)]}})
    loose = cc.hpa_spec(behavior={})
    for first, then, at, rules in (
        (strict, loose, 100.0, []),
        (loose, strict, 100.0, []),
        (loose, strict, 115.0, ["rate_up"]),
    ):
        r = cc._steady(cc.Record(first), 85, 2, 50).hpa(85, 2, util=200)
        r.hpa(90, 2, util=200, spec=then).hpa(at, 2, 4, util=200).deploy(at + 1, 4)
        vs = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill").violations(r.end(at + 10))
        assert [v.rule for v in vs] == rules, [v.describe() for v in vs]


def test_an_empty_current_metric_entry_is_a_metric_the_controller_could_not_get() -> None:
    """Seen on the sandbox's real HPA: while metrics-server has no figures yet, the
    controller writes ``currentMetrics: [{"type": ""}]``; that is no value, not bad input."""
    from kubedrill.checks.hpaspec import current_metrics

    assert current_metrics([{"type": ""}]) == ()


# ------------------------------------------------------------------ real controller records
#: kube-controller-manager's flags in the sandbox (sync period 5 s, downscale window 15 s)
SANDBOX_FLAGS = Slack(sync_period_s=5.0, downscale_stabilization_s=15.0)


def _real_legacy_run() -> Timeline:
    """The `default` run of benchmarks/observe_conformance.py on the sandbox (2026-12-02),
    as recorded: no behavior, CPU 50 % of 100m, 1..4; a fresh HPA's first write is
    current 1, desired 0 with ScalingActive False; at 4 the usage drops to 5m and the
    15 s flag window holds 4 for one sync with CPU at 6 %, then 4→3, 3→1."""
    r = cc.Record(cc.hpa_spec(lo=1, hi=4)).deploy(0.9, 1)
    r.hpa(6.0, 1, 0, metrics=[{"type": ""}], active=False)
    r.hpa(36.1, 1, 2, util=91).deploy(36.1, 2, 1).deploy(36.2, 2).hpa(41.1, 2, util=91)
    r.deploy(56.1, 4, 2).hpa(56.2, 2, 4, util=90).deploy(56.3, 4).hpa(61.2, 4, util=90)
    r.hpa(76.2, 4, util=6)
    r.deploy(86.2, 3, 4).hpa(86.2, 4, 3, util=5).deploy(86.3, 3).hpa(91.2, 3, util=5)
    r.deploy(96.3, 1, 3).hpa(96.3, 3, 1, util=5).deploy(96.4, 1)
    r.hpa(101.3, 1, util=5).hpa(116.3, 1, util=6)
    return r.end(120.0)


def test_real_legacy_run_conforms_with_the_clusters_flags_and_not_with_the_defaults() -> None:
    """A real controller is conformant by definition: with the sandbox's flags the legacy
    run PASSes; judged with the 300 s default window its 4→3 (25 s after the last busy
    recommendation) is a stabilization_down FAIL: a check told a wrong flag, not a bug."""
    told = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill", slack=SANDBOX_FLAGS)
    result = told.evaluate(_real_legacy_run())
    assert result.verdict is Verdict.PASS, result.reason
    untold = expect.hpa_conformant(cc.HPA, cc.NS, phase="drill")
    assert {v.rule for v in untold.violations(_real_legacy_run())} == {"stabilization_down"}


def _real_keda_run() -> Timeline:
    """The `keda` run (2026-12-02), as recorded: ScaledObject 0..4, threshold 2, polling
    5 s, cooldown 30 s; KEDA 0→1, its HPA 1→4 (desiredReplicas 0→4 in the record), the
    trigger to 0 at 77 s, the HPA 4→1 after the 15 s flag window, KEDA 1→0 25 s later.
    Active flapped True→False→True in the first seconds, as seen."""
    so: dict[str, object] = {
        "scaleTargetRef": {"name": cc.DEPLOY}, "minReplicaCount": 0, "maxReplicaCount": 4,
        "cooldownPeriod": 30, "pollingInterval": 5,
        "triggers": [{"type": "prometheus", "metadata": {"threshold": "2"}}],
    }  # fmt: skip
    target = {"type": "AverageValue", "averageValue": "2"}
    metric = {"type": "External", "external": {"metric": {"name": "s0-prometheus"},
                                               "target": target}}  # fmt: skip
    r = cc.Record(cc.hpa_spec(lo=1, hi=4, metrics=[metric]), hpa=f"keda-hpa-{cc.SO}")
    r.deploy(1.7, 0).so(1.9, False, so).hpa(2.0, 0, 0, metrics=[], active=False)
    r.deploy(2.1, 1).so(2.1, True, so).so(2.15, False, so).so(7.0, True, so)
    r.deploy(7.1, 4).hpa(7.1, 1, 4, metrics=cc.queue("8")).hpa(12.1, 4, metrics=cc.queue("2"))
    r.so(77.1, False, so).hpa(77.2, 4, metrics=cc.queue("0"))
    r.deploy(87.3, 1).hpa(87.3, 4, 1, metrics=cc.queue("0")).hpa(92.3, 1, metrics=cc.queue("0"))
    r.deploy(102.1, 0).hpa(102.3, 0, 0, metrics=[], active=False)
    return r.end(110.4)


def test_real_keda_run_conforms_with_the_clusters_flags() -> None:
    check = expect.keda_conformant(cc.SO, cc.NS, phase="drill", slack=SANDBOX_FLAGS)
    result = check.evaluate(_real_keda_run())
    assert result.verdict is Verdict.PASS, result.reason
    untold = expect.keda_conformant(cc.SO, cc.NS, phase="drill")
    assert {v.rule for v in untold.violations(_real_keda_run())} == {"stabilization_down"}
