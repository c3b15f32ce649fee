from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubedrill.core.errors import ConfigError
from kubedrill.core.settings import Settings, load_settings, read_config_file

MALFORMED = [
    # (file text, key named in the error, words of the expectation)
    ("target: [1, 2]\n", "target", "mapping"),
    ("targte:\n  name: x\n", "targte", "did you mean 'target'"),
    ("target:\n  namespce: x\n", "target.namespce", "did you mean 'namespace'"),
    ("target:\n  url: ftp://x\n", "target.url", "http:// or https://"),
    ("target:\n  namespace: 'bad name!'\n", "target.namespace", "Kubernetes name"),
    ("load:\n  workers: two\n", "load.workers", "an integer"),
    ("load:\n  workers: 0\n", "load.workers", "greater than 0"),
    ("load:\n  workers: true\n", "load.workers", "an integer"),
    ("load:\n  window_s: soon\n", "load.window_s", "duration"),
    ("run:\n  inconclusive: maybe\n", "run.inconclusive", "one of 'fail', 'warn'"),
    ("run:\n  time_scale: -1\n", "run.time_scale", "greater than 0"),
    ("run:\n  dry_run: 'yes'\n", "run.dry_run", "true or false"),
    ("report:\n  formats: json\n", "report.formats", "a list"),
    ("run:\n  coverage_floor: 1.5\n", "run.coverage_floor", "a fraction in (0, 1]"),
    ("run:\n  skipped: ignore\n", "run.skipped", "one of 'inconclusive', 'allow'"),
    ("chaos:\n  allowed_namespaces: [drill]\n", "chaos.allowed_namespaces", "'namespaces'"),
    ("chaos:\n  nodes: gpu-0\n", "chaos.nodes", "a list"),
    ("chaos:\n  max_pod_fraction: 2\n", "chaos.max_pod_fraction", "a fraction in (0, 1]"),
    ("report:\n  formats: [json, pdf]\n", "report.formats", "'json'"),
    ("prometheus:\n  step_s: -5s\n", "prometheus.step_s", "duration"),
    ("- just\n- a list\n", "", "mapping of sections"),
    ("target: {name: [unclosed\n", "line", "valid YAML"),
]


@pytest.mark.parametrize(("text", "key", "expected"), MALFORMED)
def test_malformed_file_is_one_error_naming_file_and_key(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = tmp_path / "drill.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert key in message
    assert expected in message


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml.*file not found"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_precedence_defaults_file_env_cli(tmp_path: Path) -> None:
    path = tmp_path / "drill.yaml"
    path.write_text("target:\n  namespace: from-file\n  name: svc\nload:\n  workers: 3\n")
    s = load_settings(path, env={"KUBEDRILL_TARGET_NAMESPACE": "from-env"})
    assert (s.target.namespace, s.target.name, s.load.workers) == ("from-env", "svc", 3)
    assert s.run.time_scale == 1.0  # default survives
    s = load_settings(
        path,
        env={"KUBEDRILL_TARGET_NAMESPACE": "from-env"},
        overrides={"target.namespace": "from-cli", "load.workers": None},
    )
    assert s.target.namespace == "from-cli"
    assert s.load.workers == 3  # a None override does not mask the file


def test_env_values_are_parsed_and_bad_ones_name_the_variable() -> None:
    s = load_settings(
        env={
            "KUBEDRILL_RUN_TIME_SCALE": "0.1",
            "KUBEDRILL_RUN_DRY_RUN": "yes",
            "KUBEDRILL_REPORT_FORMATS": "json, junit",
            "KUBEDRILL_PROMETHEUS_STEP_S": "2s",
        }
    )
    assert s.run.time_scale == 0.1
    assert s.run.dry_run is True
    assert s.report.formats == ("json", "junit")
    assert s.prometheus.step_s == 2.0
    with pytest.raises(
        ConfigError, match=r"KUBEDRILL_LOAD_WORKERS: load\.workers: expected an integer"
    ):
        load_settings(env={"KUBEDRILL_LOAD_WORKERS": "many"})
    with pytest.raises(ConfigError, match="KUBEDRILL_LOAD_WORKRS"):
        load_settings(env={"KUBEDRILL_LOAD_WORKRS": "1"})


def test_config_path_from_env(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("target:\n  name: via-env\n")
    assert load_settings(env={"KUBEDRILL_CONFIG": str(path)}).target.name == "via-env"


def test_settings_are_frozen_and_secrets_redacted() -> None:
    s = load_settings(env={"KUBEDRILL_PROMETHEUS_BEARER_TOKEN": "s3cr3t"})
    with pytest.raises(AttributeError):
        s.target.name = "x"  # type: ignore[misc]
    assert "s3cr3t" not in repr(s)
    assert s.redacted()["prometheus"]["bearer_token"] == "***"


def test_unknown_cli_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"command line: run\.nope"):
        load_settings(env={}, overrides={"run.nope": 1})


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "drill.yaml"
    path.write_text("")
    assert load_settings(path, env={}) == Settings()


def test_repository_drill_yaml_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    s = load_settings(root / "drill.yaml", env={})
    assert s.run.coverage_floor == 0.9 and s.run.skipped == "inconclusive"


def test_drill_yaml_in_the_working_directory_is_found_without_a_flag(tmp_path: Path) -> None:
    (tmp_path / "drill.yaml").write_text("target:\n  name: from-cwd\n")
    assert load_settings(env={}, cwd=tmp_path).target.name == "from-cwd"
    other = tmp_path / "other.yaml"
    other.write_text("target:\n  name: named\n")
    assert load_settings(other, env={}, cwd=tmp_path).target.name == "named"
    assert load_settings(env={}, cwd=tmp_path / "nowhere").target.name == "reference-inference"


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
section_names = st.sampled_from(
    ["target", "cluster", "prometheus", "load", "chaos", "report", "run", "x"]
)
key_names = st.sampled_from(
    [
        "name",
        "namespace",
        "url",
        "kubeconfig",
        "workers",
        "window_s",
        "allowed_namespaces",
        "formats",
        "time_scale",
        "dry_run",
        "inconclusive",
        "step_s",
        "bogus",
    ]
)
documents = st.dictionaries(
    section_names, st.dictionaries(key_names, yaml_values, max_size=4) | yaml_values, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(doc=documents)
def test_any_document_gives_settings_or_one_config_error(
    tmp_path_factory: pytest.TempPathFactory, doc: object
) -> None:
    path = tmp_path_factory.mktemp("h") / "drill.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        s = load_settings(path, env={})
    except ConfigError as e:
        assert str(e).startswith(str(path))
        assert "\n" not in str(e)
    else:
        assert isinstance(s, Settings)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_gives_settings_or_one_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("t") / "drill.yaml"
    path.write_text(text)
    try:
        read_config_file(path)
        load_settings(path, env={})
    except ConfigError as e:
        assert str(e).startswith(str(path))


def test_a_key_with_a_newline_is_shown_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "drill.yaml"
    path.write_text(yaml.safe_dump({"target": {"\n": None}}))
    with pytest.raises(ConfigError) as e:
        load_settings(path, env={})
    assert "\n" not in str(e.value) and "target.'\\n'" in str(e.value)
