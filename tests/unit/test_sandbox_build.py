"""Unit tests of the pure parts of kubedrill.sandbox.build (no `go` is run)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from kubedrill.sandbox import build as b

VERSIONS = """
[components.etcd]
module = "go.etcd.io/etcd/server/v3"
version = "v3.6.10"
also_require = ["go.etcd.io/etcd/etcdctl/v3@v3.6.10"]
ldflags = ["-s", "-w"]

[components.etcd.binaries]
etcd = "go.etcd.io/etcd/server/v3"
etcdctl = "go.etcd.io/etcd/etcdctl/v3"

[components.kubernetes]
module = "k8s.io/kubernetes"
version = "v1.35.4"
staging_version = "v0.35.4"
ldflags = ["-X k8s.io/component-base/version.gitVersion={version}",
           "-X k8s.io/component-base/version.gitMinor={minor}"]

[components.kubernetes.binaries]
kube-apiserver = "k8s.io/kubernetes/cmd/kube-apiserver"
kubectl = "k8s.io/kubernetes/cmd/kubectl"

[components.kwok]
module = "sigs.k8s.io/kwok"
version = "v0.8.0"
ldflags = ["-X sigs.k8s.io/kwok/pkg/consts.KubeVersion={kubernetes.bare}"]

[components.kwok.binaries]
kwok = "sigs.k8s.io/kwok/cmd/kwok"
"""

# Shape of `go mod edit -json go.mod`, trimmed from k8s.io/kubernetes, etcd and KEDA.
GOMOD_JSON = json.dumps(
    {
        "Module": {"Path": "k8s.io/kubernetes"},
        "Go": "1.25.0",
        "Require": [{"Path": "k8s.io/api", "Version": "v0.0.0"}],
        "Replace": [
            {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
            {
                "Old": {"Path": "k8s.io/cri-client"},
                "New": {"Path": "./staging/src/k8s.io/cri-client"},
            },
            {"Old": {"Path": "go.etcd.io/etcd/api/v3"}, "New": {"Path": "../api"}},
            {"Old": {"Path": "go.etcd.io/etcd"}, "New": {"Path": "./FORBIDDEN_DEPENDENCY"}},
            {
                "Old": {"Path": "sigs.k8s.io/controller-runtime"},
                "New": {"Path": "sigs.k8s.io/controller-runtime", "Version": "v0.23.3"},
            },
            {
                "Old": {"Path": "github.com/foo/bar", "Version": "v1.0.0"},
                "New": {"Path": "github.com/fork/bar", "Version": "v1.0.1"},
            },
        ],
    }
)


@pytest.fixture
def components() -> list[b.Component]:
    return b.load_versions(VERSIONS)


def test_load_versions_keeps_file_order_and_fields(components: list[b.Component]) -> None:
    assert [c.name for c in components] == ["etcd", "kubernetes", "kwok"]
    etcd = components[0]
    assert etcd.module == "go.etcd.io/etcd/server/v3"
    assert etcd.binaries == {
        "etcd": "go.etcd.io/etcd/server/v3",
        "etcdctl": "go.etcd.io/etcd/etcdctl/v3",
    }
    assert etcd.also_require == ("go.etcd.io/etcd/etcdctl/v3@v3.6.10",)
    assert etcd.staging_version is None
    assert components[1].staging_version == "v0.35.4"


def test_shipped_versions_file_parses() -> None:
    comps = b.load_versions(b.VERSIONS_FILE.read_text())
    names = {c.name for c in comps}
    assert {"kubernetes", "kwok", "etcd", "metrics-server", "keda"} <= names
    binaries = {bin_ for c in comps for bin_ in c.binaries}
    assert {"kube-apiserver", "kwokctl", "etcd", "metrics-server"} <= binaries
    for comp in comps:  # every placeholder resolves
        assert "{" not in b.expand_ldflags(comp, comps)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no \\[components"),
        ('[components.x]\nversion = "v1"\nbinaries = {x = "p"}', "lacks 'module'"),
        ('[components.x]\nmodule = "m"\nversion = "v1"\nbinaries = {}', "binaries is empty"),
        ('[components.x]\nmodule = "m"\nversion = "1.0"\nbinaries = {x = "p"}', "start with 'v'"),
    ],
)
def test_load_versions_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        b.load_versions(text)


def test_expand_ldflags_fills_own_and_other_versions(components: list[b.Component]) -> None:
    kube, kwok = components[1], components[2]
    assert b.expand_ldflags(kube, components) == (
        "-X k8s.io/component-base/version.gitVersion=v1.35.4 "
        "-X k8s.io/component-base/version.gitMinor=35"
    )
    assert b.expand_ldflags(kwok, components) == (
        "-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=1.35.4"
    )


def test_derive_replaces_maps_staging_copies_versions_drops_local_paths() -> None:
    assert b.derive_replaces(GOMOD_JSON, "v0.35.4") == [
        "k8s.io/api=k8s.io/api@v0.35.4",
        "k8s.io/cri-client=k8s.io/cri-client@v0.35.4",
        "sigs.k8s.io/controller-runtime=sigs.k8s.io/controller-runtime@v0.23.3",
        "github.com/foo/bar@v1.0.0=github.com/fork/bar@v1.0.1",
    ]


def test_derive_replaces_needs_staging_version_for_staging_paths() -> None:
    with pytest.raises(ValueError, match="staging_version"):
        b.derive_replaces(GOMOD_JSON, None)


def test_derive_replaces_without_replace_block() -> None:
    assert b.derive_replaces(json.dumps({"Module": {"Path": "m"}, "Replace": None}), None) == []


def test_versions_hash_changes_with_content() -> None:
    assert b.versions_hash(VERSIONS) == b.versions_hash(VERSIONS)
    assert b.versions_hash(VERSIONS) != b.versions_hash(VERSIONS.replace("v0.8.0", "v0.7.0"))
    assert len(b.versions_hash(VERSIONS)) == 12


def _stamp(bin_dir: Path, comp: b.Component, go_version: str) -> None:
    (bin_dir / ".stamps").mkdir(parents=True, exist_ok=True)
    (bin_dir / ".stamps" / f"{comp.name}.json").write_text(b.stamp_text(comp, go_version))
    for binary in comp.binaries:
        (bin_dir / binary).write_text("#!/bin/true\n")


def test_stamp_matches_same_spec_and_go(tmp_path: Path, components: list[b.Component]) -> None:
    etcd = components[0]
    _stamp(tmp_path, etcd, "go1.26.8")
    assert b.stamp_matches(tmp_path, etcd, "go1.26.8")


def test_stamp_mismatch_on_go_version_or_spec(
    tmp_path: Path, components: list[b.Component]
) -> None:
    etcd = components[0]
    _stamp(tmp_path, etcd, "go1.26.8")
    assert not b.stamp_matches(tmp_path, etcd, "go1.27.0")
    bumped = b.Component(**{**etcd.__dict__, "version": "v3.6.11"})
    assert not b.stamp_matches(tmp_path, bumped, "go1.26.8")


def test_stamp_mismatch_when_missing_or_binary_gone(
    tmp_path: Path, components: list[b.Component]
) -> None:
    etcd = components[0]
    assert not b.stamp_matches(tmp_path, etcd, "go1.26.8")
    _stamp(tmp_path, etcd, "go1.26.8")
    (tmp_path / "etcdctl").unlink()
    assert not b.stamp_matches(tmp_path, etcd, "go1.26.8")


def test_select_by_component_or_binary(components: list[b.Component]) -> None:
    assert [c.name for c in b.select(components, None)] == ["etcd", "kubernetes", "kwok"]
    assert [c.name for c in b.select(components, ["kwok", "etcd"])] == ["etcd", "kwok"]
    assert [c.name for c in b.select(components, ["kubectl"])] == ["kubernetes"]
    with pytest.raises(ValueError, match="unknown component"):
        b.select(components, ["nope"])


def test_prebuilt_bin_dir_from_env(tmp_path: Path) -> None:
    assert b.prebuilt_bin_dir({}) is None
    assert b.prebuilt_bin_dir({b.BIN_DIR_ENV: "  "}) is None
    assert b.prebuilt_bin_dir({b.BIN_DIR_ENV: str(tmp_path)}) == tmp_path


def test_build_with_prebuilt_dir_skips_go(tmp_path: Path) -> None:
    versions = tmp_path / "versions.toml"
    versions.write_text(VERSIONS)
    pre = tmp_path / "pre"
    pre.mkdir()
    (pre / "etcd").write_text("")
    lines: list[str] = []
    result = b.build(
        ["etcd", "kwok"],
        tmp_path / "unused-bin",
        tmp_path / "unused-cache",
        lines.append,
        versions_file=versions,
        environ={b.BIN_DIR_ENV: str(pre), "PATH": ""},  # no go on PATH: must not be needed
    )
    assert result.prebuilt
    assert result.bin_dir == pre
    assert result.missing == ["etcdctl", "kwok"]
    assert result.path("etcd") == pre / "etcd"
    assert not (tmp_path / "unused-bin").exists()
    assert any(b.BIN_DIR_ENV in line for line in lines)


def test_go_env_pins_toolchain_and_caches(tmp_path: Path) -> None:
    env = b.go_env(tmp_path, {"PATH": "/usr/bin", "GOFLAGS": "-mod=vendor"})
    assert env["PATH"] == "/usr/bin"
    assert env["GOTOOLCHAIN"] == "local"
    assert env["CGO_ENABLED"] == "0"
    assert env["GOFLAGS"] == "-mod=mod"
    assert env["GOMODCACHE"] == str(tmp_path / "go" / "mod")
    assert env["GOCACHE"] == str(tmp_path / "go" / "build")


def test_failure_message_names_component_tail_and_log() -> None:
    log = Path("/cache/logs/kubernetes.log")
    tail = [f"line {i}" for i in range(30)]
    err = b.BuildFailed("kubernetes", log, tail)
    msg = str(err)
    assert msg.startswith("building kubernetes failed")
    assert str(log) in msg
    assert "line 29" in msg
    assert "line 10" in msg
    assert "line 9\n" not in msg  # only the last TAIL_LINES lines
    assert err.component == "kubernetes"
    assert err.log_path == log


def test_failure_message_with_empty_log() -> None:
    assert "(log is empty)" in b.format_failure("etcd", Path("/x.log"), [])


def test_main_reports_missing_prebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(b.BIN_DIR_ENV, str(tmp_path))
    assert b.main(["--only", "etcd"]) == 1
    assert "missing" in capsys.readouterr().err


def test_main_rejects_unknown_component(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(b.BIN_DIR_ENV, str(tmp_path))
    assert b.main(["--only", "nope"]) == 1
    assert "unknown component" in capsys.readouterr().err


# ------------------------------------------------------------------ build record
def _fake_go(monkeypatch: pytest.MonkeyPatch, seconds: float = 2.5) -> list[str]:
    """Replace `go env GOVERSION` and the compile step: each binary is a stub file."""
    built: list[str] = []

    def fake_build_component(
        comp: b.Component,
        all_components: Sequence[b.Component],
        bin_dir: Path,
        cache_dir: Path,
        env: Mapping[str, str],
        on_binary: Callable[[str, float], None],
    ) -> None:
        for binary in comp.binaries:
            (bin_dir / binary).write_text("#!/bin/true\n")
            built.append(binary)
            on_binary(binary, seconds)

    monkeypatch.setattr(b, "go_version", lambda env: "go1.26.8")
    monkeypatch.setattr(b, "_build_component", fake_build_component)
    return built


def _build(tmp_path: Path, only: list[str] | None = None) -> b.BuildResult:
    versions = tmp_path / "versions.toml"
    versions.write_text(VERSIONS)
    return b.build(
        only, tmp_path / "bin", tmp_path / "cache", lambda _line: None,
        versions_file=versions, environ={"PATH": ""},
    )  # fmt: skip


def test_cold_build_writes_record_beside_binaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_go(monkeypatch)
    result = _build(tmp_path)
    assert result.record_path == tmp_path / "bin" / b.RECORD_NAME
    doc = json.loads(result.record_path.read_text())
    assert doc == b.read_record(tmp_path / "bin")
    cold = doc["cold"]
    assert cold == doc["last_run"]
    assert cold["cold"] and cold["all_components"] and cold["outcome"] == "completed"
    assert set(cold["components_s"]) == {"etcd", "kubernetes", "kwok"}
    assert cold["binaries_s"] == dict.fromkeys(
        ["etcd", "etcdctl", "kube-apiserver", "kubectl", "kwok"], 2.5
    )
    assert cold["reused"] == []
    assert cold["go_version"] == "go1.26.8"
    assert cold["cpu_count"] == os.cpu_count()
    assert cold["machine"] == platform.machine()
    assert cold["recorded_at"].endswith("+00:00")
    assert cold["wall_s"] >= 0
    assert cold["go_build_cache_was_empty"] and cold["go_mod_cache_was_empty"]
    assert cold["versions_hash"] == b.versions_hash(VERSIONS)


def test_warm_run_keeps_cold_record_and_adds_last_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _fake_go(monkeypatch)
    _build(tmp_path)
    first = b.read_record(tmp_path / "bin")
    assert first is not None
    cold = first["cold"]
    (tmp_path / "bin" / "kwok").unlink()  # kwok is rebuilt, the rest reused
    built.clear()
    _build(tmp_path)
    assert built == ["kwok"]
    doc = b.read_record(tmp_path / "bin")
    assert doc is not None
    assert doc["cold"] == cold
    warm = doc["last_run"]
    assert not warm["cold"]
    assert list(warm["components_s"]) == ["kwok"]  # only components actually built
    assert warm["binaries_s"] == {"kwok": 2.5}
    assert warm["reused"] == ["etcd", "etcdctl", "kube-apiserver", "kubectl"]


def test_partial_cold_run_is_not_the_cold_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_go(monkeypatch)
    _build(tmp_path, ["etcd"])
    doc = b.read_record(tmp_path / "bin")
    assert doc is not None
    assert doc["cold"] is None
    assert doc["last_run"]["cold"] and not doc["last_run"]["all_components"]
    assert not b.is_full_cold(doc["last_run"])


def test_failed_build_records_last_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_go(monkeypatch)
    _build(tmp_path)
    first = b.read_record(tmp_path / "bin")
    assert first is not None
    cold = first["cold"]

    def failing(
        comp: b.Component,
        all_components: Sequence[b.Component],
        bin_dir: Path,
        cache_dir: Path,
        env: Mapping[str, str],
        on_binary: Callable[[str, float], None],
    ) -> None:
        raise b.BuildFailed(comp.name, tmp_path / "x.log", ["boom"])

    monkeypatch.setattr(b, "_build_component", failing)
    for stamp in (tmp_path / "bin" / ".stamps").glob("*.json"):
        stamp.unlink()
    with pytest.raises(b.BuildFailed):
        _build(tmp_path)
    doc = b.read_record(tmp_path / "bin")
    assert doc is not None
    assert doc["cold"] == cold
    assert doc["last_run"]["outcome"] == "failed"
    assert doc["last_run"]["failed_component"] == "etcd"


def test_warm_caches_are_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_go(monkeypatch)
    (tmp_path / "cache" / "go" / "build").mkdir(parents=True)
    (tmp_path / "cache" / "go" / "build" / "README").write_text("")
    doc = b.read_record(_build(tmp_path).bin_dir)
    assert doc is not None
    assert doc["cold"]["go_build_cache_was_empty"] is False
    assert doc["cold"]["go_mod_cache_was_empty"] is True


def test_read_record_missing_or_foreign(tmp_path: Path) -> None:
    assert b.read_record(tmp_path) is None
    (tmp_path / b.RECORD_NAME).write_text("not json")
    assert b.read_record(tmp_path) is None
    (tmp_path / b.RECORD_NAME).write_text('{"cold": {"wall_s": 1}}')
    assert b.read_record(tmp_path) is None  # no kind: not written by us


def test_prebuilt_dir_gets_no_record(tmp_path: Path) -> None:
    versions = tmp_path / "versions.toml"
    versions.write_text(VERSIONS)
    b.build(["etcd"], tmp_path / "bin", tmp_path / "cache", lambda _line: None,
            versions_file=versions, environ={b.BIN_DIR_ENV: str(tmp_path), "PATH": ""})  # fmt: skip
    assert not (tmp_path / b.RECORD_NAME).exists()
