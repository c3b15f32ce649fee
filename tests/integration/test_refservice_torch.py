"""Torch mode on CPU: the real model answers, and concurrent requests share forward passes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from kubedrill.refservice.testing import RunningService, run_service

torch = pytest.importorskip("torch")

from kubedrill.refservice.torch_backend import IN_DIM, OUT_DIM, build_model  # noqa: E402

SEED = 3


@pytest.fixture(scope="module")
def svc() -> Iterator[RunningService]:
    args = ["--device", "cpu", "--max-batch", "16", "--batch-timeout-ms", "30", "--seed", str(SEED)]
    with run_service(mode="torch", extra_args=args, start_timeout_s=60) as s:
        yield s


def rows(n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(IN_DIM)] for _ in range(n)]


def reference(inputs: list[list[float]]) -> list[list[float]]:
    model = build_model(SEED, "cpu")
    with torch.inference_mode():
        out: list[list[float]] = model(torch.tensor(inputs, dtype=torch.float32)).tolist()
    return out


def test_answers_are_the_models(svc: RunningService) -> None:
    x = rows(3, seed=1)
    status, body = svc.request("POST", "/v1/infer", {"inputs": x})
    assert status == 200
    assert (body["mode"], body["rows"]) == ("torch", 3)
    assert len(body["outputs"]) == 3
    assert all(len(o) == OUT_DIM for o in body["outputs"])
    assert torch.allclose(torch.tensor(body["outputs"]), torch.tensor(reference(x)), atol=1e-5)
    # a single row may be sent flat
    status, flat = svc.request("POST", "/v1/infer", {"inputs": x[0]})
    assert status == 200
    # (batch shape may change the last bits of a float32 matmul, so compare closely, not exactly)
    assert torch.allclose(
        torch.tensor(flat["outputs"]), torch.tensor(body["outputs"][:1]), atol=1e-5
    )


def test_concurrent_requests_are_batched(svc: RunningService) -> None:
    inputs = rows(12, seed=2)
    with ThreadPoolExecutor(12) as pool:
        runs = list(pool.map(lambda x: svc.request("POST", "/v1/infer", {"inputs": [x]}), inputs))
    assert [status for status, _ in runs] == [200] * 12
    assert max(body["batch_size"] for _, body in runs) > 1
    got = torch.tensor([body["outputs"][0] for _, body in runs])
    assert torch.allclose(got, torch.tensor(reference(inputs)), atol=1e-5)
    _, gpu = svc.request("GET", "/health/gpu")
    assert gpu["torch_device"] == "cpu"
    assert gpu["model"] == "mlp 256-1024-256"


def test_bad_inputs_are_400(svc: RunningService) -> None:
    status, body = svc.request("POST", "/v1/infer", {"inputs": [[1.0, 2.0]]})
    assert status == 400
    assert body["error"] == f"inputs[0]: expected an array of {IN_DIM} numbers"
    status, body = svc.request("POST", "/v1/infer", {"inputs": rows(17, seed=3)})
    assert status == 400
    assert "at most 16 rows" in body["error"]


def test_empty_body_runs_the_default_input(svc: RunningService) -> None:
    a = svc.request("POST", "/v1/infer")
    b = svc.request("POST", "/v1/infer", {"inputs": []})
    assert a[0] == b[0] == 200
    assert torch.allclose(torch.tensor(a[1]["outputs"]), torch.tensor(b[1]["outputs"]), atol=1e-5)
    assert len(a[1]["outputs"][0]) == OUT_DIM
