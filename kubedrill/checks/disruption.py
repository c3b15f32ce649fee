"""Disruption checks: the PodDisruptionBudget held (healthy pods never below its floor,
at event resolution), evictions it refused, disruptions that went around it (a plain or
forced delete, a node failure), how long a drain took, how long until every replica was
Ready again after a pod kill.

Pods are judged from the recorded Pod series (readiness, deletion, the ``DisruptionTarget``
condition the API sets on an eviction) and the PDB's own status (``desiredHealthy``, the
floor the disruption controller computed). Only pods in the watched namespaces are seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubedrill.checks.base import Check, Evidence, clock, require_deadline
from kubedrill.checks.evidence import watch_gaps
from kubedrill.core.thresholds import Threshold
from kubedrill.core.types import Verdict, Window
from kubedrill.timeline import Eviction, ObjectTransition, Observation, Timeline

__all__ = [
    "DrainCheck",
    "EvictionsRefusedCheck",
    "PdbBypassCheck",
    "PdbHealthyCheck",
    "ReadyRecoveryCheck",
]

_SCALE_DOWN_SLACK_S = 15.0  # a ReplicaSet's replicas fell this shortly before a delete


def _labels(text: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in str(text or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def _short(o: Observation[ObjectTransition]) -> bool:
    """Fewer Ready replicas than the Deployment's desired."""
    f = o.data.fields
    ready, want = f.get("ready_replicas"), f.get("replicas")
    return isinstance(ready, int) and isinstance(want, int) and ready < want


def _pdb_obs(
    timeline: Timeline, name: str, namespace: str | None
) -> list[Observation[ObjectTransition]]:
    return [
        o
        for o in timeline.select(ObjectTransition)
        if o.data.api_kind == "PodDisruptionBudget"
        and o.data.name == name
        and (namespace is None or o.data.namespace == namespace)
        and o.data.event != "DELETED"
    ]


@dataclass(frozen=True, slots=True)
class _PodEnd:
    """How a pod went away: when its deletion was first seen, and by what."""

    name: str
    t: float
    how: str  # "evicted", "scale-down", "node failure", "deleted"
    detail: str


class _PdbCheck(Check):
    kind = "disruption"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        pdb: str,
        namespace: str | None = None,
    ) -> None:
        super().__init__(threshold, phase, name)
        self.pdb = pdb
        self.namespace = namespace

    def partial_violation_fails(self) -> bool:
        return True

    def _selector(self, timeline: Timeline) -> dict[str, str] | None:
        obs = _pdb_obs(timeline, self.pdb, self.namespace)
        return _labels(obs[-1].data.fields.get("selector")) if obs else None

    def _pods(
        self, timeline: Timeline, selector: dict[str, str]
    ) -> dict[str, list[Observation[ObjectTransition]]]:
        pods: dict[str, list[Observation[ObjectTransition]]] = {}
        for o in timeline.select(ObjectTransition):
            if o.data.api_kind != "Pod" or (
                self.namespace is not None and o.data.namespace != self.namespace
            ):
                continue
            if o.data.event == "DELETED" and o.data.name in pods:
                pods[o.data.name].append(o)
                continue
            labels = _labels(o.data.fields.get("labels"))
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                pods.setdefault(o.data.name, []).append(o)
        return pods

    def _ends(self, timeline: Timeline, window: Window) -> tuple[list[_PodEnd], int] | None:
        """Each selected pod whose deletion began in the window, and how; None without
        a recorded PDB. Also how many pods were seen."""
        selector = self._selector(timeline)
        if selector is None:
            return None
        evicted = {o.data.pod for o in timeline.select(Eviction) if o.data.outcome == "evicted"}
        rs_drops = _replicaset_drops(timeline, self.namespace)
        ends: list[_PodEnd] = []
        pods = self._pods(timeline, selector)
        for name, obs in pods.items():
            gone = next(
                (o for o in obs if o.data.event == "DELETED" or o.data.fields.get("deleting")),
                None,
            )
            if gone is None or not window.contains(gone.t):
                continue
            reasons = {
                str(o.data.fields.get("disruption")) for o in obs if o.data.fields.get("disruption")
            }
            owner = next(
                (str(o.data.fields["owner"]) for o in obs if o.data.fields.get("owner")), ""
            )
            if "EvictionByEvictionAPI" in reasons or name in evicted:
                how, detail = "evicted", "through the Eviction API"
            elif reasons & {"DeletionByTaintManager", "DeletionByPodGC", "TerminationByKubelet"}:
                how, detail = "node failure", ", ".join(sorted(reasons))
            elif any(
                rs == owner and gone.t - _SCALE_DOWN_SLACK_S <= t <= gone.t + 2
                for rs, t in rs_drops
            ):
                how, detail = "scale-down", f"{owner} scaled down"
            else:
                forced = gone.data.fields.get("deletion_grace_s") == 0 or (
                    gone.data.event == "DELETED"
                    and not any(o.data.fields.get("deleting") for o in obs)
                )
                how = "deleted"
                detail = "deleted without an eviction" + (" (forced, no grace)" if forced else "")
            ends.append(_PodEnd(name, gone.t, how, detail))
        ends.sort(key=lambda e: e.t)
        return ends, len(pods)


