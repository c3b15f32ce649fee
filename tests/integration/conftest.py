"""Fixtures for integration tests against a sandbox: one sandbox per test module
(``sandbox``), a kubernetes client on it (``api``) and a fresh namespace per test (``ns``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from kubedrill.core.errors import PreconditionUnmet
from kubedrill.sandbox.config import SandboxConfig
from kubedrill.sandbox.lifecycle import down, up
from kubedrill.sandbox.state import State
from tests.integration.kit import has_default_sa, namespaces, wait_for


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    cfg = SandboxConfig(name="itest", root=tmp_path_factory.mktemp("sandbox"))
    try:  # builds missing binaries when go is there; skips only when that is impossible
        state, _ = up(cfg, print)
    except PreconditionUnmet as e:
        pytest.skip(str(e))
    yield state
    down(cfg.paths, print)


@pytest.fixture(scope="module")
def api(sandbox: State) -> Iterator[client.ApiClient]:
    c = config.new_client_from_config(config_file=str(sandbox.paths.kubeconfig))
    yield c
    c.close()


@pytest.fixture
def ns(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    wait_for(lambda: has_default_sa(core, name), 30, f"default ServiceAccount in {name}")
    yield name
    core.delete_namespace(name)  # and wait, so the next test starts on a clean cluster
    wait_for(lambda: name not in namespaces(core), 90, f"namespace {name} deleted")
