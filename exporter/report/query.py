"""A small client of Prometheus' HTTP query API (instant and range queries), on urllib.

Synchronous on purpose: a report runs a few dozen queries, from the command line or from the
scheduler's worker thread, never on the exporter's event loop.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

DEFAULT_TIMEOUT = 30.0


class QueryError(Exception):
    """Prometheus could not be reached or refused a query; the message names the query."""


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Mapping[str, str]
    value: float

    def get(self, name: str) -> str:
        return self.labels.get(name, "")


@dataclass(frozen=True, slots=True)
class Series:
    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]  # (unix time, value)


class Prometheus:
    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def instant(self, promql: str, at: float) -> list[Sample]:
        data = self._get("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        if data["resultType"] == "scalar":
            return [Sample(MappingProxyType({}), float(data["result"][1]))]
        return [Sample(MappingProxyType(r["metric"]), float(r["value"][1])) for r in data["result"]]

    def range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        data = self._get(
            "/api/v1/query_range",
            {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return [
            Series(MappingProxyType(r["metric"]), tuple((float(t), float(v)) for t, v in r["values"]))
            for r in data["result"]
        ]

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except ValueError:
                detail = ""
            raise QueryError(f"{params['query']!r}: HTTP {exc.code} {detail}".rstrip()) from None
        except (OSError, ValueError) as exc:
            raise QueryError(f"{self.url}: {exc}") from None
        if doc.get("status") != "success":
            raise QueryError(f"{params['query']!r}: {doc.get('error', 'query failed')}")
        data = doc["data"]
        assert isinstance(data, dict)
        return data