def _replicaset_drops(timeline: Timeline, namespace: str | None) -> list[tuple[str, float]]:
    """(``ReplicaSet/name``, when) for every decrease of a ReplicaSet's replicas."""
    last: dict[str, float] = {}
    drops: list[tuple[str, float]] = []
    for o in timeline.select(ObjectTransition):
        if o.data.api_kind != "ReplicaSet" or (namespace and o.data.namespace != namespace):
            continue
        v = o.data.fields.get("replicas")
        if not isinstance(v, int) or isinstance(v, bool):
            continue
        key = f"ReplicaSet/{o.data.name}"
        if key in last and v < last[key]:
            drops.append((key, o.t))
        last[key] = v
    return drops


class PdbHealthyCheck(_PdbCheck):
    """``pdb_below_s == 0``: seconds in the window during which the pods the PDB selects
    that were Ready and not being deleted numbered fewer than its ``desiredHealthy``."""

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Pod", window)
        gaps += watch_gaps(timeline, "PodDisruptionBudget", window)[1]
        pdb = _pdb_obs(timeline, self.pdb, self.namespace)
        selector = self._selector(timeline)
        if not pdb or selector is None:
            return Evidence(None, f"PodDisruptionBudget {self.pdb} was not recorded", cov)
        floors = [
            (o.t, int(v)) for o in pdb if isinstance(v := o.data.fields.get("desired_healthy"), int)
        ]
        events: list[tuple[float, str, bool | None]] = []  # (t, pod, healthy; None = gone)
        for name, obs in self._pods(timeline, selector).items():
            for o in obs:
                gone = o.data.event == "DELETED"
                healthy = (
                    (not gone)
                    and o.data.fields.get("ready") is True
                    and not o.data.fields.get("deleting")
                )
                events.append((o.t, name, None if gone else healthy))
        if not floors or not events:
            return Evidence(
                None, f"no healthy count or floor for PDB {self.pdb}", cov, tuple(map(str, gaps))
            )
        times = sorted(
            {t for t, _, _ in events} | {t for t, _ in floors} | {window.start, window.end}
        )
        state: dict[str, bool] = {}
        ev = sorted(events, key=lambda e: e[0])
        i, below = 0, 0.0
        spans: list[str] = []
        lowest: tuple[int, int, int] | None = None
        span_start: float | None = None
        for k, t in enumerate(times):
            while i < len(ev) and ev[i][0] <= t:
                _, pod, h = ev[i]
                if h is None:
                    state.pop(pod, None)
                else:
                    state[pod] = h
                i += 1
            if t >= window.end or k == len(times) - 1:
                break
            floor = next((f for ft, f in reversed(floors) if ft <= t), floors[0][1])
            count = sum(1 for h in state.values() if h)
            nxt = times[k + 1]
            if t >= window.start:
                if lowest is None or count - floor < lowest[0]:
                    lowest = (count - floor, count, floor)
                if count < floor:
                    below += min(nxt, window.end) - t
                    span_start = t if span_start is None else span_start
                elif span_start is not None:
                    spans.append(
                        f"{clock(timeline, window, span_start)} for {t - span_start:.1f} s"
                    )
                    span_start = None
        if span_start is not None:
            spans.append(
                f"{clock(timeline, window, span_start)} for {window.end - span_start:.1f} s"
            )
        low = f"; lowest {lowest[1]} healthy against a floor of {lowest[2]}" if lowest else ""
        detail = (
            f"below the floor from {', '.join(spans[:5])}" if spans else "never below the floor"
        ) + low
        return Evidence(round(below, 3), detail, cov, tuple(map(str, gaps)))


