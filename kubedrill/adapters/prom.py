"""Prometheus adapter: range queries over exactly a window, at a fixed step.

The only module that talks to Prometheus. Failures become :class:`PrometheusUnavailable`
with a reason a person can act on; bearer tokens never appear in messages.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from kubedrill.core.errors import KubedrillError, truncate
from kubedrill.core.settings import PrometheusSettings

__all__ = ["PrometheusClient", "PrometheusQueryRejected", "PrometheusUnavailable", "Series"]

_HTTP_STATUS = re.compile(r"HTTP Status Code (\d{3})")


class PrometheusUnavailable(KubedrillError):
    """Prometheus could not answer (unreachable, timeout, a server error)."""


class PrometheusQueryRejected(KubedrillError):
    """Prometheus answered and refused the query (HTTP 4xx: a PromQL typo, a bad range):
    the claim is broken, not the evidence missing."""


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix seconds, value)


class PrometheusClient:
    def __init__(self, settings: PrometheusSettings) -> None:
        if settings.url is None:
            raise PrometheusUnavailable(
                "no Prometheus URL configured (--drill-prometheus-url or prometheus.url)"
            )
        self.url = settings.url
        self._settings = settings

    @property
    def step_s(self) -> float:
        return self._settings.step_s

    def _connect(self) -> object:
        from prometheus_api_client import PrometheusConnect

        headers = (
            {"Authorization": f"Bearer {self._settings.bearer_token}"}
            if self._settings.bearer_token
            else None
        )
        return PrometheusConnect(
            url=self.url, headers=headers, timeout=int(self._settings.timeout_s) or 1
        )

    def range_query(
        self, query: str, start: float, end: float, step_s: float | None = None
    ) -> list[Series]:
        """Evaluate ``query`` from ``start`` to ``end`` (unix seconds) every ``step_s``."""
        step = step_s or self._settings.step_s
        try:
            from prometheus_api_client.exceptions import PrometheusApiClientException
            from requests import RequestException

            conn = self._connect()
            end = max(end, start + step)
            raw = conn.custom_query_range(  # type: ignore[attr-defined]
                query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}",
                # prometheus-api-client rounds start/end to whole seconds, which moves a
                # short phase by up to 0.5 s; its params override them with exact values
                # (start rounded up to the millisecond, so no point falls before the window)
                params={"start": f"{math.ceil(start * 1000) / 1000:.3f}", "end": f"{end:.3f}"},
            )
        except PrometheusApiClientException as e:
            m = _HTTP_STATUS.search(str(e))
            if m and 400 <= int(m.group(1)) < 500:
                raise PrometheusQueryRejected(
                    f"Prometheus at {self.url} rejected {query!r} (HTTP {m.group(1)}): "
                    f"{truncate(str(e), 200)}"
                ) from e
            raise PrometheusUnavailable(
                f"Prometheus at {self.url} did not answer {query!r}: {truncate(str(e), 200)}"
            ) from e
        except (RequestException, OSError, ValueError) as e:
            raise PrometheusUnavailable(
                f"Prometheus at {self.url} did not answer {query!r}: {truncate(str(e), 200)}"
            ) from e
        return [
            Series(
                labels={str(k): str(v) for k, v in item.get("metric", {}).items()},
                points=[(float(t), float(v)) for t, v in item.get("values", [])],
            )
            for item in raw
        ]
