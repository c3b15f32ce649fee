"""LoadSpec validation (errors name the flag) and the Locust command it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.core.errors import ConfigError
from kubedrill.load.spec import RECORD_PLUGIN, REFERENCE_LOCUSTFILE, LoadSpec

URL = "http://127.0.0.1:8000"


def flag_of(**kw: object) -> str:
    with pytest.raises(ConfigError) as e:
        LoadSpec(**kw)  # type: ignore[arg-type]
    return e.value.source


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"url": "127.0.0.1:8000", "duration": 10, "rate": 1}, "--url"),
        ({"url": URL, "duration": 0, "rate": 1}, "--duration"),
        ({"url": URL, "duration": 10}, "--rate"),
        ({"url": URL, "duration": 10, "rate": 1, "users": 2}, "--rate"),
        ({"url": URL, "duration": 10, "rate": -3}, "--rate"),
        ({"url": URL, "duration": 10, "users": 0}, "--users"),
        ({"url": URL, "duration": 10, "users": 2, "shape": "ramp"}, "--shape"),
        ({"url": URL, "duration": 10, "rate": 5, "shape": "sine"}, "--shape"),
        (
            {"url": URL, "duration": 10, "rate": 5, "shape": "spike", "shape_args": {"peak": -1}},
            "--shape-args",
        ),
        ({"url": URL, "duration": 10, "rate": 5, "workers": 0}, "--workers"),
        ({"url": URL, "duration": 10, "rate": 5, "window_s": 0}, "--window"),
        ({"url": URL, "duration": 10, "rate": 5, "max_inflight": 0}, "--max-inflight"),
        ({"url": URL, "duration": 10, "rate": 5, "request_timeout_s": 0}, "--timeout"),
        ({"url": URL, "duration": 10, "rate": 5, "locustfile": Path("/nope.py")}, "--locustfile"),
    ],
)
def test_bad_specs_name_the_flag(kw: dict, flag: str) -> None:
    assert flag_of(**kw) == flag


def test_open_model_command() -> None:
    spec = LoadSpec(url=URL, duration=60, rate=100, workers=4, shape="spike",
                    shape_args={"peak": 300})  # fmt: skip
    cmd = spec.command(Path("/tmp/s.jsonl"), python="py")
    assert cmd[:5] == ["py", "-m", "locust", "-f", str(REFERENCE_LOCUSTFILE)]
    joined = " ".join(cmd)
    for part in ("--headless", f"--host {URL}", "--processes 4", "-u 4 -r 4", "--kd-rate 100",
                 "--kd-shape spike", "--kd-shape-args peak=300", "--kd-spool /tmp/s.jsonl",
                 "--kd-duration 60", "--exit-code-on-error 0"):  # fmt: skip
        assert part in joined
    assert spec.mode == "open" and spec.hard_timeout_s > 60


def test_closed_and_shape_commands(tmp_path: Path) -> None:
    closed = LoadSpec(url=URL, duration=30, users=10).command(Path("s"), python="py")
    assert "-u 10 -r 10" in " ".join(closed) and "--kd-rate" not in closed
    assert "--processes" not in closed and "--run-time 30s" in " ".join(closed)
    mine = tmp_path / "mine.py"
    mine.write_text("")
    shaped = LoadSpec(url=URL, duration=30, locustfile=mine)
    assert shaped.mode == "shape"
    cmd = shaped.command(Path("s"), python="py")
    assert cmd[4] == f"{RECORD_PLUGIN},{mine}"  # recording added to the user's locustfile
    assert "-u" not in cmd and "--run-time" not in cmd  # the LoadTestShape drives


def test_to_dict_describes_the_shape() -> None:
    d = LoadSpec(url=URL, duration=20, rate=50, shape="ramp").to_dict()
    assert d["shape"] == "ramp(50/s for 20s, start=0, ramp_s=20)" and d["mode"] == "open"


def test_remote_workers_run_only_a_master_here() -> None:
    spec = LoadSpec(url=URL, duration=60, rate=400, remote_workers=4, master_bind="0.0.0.0:5600")
    joined = " ".join(spec.command(Path("s"), python="py"))
    assert "--master --expect-workers 4" in joined and "--processes" not in joined
    assert "--master-bind-host 0.0.0.0 --master-bind-port 5600" in joined
    assert "-u 4 -r 4" in joined  # one open-model scheduler per remote worker
    assert flag_of(url=URL, duration=1, rate=1, remote_workers=1, master_bind="5600") == (
        "--master-bind"
    )


def test_wait_flowing_names_the_log_when_no_request_completes(tmp_path: Path) -> None:
    from kubedrill.core.errors import ActionFailed
    from kubedrill.load import LoadRun, LoadSpec

    run = LoadRun(LoadSpec(url="http://127.0.0.1:9", duration=5, rate=1), workdir=tmp_path)
    with pytest.raises(ActionFailed, match=r"no request completed within 0\.5 s"):
        run.wait_flowing(timeout_s=0.5)  # never started: not running


def test_remaining_counts_the_schedule_from_the_first_send_not_the_launch(
    tmp_path: Path,
) -> None:
    """Locust took 6 s to start: the 10 s schedule began at its first send, so 9 s of it are
    left 1 s after that send, whatever the launch time was."""
    import time

    from kubedrill.load import LoadRun, LoadSpec
    from kubedrill.timeline import LoadWindow

    run = LoadRun(LoadSpec(url="http://127.0.0.1:9", duration=10, rate=1), workdir=tmp_path)
    now = time.monotonic()
    run.started = now - 7.0  # launched 7 s ago
    assert run.remaining_s() == pytest.approx(3.0, abs=0.2)  # no window yet: a lower bound
    window = LoadWindow(endpoint="e", start=now - 1.0, end=now, count=1, errors={}, histogram="")
    run.timeline.record(window, source=run.source)
    assert run.remaining_s() == pytest.approx(9.0, abs=0.2)
    run.started = now - 30.0
    assert run.remaining_s() == pytest.approx(9.0, abs=0.2)  # the launch no longer matters