class EvictionsRefusedCheck(_PdbCheck):
    """``evictions_refused >= 1`` (the PDB was exercised and held) or ``== 0``: evictions
    of the PDB's pods the API refused (HTTP 429) in the window, with the server's words."""

    def partial_violation_fails(self) -> bool:
        return False

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        selector = self._selector(timeline)
        if selector is None:
            return Evidence(None, f"PodDisruptionBudget {self.pdb} was not recorded")
        mine = set(self._pods(timeline, selector))
        attempts = [
            o for o in timeline.select(Eviction)
            if window.contains(o.t) and o.data.pod in mine
            and (self.namespace is None or o.data.namespace == self.namespace)
        ]  # fmt: skip
        if not attempts:
            return Evidence(0.0, "no eviction of the PDB's pods was recorded in the window")
        refused = [o.data for o in attempts if o.data.outcome == "refused"]
        pods = sorted({r.pod for r in refused})
        detail = f"{len(refused)} of {len(attempts)} eviction(s) refused"
        if refused:
            detail += f" (pods {', '.join(pods[:5])}): {refused[-1].detail}"
        return Evidence(float(len(refused)), detail)


class PdbBypassCheck(_PdbCheck):
    """``pdb_bypasses == 0``: pods the PDB selects that went away in the window other than
    through the Eviction API or a scale-down of their ReplicaSet — a plain or forced
    delete, or a node failure (the taint manager, PodGC) — each listed."""

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Pod", window)
        found = self._ends(timeline, window)
        if found is None:
            return Evidence(None, f"PodDisruptionBudget {self.pdb} was not recorded", cov)
        ends, seen = found
        bypass = [e for e in ends if e.how in ("deleted", "node failure")]
        by_how = {h: sum(1 for e in ends if e.how == h) for h in ("evicted", "scale-down")}
        detail = (
            f"{len(ends)} of {seen} pods went away: {by_how['evicted']} evicted, "
            f"{by_how['scale-down']} by scale-down"
        )
        if bypass:
            detail += "; around the PDB: " + "; ".join(
                f"{e.name} {e.how} at {clock(timeline, window, e.t)} ({e.detail})"
                for e in bypass[:5]
            )
        return Evidence(float(len(bypass)), detail, cov, tuple(map(str, gaps)))


