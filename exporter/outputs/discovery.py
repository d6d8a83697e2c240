"""`GET /api/v1/discovery`: per scan, its last run and every endpoint whose connection was accepted
and that is not yet forgotten (times RFC 3339, UTC)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exporter.config.discovery import Scan
from exporter.outputs.inventory import iso
from exporter.sources.discovered import Endpoint, ScanState


def endpoint_json(e: Endpoint) -> dict[str, Any]:
    c = e.certificate
    return {
        "address": e.ip,
        "port": e.port,
        "protocol": e.protocol,
        "outcome": e.outcome.value,
        "first_seen": iso(e.first_seen),
        "last_seen": iso(e.last_seen),
        "certificate": None
        if c is None
        else {
            "subject": c.subject,
            "not_after": iso(c.not_after),
            "serial": c.serial,
            "fingerprint_sha256": c.fingerprint_sha256,
        },
    }


def discovery_json(scans: Sequence[Scan], snapshot: Mapping[str, ScanState]) -> dict[str, Any]:
    """``{"scans": [{"name", "last_run", "duration_seconds", "scope", "endpoints": [...]}]}``; a scan
    that has not run yet has ``last_run`` and ``duration_seconds`` null and no endpoints."""
    out = []
    for scan in scans:
        state = snapshot.get(scan.name) or ScanState()
        run = state.last_run
        out.append(
            {
                "name": scan.name,
                "last_run": None if run is None else iso(run.finished),
                "duration_seconds": None if run is None else round(run.duration, 3),
                "scope": run.scope if run is not None and run.ok else scan.scope,
                "endpoints": [endpoint_json(e) for e in state.endpoints.values()],
            }
        )
    return {"scans": out}
