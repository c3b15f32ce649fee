"""Locustfile for kubedrill's reference inference service: ``POST /v1/infer``.

Plain Locust, user-count (closed) model::

    locust -f loadtests/reference.py --host http://127.0.0.1:8000 --headless -u 10 -r 10 -t 1m

Open model at 100 req/s, latency from intended send times, windows to a spool::

    locust -f loadtests/reference.py --host http://127.0.0.1:8000 --headless -u 1 -r 1 \\
        --kd-rate 100 --kd-duration 60 --kd-spool /tmp/load.jsonl

(``kubedrill load`` does this for you and folds the windows into a timeline.)
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import loadtests  # noqa: F401
except ImportError:  # a plain checkout that is not installed: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests import plugin
from loadtests.openmodel import OpenModelUser

plugin.install()

PAYLOAD = {"inputs": [[0.1, 0.2, 0.3, 0.4]]}


class InferUser(OpenModelUser):
    """One inference request per iteration."""

    host = "http://127.0.0.1:8000"
    endpoint = "/v1/infer"

    def send(self) -> None:
        self.client.post("/v1/infer", json=PAYLOAD, name=self.endpoint)