class DrainCheck(Check):
    """``drain_within: 120s`` for ``node=``: from the node turning unschedulable (the
    cordon) in the window until no watched pod was left on it."""

    kind = "disruption"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        node: str,
        namespace: str | None = None,
    ) -> None:
        require_deadline(threshold)
        super().__init__(threshold, phase, name)
        self.node = node
        self.namespace = namespace

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Pod", window)
        gaps += watch_gaps(timeline, "Node", window)[1]
        cordon = next(
            (
                o.t
                for o in timeline.select(ObjectTransition)
                if o.data.api_kind == "Node" and o.data.name == self.node
                and o.data.fields.get("unschedulable") is True and window.contains(o.t)
            ),
            None,
        )  # fmt: skip
        if cordon is None:
            return Evidence(None, f"node {self.node} was not cordoned in the window", cov)
        on_node: dict[str, bool] = {}
        empty_at: float | None = None
        for o in timeline.select(ObjectTransition):
            if o.data.api_kind != "Pod" or (self.namespace and o.data.namespace != self.namespace):
                continue
            if o.data.event == "DELETED" or o.data.fields.get("node") != self.node:
                on_node.pop(o.data.name, None)
            else:
                on_node[o.data.name] = True
            if o.t >= cordon and not on_node and empty_at is None:
                empty_at = o.t
            elif on_node:
                empty_at = None
        deadline = self.threshold.value
        if empty_at is None and not on_node:
            empty_at = cordon
        if empty_at is not None:
            took = empty_at - cordon
            at = clock(timeline, window, cordon)
            detail = f"node {self.node} emptied {took:.1f} s after its cordon at {at}"
            return Evidence(took, detail, cov, tuple(map(str, gaps)))
        left = ", ".join(sorted(on_node)[:5])
        span = window.end - cordon
        detail = f"node {self.node} still had {len(on_node)} pod(s) {span:.1f} s after its cordon"
        detail += f": {left}"
        verdict = Verdict.FAIL if span >= deadline and not gaps else Verdict.INCONCLUSIVE
        return Evidence(None, detail, cov, tuple(map(str, gaps)), verdict=verdict)


class ReadyRecoveryCheck(Check):
    """``replicas_recover_within: 60s`` for Deployment ``object_name``: from the first
    moment in the window its Ready replicas fell below its desired replicas (a pod killed)
    until they were all Ready again."""

    kind = "recovery"

    def __init__(
        self,
        threshold: Threshold,
        phase: str | None = None,
        name: str | None = None,
        *,
        object_name: str,
        namespace: str | None = None,
    ) -> None:
        require_deadline(threshold)
        super().__init__(threshold, phase, name)
        self.object_name = object_name
        self.namespace = namespace

    def measure(self, timeline: Timeline, window: Window) -> Evidence:
        cov, gaps = watch_gaps(timeline, "Deployment", window)
        series: Sequence[Observation[ObjectTransition]] = [
            o for o in timeline.select(ObjectTransition)
            if o.data.api_kind == "Deployment" and o.data.name == self.object_name
            and (self.namespace is None or o.data.namespace == self.namespace)
            and o.data.event != "DELETED"
        ]  # fmt: skip
        inside = [o for o in series if window.contains(o.t)]
        short = [o for o in inside if _short(o)]
        if not short:
            # nothing fell short: the fault never showed, so there was nothing to recover
            # from — no evidence for a recovery claim, not a recovery in 0 s
            detail = (
                f"Deployment {self.object_name} never had fewer Ready replicas than desired "
                f"in the window ({len(inside)} observation(s)): no disruption to recover from"
            )
            return Evidence(None, detail, cov, tuple(map(str, gaps)))
        fell = short[0].t
        back = next((o.t for o in inside if o.t > fell and not _short(o)), None)
        if back is not None:
            took = back - fell
            at = clock(timeline, window, fell)
            detail = f"Ready replicas fell short at {at} and were all back {took:.1f} s later"
            return Evidence(took, detail, cov, tuple(map(str, gaps)))
        span = window.end - fell
        at = clock(timeline, window, fell)
        detail = f"Ready replicas fell short at {at} and were not all back {span:.1f} s later"
        verdict = (
            Verdict.FAIL if span >= self.threshold.value and not gaps else Verdict.INCONCLUSIVE
        )
        return Evidence(None, detail, cov, tuple(map(str, gaps)), verdict=verdict)
