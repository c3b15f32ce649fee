"""Open a report in headless Chromium and read back what a reader would see: console
errors and uncaught exceptions, which panels were drawn, and a screenshot.

Drives Chromium through its DevTools protocol with ``websocket-client`` (already installed
with the kubernetes client): a few commands, no browser-automation framework.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BrowserCheck", "BrowserUnavailable", "check_report", "find_chromium"]

_PROBE = """(() => {
  const panels = [...document.querySelectorAll('.panel')];
  const chart = panels.filter(p => p.dataset.state === 'chart');
  return JSON.stringify({
    panels: panels.length,
    chart: chart.length,
    drawn: chart.filter(p => p.dataset.rendered === '1' && p.querySelector('.uplot canvas')).length,
    empty: panels.filter(p => p.dataset.state === 'empty').map(p => p.dataset.panel),
    expected: Number(document.querySelector('footer').dataset.panelsExpected),
    verdict_rows: document.querySelectorAll('#verdicts tbody tr').length,
    missing: chart.filter(p => !(p.dataset.rendered === '1' && p.querySelector('.uplot canvas')))
                  .map(p => p.dataset.panel),
  });
})()"""


class BrowserUnavailable(RuntimeError):
    """No Chromium binary to run (install Debian's ``chromium``)."""


@dataclass
class BrowserCheck:
    errors: list[str] = field(default_factory=list)
    panels: int = 0
    expected: int = 0
    drawn: int = 0
    missing: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    verdict_rows: int = 0
    load_s: float = 0.0
    #: the first chart's legend values with the pointer over its middle ("—" = none)
    hover_values: list[str] = field(default_factory=list)

    @property
    def panels_missing(self) -> int:
        """Panels the data calls for that did not draw (or were not even on the page)."""
        return max(len(self.missing), self.expected - self.drawn)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _Cdp:
    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client

        self._ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self.events.append(msg)

    def wait_event(self, method: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout_s:g}s")
            self._ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self._ws.recv()))

    def close(self) -> None:
        self._ws.close()


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.error: " + " ".join(str(a.get("value")) for a in p.get("args", [])))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
    return out


def check_report(
    html: Path, screenshot: Path | None = None, width: int = 1366, timeout_s: float = 60.0
) -> BrowserCheck:
    """Load ``html`` (a file, offline: the network is refused) in headless Chromium."""
    exe = find_chromium()
    if exe is None:
        raise BrowserUnavailable("no chromium on PATH (Debian: apt-get install chromium)")
    # Chromium's helpers (zygote, crashpad, renderers) outlive its main process by a moment
    # and still write to the profile: the whole group is ended, and a file they leave in
    # the throwaway profile is no reason to fail the check
    with tempfile.TemporaryDirectory(prefix="kd-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={width},900",
                "--proxy-server=127.0.0.1:9",  # a report that fetches anything fails loudly
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout_s
            while not port_file.is_file() or not port_file.read_text().strip():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BrowserUnavailable(f"{exe} did not start (exit {proc.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            listing = f"http://127.0.0.1:{port}/json/list"
            with urllib.request.urlopen(listing, timeout=10) as r:
                targets = json.loads(r.read())
            page = next(t for t in targets if t.get("type") == "page")
            cdp = _Cdp(page["webSocketDebuggerUrl"])
            try:
                return _drive(cdp, html, screenshot, timeout_s)
            finally:
                cdp.close()
        finally:
            _end_group(proc)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to Chromium's process group, SIGKILL to what is left after 10 s."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _drive(cdp: _Cdp, html: Path, screenshot: Path | None, timeout_s: float) -> BrowserCheck:
    for domain in ("Runtime", "Log", "Page"):
        cdp.call(f"{domain}.enable")
    t0 = time.monotonic()
    cdp.call("Page.navigate", url=html.resolve().as_uri())
    cdp.wait_event("Page.loadEventFired", timeout_s)
    load_s = time.monotonic() - t0
    res = cdp.call("Runtime.evaluate", expression=_PROBE, returnByValue=True)
    probe = json.loads(res["result"]["value"])
    hover = _hover(cdp)
    if screenshot is not None:
        metrics = cdp.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = cdp.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": min(size["height"], 6000),
                "scale": 1,
            },
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    cdp.call("Runtime.evaluate", expression="0")  # flush events queued behind the probe
    return BrowserCheck(
        errors=_errors(cdp.events),
        panels=probe["panels"],
        expected=probe["expected"],
        drawn=probe["drawn"],
        missing=probe["missing"],
        empty=probe["empty"],
        verdict_rows=probe["verdict_rows"],
        load_s=round(load_s, 3),
        hover_values=hover,
    )


_OVER = """(() => { const o = document.querySelector('.u-over'); if (!o) return null;
  o.scrollIntoView({block: 'center'}); const r = o.getBoundingClientRect();
  return JSON.stringify([r.left + r.width / 2, r.top + r.height / 2]); })()"""
_LEGEND = """JSON.stringify([...document.querySelector('.uplot').querySelectorAll('.u-value')]
  .map(e => e.textContent))"""


def _hover(cdp: _Cdp) -> list[str]:
    """Move the pointer over the first chart; what its legend then shows."""
    res = cdp.call("Runtime.evaluate", expression=_OVER, returnByValue=True)
    if res["result"].get("value") is None:
        return []
    x, y = json.loads(res["result"]["value"])
    for dx in (-2.0, 0.0):
        cdp.call("Input.dispatchMouseEvent", type="mouseMoved", x=x + dx, y=y)
    cdp.call(
        "Runtime.evaluate",
        expression="new Promise(r => requestAnimationFrame(r))",
        awaitPromise=True,
    )
    res = cdp.call("Runtime.evaluate", expression=_LEGEND, returnByValue=True)
    values: list[str] = json.loads(res["result"]["value"])
    return values
