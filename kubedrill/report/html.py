"""One self-contained HTML file per run: the verdict table, then each scenario's timeline
panels on one time axis (uPlot, bundled: no CDN, no network), the capacity report and
gpu_bench results where the run has them. Works from a CI artifact store and on paper."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from kubedrill.report.capacity import capacity_report, gpu_bench_results
from kubedrill.report.document import scenario_timeline
from kubedrill.report.series import scenario_panels
from kubedrill.timeline import Attachment, Timeline

__all__ = ["expected_panels", "render_html", "report_data"]


@cache
def _asset(name: str) -> str:
    return resources.files("kubedrill.report").joinpath("assets", name).read_text("utf-8")


def _clock(wall: float | None) -> str:
    if wall is None:
        return "—"
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S")


def _num(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    u = "" if unit in ("ratio", "value", "") else f" {unit}"
    return f"{v:.4g}{u}" if isinstance(v, float) else f"{v}{u}"


def report_data(doc: dict[str, Any]) -> dict[str, Any]:
    """Everything the page draws, computed once from the run document (JSON-ready)."""
    timelines: list[Timeline | None] = [scenario_timeline(sc) for sc in doc["scenarios"]]
    scenarios, curves, capacity = [], [], []
    for sc, tl in zip(doc["scenarios"], timelines, strict=True):
        if tl is None:
            scenarios.append({"id": sc["id"], "panels": [], "bands": [], "phases": []})
            continue
        item = scenario_panels(tl, sc["checks"])
        item["id"] = sc["id"]
        item["attachments"] = [
            {"name": o.data.name, "media_type": o.data.media_type, "content": o.data.content}
            for o in tl.select(Attachment)
        ]
        item["clock"] = {"mono0": tl.mono0, "wall0": tl.wall0}
        scenarios.append(item)
        cap = capacity_report(tl)
        if cap is not None:
            cap["scenario"] = sc["id"]
            capacity.append(cap)
            steps = cap["steps"]
            series = [
                {"label": f"p{p}", "values": [s[f"p{p}_ms"] for s in steps], "style": f"p{p}"}
                for p in (50, 95, 99)
            ]
            series.append(
                {
                    "label": f"SLO p95 ≤ {cap['slo_p95_ms']:g}",
                    "values": [cap["slo_p95_ms"]] * len(steps),
                    "style": "slo",
                }
            )
            curves.append(
                {
                    "id": "capacity_curve",
                    "title": "latency (ms) vs offered rate (req/s)",
                    "state": "chart",
                    "x_label": "req/s",
                    "x": [s["offered_rps"] for s in steps],
                    "series": series,
                }
            )
    return {
        "scenarios": scenarios,
        "curves": curves,
        "capacity": capacity,
        "gpu_bench": gpu_bench_results(doc["scenarios"], timelines),
    }


def expected_panels(data: dict[str, Any]) -> int:
    """Panels the data present calls for: each must be drawn in the browser."""
    n = sum(1 for sc in data["scenarios"] for p in sc["panels"] if p["state"] == "chart")
    return n + len(data["curves"])


def _verdict(v: str | None) -> str:
    v = v or "SKIPPED"
    return f'<span class="v v-{escape(v)}">{escape(v)}</span>'


def _window(check: dict[str, Any], clock: dict[str, float] | None) -> str:
    w = check.get("window")
    if not w:
        return "—"
    dur = w["end"] - w["start"]
    if clock is None:
        return f"{dur:.1f} s"
    to_wall = clock["wall0"] - clock["mono0"]
    return f"{_clock(w['start'] + to_wall)}-{_clock(w['end'] + to_wall)} ({dur:.1f} s)"


def _verdict_table(doc: dict[str, Any], data: dict[str, Any]) -> list[str]:
    out = [
        "<table id='verdicts'><thead><tr><th>scenario</th><th>check</th><th>verdict</th>"
        "<th>value</th><th>threshold</th><th>reason</th><th>window (UTC)</th>"
        "<th>evidence coverage</th></tr></thead><tbody>"
    ]
    for sc, item in zip(doc["scenarios"], data["scenarios"], strict=True):
        name = escape(sc["name"])
        if not sc["checks"]:
            msg = sc["message"] or "the scenario registered no checks"
            out.append(
                f"<tr><td>{name}</td><td>—</td><td>{_verdict(sc['verdict'])}</td><td>—</td>"
                f"<td>—</td><td>{escape(msg[:500])}</td><td>—</td><td>—</td></tr>"
            )
        for c in sc["checks"]:
            cov = c.get("coverage")
            covered = "—" if not cov else f"{cov['ratio']:.0%} ({escape(cov['source'])})"
            out.append(
                f"<tr class='check' data-verdict='{escape(c['verdict'])}'><td>{name}</td>"
                f"<td>{escape(c['name'])}</td><td>{_verdict(c['verdict'])}</td>"
                f"<td class='num'>{_num(c['value'], c['unit'])}</td>"
                f"<td>{escape(c['threshold'])}</td><td>{escape(c['reason'])}</td>"
                f"<td>{_window(c, item.get('clock'))}</td><td>{covered}</td></tr>"
            )
    out.append("</tbody></table>")
    return out


def _capacity(data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for ci, cap in enumerate(data["capacity"]):
        knee = cap["knee_rps"]
        out += [
            f"<section class='capacity' id='capacity-{ci}'><h2>Capacity: "
            f"{escape(cap['scenario'])}</h2>",
            f"<p>Knee: <b>{_num(knee, 'req/s')}</b> — {escape(cap['knee_how'])}. "
            f"{_num(cap['replicas'])} replica(s), {_num(cap['gpus'])} GPU(s): "
            f"<b>{_num(cap['rps_per_replica'])}</b> req/s per replica, "
            f"<b>{_num(cap['rps_per_gpu'])}</b> req/s per GPU, "
            f"<b>{_num(cap['gpu_s_per_1k_requests'])}</b> GPU-seconds per 1,000 requests at "
            "the knee."
            + (
                f" Configured capacity {_num(cap['configured_rps'], 'req/s')}: the knee is "
                f"{_num(cap['knee_error_pct'])} % from it."
                if cap["configured_rps"]
                else ""
            )
            + "</p>",
            f"<div class='panel' data-panel='capacity_curve' data-state='chart' "
            f"data-curve-index='{ci}'><h3>latency vs offered rate</h3><div class='plot'></div>"
            "</div>",
            "<table><thead><tr><th>step</th><th>offered req/s</th><th>answered req/s</th>"
            "<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>errors</th><th>SLO</th>"
            "</tr></thead><tbody>",
        ]
        for s in cap["steps"]:
            out.append(
                f"<tr><td>{escape(s['phase'])}</td><td class='num'>{_num(s['offered_rps'])}</td>"
                f"<td class='num'>{_num(s['answered_rps'])}</td>"
                + "".join(f"<td class='num'>{_num(s[k])}</td>" for k in ("p50_ms", "p95_ms"))
                + f"<td class='num'>{_num(s['p99_ms'])}</td>"
                f"<td class='num'>{s['error_ratio']:.2%}</td>"
                f"<td>{_verdict('PASS' if s['meets_slo'] else 'FAIL')}</td></tr>"
            )
        out.append("</tbody></table></section>")
    rows = data["gpu_bench"]
    if rows:
        out.append(
            "<section id='gpu-bench'><h2>GPU benchmarks</h2><table><thead><tr><th>scenario</th>"
            "<th>result</th><th>value</th><th>peak</th><th>of peak</th><th>verdict</th></tr>"
            "</thead><tbody>"
        )
        for r in rows:
            ratio = "—" if r["ratio"] is None else f"{r['ratio']:.1%}"
            out.append(
                f"<tr><td>{escape(r['scenario'])}</td><td>{escape(r['name'])}"
                f"{' on ' + escape(r['node_type']) if r.get('node_type') else ''}</td>"
                f"<td class='num'>{_num(r['value'], r['unit'])}</td>"
                f"<td class='num'>{_num(r['peak'], r['unit'])}</td><td class='num'>{ratio}</td>"
                f"<td>{_verdict(r['verdict']) if r['verdict'] else '—'}</td></tr>"
            )
        out.append("</tbody></table></section>")
    return out


def _scenario(si: int, sc: dict[str, Any], item: dict[str, Any]) -> list[str]:
    out = [
        f"<section class='scenario' data-scenario-index='{si}' id='scenario-{si}'>",
        f"<h2>{_verdict(sc['verdict'])} {escape(sc['name'])}</h2>",
        f"<p class='meta'><span>{escape(sc['id'])}</span><span>{sc['duration_s']:.1f} s</span>"
        f"<span>markers: {escape(', '.join(sc['markers']) or '—')}</span></p>",
    ]
    if sc["message"]:
        out.append(f"<p><b>{escape(sc['status'])}:</b> {escape(sc['message'][:1000])}</p>")
    if not item["panels"]:
        out.append("<p class='legend-note'>no timeline recorded for this scenario</p></section>")
        return out
    keys = []
    if item["phases"]:
        keys.append(
            "<span class='phase-key'></span> phases: "
            + ", ".join(
                f"{escape(p['name'])} {_clock(p['start'])}-{_clock(p['end'])}"
                for p in item["phases"]
            )
        )
    if item["bands"]:
        keys.append(
            "<span class='band-key'></span> chaos: "
            + ", ".join(
                f"{escape(b['label'])} {_clock(b['start'])}-{_clock(b['end'])} "
                f"({escape(b['ended'])})"
                for b in item["bands"]
            )
        )
    out += [f"<p class='legend-note'>{k}</p>" for k in keys]
    for p in item["panels"]:
        if p["state"] == "chart":
            out.append(
                f"<div class='panel' data-panel='{p['id']}' data-state='chart'>"
                f"<h3>{escape(p['title'])}</h3><div class='plot'></div></div>"
            )
        else:
            out.append(
                f"<div class='panel empty' data-panel='{p['id']}' data-state='empty'>"
                f"<h3>{escape(p['title'])}</h3><p>{escape(p['note'])}</p></div>"
            )
    for a in item.get("attachments", ()):
        out.append(
            f"<details class='attachment'><summary>attached: {escape(a['name'])} "
            f"({escape(a['media_type'])}, {len(a['content']):,} characters)</summary>"
            f"<pre>{escape(a['content'])}</pre></details>"
        )
    out.append("</section>")
    return out


def render_html(doc: dict[str, Any], links: dict[str, str] | None = None) -> str:
    """The run document as one HTML page; ``links`` (label → relative path) are listed
    under the header (the other reports beside it)."""
    data = report_data(doc)
    counts = ", ".join(f"{n} {k}" for k, n in doc["check_counts"].items() if n) or "no checks"
    target = doc["target"]
    head = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>kubedrill {escape(doc['run_id'])}: {escape(doc['verdict'])}</title>",
        f"<style>{_asset('uPlot.min.css')}\n{_asset('report.css')}</style></head><body>",
        f"<h1>kubedrill run {escape(doc['run_id'])} <span class='badge'>"
        f"{_verdict(doc['verdict'])}</span></h1>",
        f"<p class='meta'><span>target <b>{escape(str(target.get('name')))}</b> in "
        f"<b>{escape(str(target.get('namespace')))}</b></span><span>started "
        f"{escape(doc['started'])}</span><span>took {doc['duration_s']:.1f} s</span>"
        f"<span>suite {escape(doc['suite'])}{' (dry run)' if doc['dry_run'] else ''}</span>"
        f"<span>checks: {escape(counts)}</span></p>",
    ]
    if links:
        head.append(
            "<p class='meta'>"
            + " · ".join(f"<a href='{escape(p)}'>{escape(k)}</a>" for k, p in links.items())
            + "</p>"
        )
    for s in doc.get("skipped") or []:
        head.append(f"<p class='meta'>skipped {escape(s['id'])}: {escape(s['reason'])}</p>")
    body = _verdict_table(doc, data) + _capacity(data)
    for si, (sc, item) in enumerate(zip(doc["scenarios"], data["scenarios"], strict=True)):
        body += _scenario(si, sc, item)
    for item in data["scenarios"]:  # drawn once, in the page; not in the charts' data
        item.pop("attachments", None)
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    tail = [
        f"<script type='application/json' id='kd-data'>{payload}</script>",
        f"<script>{_asset('uPlot.iife.min.js')}</script>",
        f"<script>{_asset('report.js')}</script>",
        f"<footer class='meta' data-panels-expected='{expected_panels(data)}'>kubedrill "
        f"{escape(doc['kubedrill_version'])} · schema v{doc['schema_version']}</footer>",
        "</body></html>",
    ]
    return "\n".join(head + body + tail) + "\n"
