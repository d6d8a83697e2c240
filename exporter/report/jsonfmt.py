"""JSON for tools: the report's data as is (times as Unix seconds and ISO 8601)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from enum import Enum
from typing import Any

from exporter.report.model import Report


def render_json(report: Report) -> str:
    doc = _plain(dataclasses.asdict(report))
    if doc["daily"].get("tiers") is None:  # set only when max_rows cut the certificates
        del doc["daily"]["tiers"]
    doc["start_iso"] = _iso(report.start)
    doc["end_iso"] = _iso(report.end)
    return json.dumps(doc, indent=2) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")
