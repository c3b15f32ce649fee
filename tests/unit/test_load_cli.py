"""``kubedrill load`` flag errors: one clear message naming the flag, exit 2, no Locust."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.cli import main


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--rate", "10", "--duration", "soon"], "--duration"),
        (["--rate", "abc", "--duration", "10s"], "--rate"),
        (["--rate", "0", "--duration", "10s"], "--rate"),
        (["--duration", "10s"], "--rate"),
        (["--rate", "10", "--duration", "10s", "--shape", "zigzag"], "--shape"),
        (["--rate", "10", "--duration", "10s", "--shape-args", "peak"], "--shape-args"),
        (["--rate", "10", "--duration", "10s", "--workers", "0"], "--workers"),
        (["--rate", "10", "--duration", "10s", "--window", "0s"], "--window"),
        (["--rate", "10", "--duration", "10s", "--timeout", "-1"], "--timeout"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    args: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.json"
    with pytest.raises(SystemExit) as e:
        main(["load", "--url", "http://127.0.0.1:9", "--json", str(out), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err
    assert not out.exists()


def test_bad_url_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["load", "--url", "ftp://x", "--rate", "1", "--duration", "1s",
              "--json", str(tmp_path / "o.json")])  # fmt: skip
    assert e.value.code == 2
    assert "--url: expected an http(s) URL" in capsys.readouterr().err
