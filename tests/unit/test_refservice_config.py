"""Flags of python -m kubedrill.refservice: defaults, conversion, one clear error per bad flag."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from kubedrill.refservice.config import ServiceConfig, parse_args
from kubedrill.refservice.faults import Faults, ReadyFlap, Stall


def parse_args_str(argv: str) -> ServiceConfig:
    return parse_args(shlex.split(argv))


def test_defaults() -> None:
    cfg = parse_args([])
    assert cfg == ServiceConfig()
    assert (cfg.mode, cfg.slots, cfg.service_time_s) == ("emulated", 4, 0.01)


def test_emulated_flags_convert_units() -> None:
    cfg = parse_args_str(
        "--port 0 --slots 8 --service-time-ms 25 --service-time-jitter-ms 5 --max-queue 3 "
        "--busy-ledger /tmp/l --busy-poll-ms 50 --startup-delay-s 1.5 --drain-timeout-s 3 "
        "--added-latency-ms 7 --error-ratio 0.1 --stall-every-s 10 --stall-for-s 1 "
        "--ready-flap-period-s 4 --ready-flap-down-s 1 --seed 9"
    )
    assert cfg.port == 0
    assert cfg.slots == 8
    assert cfg.service_time_s == pytest.approx(0.025)
    assert cfg.service_time_jitter_s == pytest.approx(0.005)
    assert cfg.max_queue == 3
    assert cfg.busy_ledger == Path("/tmp/l")
    assert cfg.busy_poll_s == pytest.approx(0.05)
    assert (cfg.startup_delay_s, cfg.drain_timeout_s, cfg.seed) == (1.5, 3.0, 9)
    assert cfg.faults == Faults(7.0, 0.1, Stall(10.0, 1.0), ReadyFlap(4.0, 1.0))


def test_torch_flags() -> None:
    cfg = parse_args_str("--mode torch --device cpu --max-batch 16 --batch-timeout-ms 2")
    assert (cfg.mode, cfg.device, cfg.max_batch) == ("torch", "cpu", 16)
    assert cfg.batch_timeout_s == pytest.approx(0.002)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("--slots 0", "argument --slots: expected an integer ≥ 1"),
        ("--slots two", "argument --slots: expected an integer"),
        ("--port 70000", "argument --port: expected an integer ≥ 0 and ≤ 65535"),
        ("--service-time-ms -1", "argument --service-time-ms: expected a number ≥ 0"),
        ("--service-time-ms nan", "argument --service-time-ms: expected a number"),
        ("--error-ratio 2", "argument --error-ratio: expected a number ≥ 0 and ≤ 1"),
        ("--mode gpu", "argument --mode: invalid choice"),
        ("--stall-every-s 10", "argument --stall-for-s: required together with --stall-every-s"),
        ("--stall-every-s 1 --stall-for-s 1", "argument --stall-for-s: expected a number below"),
        ("--ready-flap-down-s 1", "argument --ready-flap-period-s: required together"),
        (
            "--service-time-ms 5 --service-time-jitter-ms 6",
            "argument --service-time-jitter-ms: expected at most --service-time-ms (5)",
        ),
        ("--mode torch --slots 4", "argument --slots: applies to --mode emulated only"),
        ("--max-batch 4", "argument --max-batch: applies to --mode torch only"),
        (
            "--timeline-spool /no/such/dir/spool.jsonl",
            "argument --timeline-spool: expected a file in",
        ),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args_str(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("error:") == 1


def test_flags_from_the_environment_are_appended_and_win() -> None:
    cfg = parse_args(
        ["--added-latency-ms", "5"],
        env={"KUBEDRILL_REFSERVICE_ARGS": "--added-latency-ms 600 --runtime-faults off"},
    )
    assert cfg.faults.added_latency_ms == 600 and cfg.runtime_faults is False
    assert parse_args([], env={}).runtime_faults is True
