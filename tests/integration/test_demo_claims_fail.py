"""Every claim of the demo suite can fail: the suite itself (scenarios/, unchanged) run as
`make demo` runs it, at the demo test's time scale, against a reference service that was
made to misbehave for real — each run starts the service (the local process and the
sandbox's pods) with fault flags through ``$KUBEDRILL_REFSERVICE_ARGS``. The union of the
claims that FAILed must be every claim the suite makes (the first run runs the whole suite,
so its run document lists them all).

The chaos scenarios (scenarios/test_cluster_chaos.py) are left out: their claims are about
faults kubedrill injects, not about the service's flags, and each of their checks is made
to FAIL by a real violation in tests/integration/test_chaos_sandbox.py (a forced drain is
a PDB bypass, a rollback a finalizer blocks) and the checks' own integration tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from kubedrill.sandbox.config import SANDBOX_DIR_ENV, SandboxConfig
from kubedrill.sandbox.lifecycle import down

ROOT = Path(__file__).resolve().parents[2]
NOT_CHAOS = ["--ignore=scenarios/test_cluster_chaos.py"]
TIME_SCALE = "0.5"  # the demo test's (tests/integration/test_demo_suite.py)

# (name, flags given to every reference service, which scenarios, whether on the sandbox)
FAULTS = [
    # every request 800 ms slower and one in five answered 500: latency, error, availability,
    # throughput, server-side and recovery claims
    ("slow_and_failing", "--added-latency-ms 800 --error-ratio 0.2", [], True),
    # pods that take 75 s to become ready and then flap unready 4 s of every 8 s: the
    # scale-out deadline and the replica floors
    (
        "slow_start_and_flapping",
        "--startup-delay-s 75 --ready-flap-period-s 8 --ready-flap-down-s 4",
        ["-k", "scales_the_service_out"],
        True,
    ),
    # a locked-down build refuses runtime faults: the stall the scenario asks for never
    # happens, so clients never see it
    ("stall_refused", "--runtime-faults off", ["-k", "stall"], False),
]


def _run(tmp: Path, args: list[str], env_args: str, sandbox: bool) -> dict[str, object]:
    import os

    env = {**os.environ, "KUBEDRILL_REFSERVICE_ARGS": env_args}
    env[SANDBOX_DIR_ENV] = str(tmp / "sandbox")  # a fresh sandbox: its pods get the flags
    reports = tmp / "reports"
    cmd = [sys.executable, "-m", "kubedrill.cli", "run", "--suite", "ci"]
    cmd += ["--report-dir", str(reports), "--time-scale", TIME_SCALE]
    if sandbox:
        cmd.append("--sandbox")
    try:
        p = subprocess.run(
            [*cmd, *NOT_CHAOS, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        if sandbox:
            down(SandboxConfig(root=tmp / "sandbox").paths, print)
    doc_path = reports / "latest" / "run.json"
    assert doc_path.exists(), p.stdout[-3000:] + p.stderr[-3000:]
    doc: dict[str, object] = json.loads(doc_path.read_text())
    doc["_exit"] = p.returncode
    return doc


def _claims(doc: dict[str, object], verdict: str | None = None) -> set[tuple[str, str]]:
    scenarios = doc["scenarios"]
    assert isinstance(scenarios, list)
    return {
        (s["id"], c["name"])
        for s in scenarios
        for c in s["checks"]
        if verdict is None or c["verdict"] == verdict
    }


def test_every_demo_claim_fails_under_a_real_fault(tmp_path: Path) -> None:
    """The slow-start run mostly waits (75 s for each pod to become ready): it runs beside
    the others, in a sandbox of its own, which takes about 2.5 min off the suite. Its
    claims are about time and replica counts, which a busier machine only makes worse."""
    from concurrent.futures import ThreadPoolExecutor

    every: set[tuple[str, str]] = set()
    failed: dict[tuple[str, str], str] = {}
    beside = [f for f in FAULTS if f[0] == "slow_start_and_flapping"]
    inline = [f for f in FAULTS if f not in beside]
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = {f[0]: pool.submit(_run, tmp_path / f[0], f[2], f[1], f[3]) for f in beside}
        # its sandbox picks its ports first: two starting at once could pick the same one
        time.sleep(20)
        docs = [(name, _run(tmp_path / name, args, flags, sb)) for name, flags, args, sb in inline]
        docs += [(name, fut.result()) for name, fut in futures.items()]
    for name, doc in docs:
        assert doc["verdict"] in ("FAIL", "ERROR") and doc["_exit"] == 1, (name, doc["verdict"])
        if not every:  # the first run is the whole suite
            scenarios = doc["scenarios"]
            assert isinstance(scenarios, list) and len(scenarios) == 3, scenarios
            every = _claims(doc)
            assert len(every) >= 20, every
        for claim in _claims(doc, "FAIL"):
            failed.setdefault(claim, name)
    never = sorted(every - set(failed))
    # what each run said of them instead, so a failure here says why (a CI log is all we get)
    said = [
        f"{name}: {sid.split('::')[-1]} / {c['name']}: {c['verdict']} — {str(c['reason'])[:300]}"
        for name, doc in docs
        for s in doc["scenarios"]  # type: ignore[attr-defined]
        for c in s["checks"]
        if (sid := s["id"], c["name"]) in never
    ]
    assert not never, "claims no fault made FAIL: " + "\n".join([str(never), *said])
