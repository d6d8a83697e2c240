"""An Alertmanager webhook payload (version 4) read into the facts a trap carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    name: str
    status: AlertStatus
    severity: str
    owner: str
    server_owner: str  # the `server_owner` label, else the owner: the team that runs the server
    target: str
    address: str
    protocol: str
    summary: str
    remedy: str
    days_left: float | None = None  # the `days_left` annotation when a rule provides it
    position: str = ""  # files: which certificate of the file


def parse_payload(doc: object) -> list[Alert]:
    if not isinstance(doc, dict) or not isinstance(doc.get("alerts"), list):
        raise PayloadError("expected an Alertmanager webhook payload: a JSON object with a list 'alerts'")
    return [_alert(item, index) for index, item in enumerate(doc["alerts"])]


def _alert(item: object, index: int) -> Alert:
    if not isinstance(item, dict):
        raise PayloadError(f"alerts[{index}]: expected an object")
    labels = _strings(item.get("labels"), f"alerts[{index}].labels")
    annotations = _strings(item.get("annotations"), f"alerts[{index}].annotations")
    status = item.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"alerts[{index}].status: expected 'firing' or 'resolved', got {status!r}")
    owner = labels.get("owner", "")
    return Alert(
        name=labels.get("alertname", ""),
        status=AlertStatus(status),
        severity=labels.get("severity", ""),
        owner=owner,
        server_owner=labels.get("server_owner") or owner,
        target=labels.get("target", ""),
        address=labels.get("address", ""),
        protocol=labels.get("protocol", ""),
        summary=annotations.get("summary", ""),
        remedy=annotations.get("remedy", ""),
        days_left=_number(annotations.get("days_left")),
        position=labels.get("position", ""),
    )


def _strings(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError(f"{where}: expected an object of strings")
    return value


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
