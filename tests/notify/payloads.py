"""Alertmanager webhook payloads (version 4) as Alertmanager posts them."""

from __future__ import annotations

import json
from typing import Any


def alert(
    name: str,
    *,
    status: str = "firing",
    severity: str = "critical",
    owner: str = "web-team",
    server_owner: str | None = None,
    target: str = "shop.example.com",
    address: str = "192.0.2.10:443",
    protocol: str = "https",
    summary: str = "",
    remedy: str = "",
    days_left: str | None = None,
) -> dict[str, Any]:
    labels = {
        "alertname": name,
        "severity": severity,
        "owner": owner,
        "target": target,
        "address": address,
        "protocol": protocol,
    }
    if server_owner is not None:
        labels["server_owner"] = server_owner
    annotations = {"summary": summary or f"{name} on {target}", "remedy": remedy or f"Fix {name}."}
    if days_left is not None:
        annotations["days_left"] = days_left
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-12-01T07:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-01T07:30:00Z",
        "generatorURL": "http://prometheus.example.com/graph",
        "fingerprint": f"{abs(hash((name, target, address))):016x}"[:16],
    }


def payload(*alerts: dict[str, Any]) -> bytes:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{target="shop.example.com"}',
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "hsm-team-pager",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example.com",
            "alerts": list(alerts),
        }
    ).encode()
