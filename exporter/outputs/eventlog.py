"""The log as an output: one line per change event, worded for the source it came from.

A line about a problem names its finding as every other output does: `code` and `severity` from
the findings table (``exporter.certs.findings``), so the log, `check` and the alerts agree."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from exporter.certs.findings import OUTCOME_CODES, PROBLEMS
from exporter.config.model import Job
from exporter.schedule.changes import VANISHED, Event, EventKind

log = logging.getLogger("exporter.events")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_TIER_CODES = {"info": "expiry_info", "warning": "expiry_warning", "critical": "expiry_critical", "expired": "expired"}


def _finding(fields: dict[str, object], code: str | None) -> None:
    if code is not None and code in PROBLEMS:
        fields.update(code=code, severity=PROBLEMS[code].severity.value)


def describe(job: Job, event: Event) -> tuple[int, str, dict[str, object]]:
    """(level, message, fields) of the log line for ``event``."""
    stored = not job.served  # certificates at rest: each with its position, no address
    fields: dict[str, object] = {"target": job.location_target(event.location)}
    if job.served and event.location:
        fields["address"] = event.location
    if event.kind is EventKind.TIER_ENTERED:
        cert = event.certificate
        assert cert is not None
        days = (cert.not_after - event.at) / 86400.0
        fields.update(tier=event.tier, days=f"{days:.1f}", serial=cert.serial, subject=cert.subject)
        if stored:
            fields["position"] = event.position
        if event.reminder:
            fields["reminder"] = True
        _finding(fields, _TIER_CODES.get(event.tier or ""))
        level = logging.INFO if event.tier == "info" else logging.WARNING
        date = _iso(cert.not_after)[:10]
        verb = "expired on" if event.tier == "expired" else "will expire on"
        return level, f"certificate {verb} {date}", fields
    if event.kind in (EventKind.RENEWED, EventKind.NEW_CERTIFICATE):
        cert = event.certificate
        assert cert is not None
        fields.update(change=event.kind.value, serial=cert.serial, previous_serial=event.previous_serial)
        fields.update(not_after=_iso(cert.not_after), subject=cert.subject)
        if stored:
            fields["position"] = event.position
        return logging.INFO, "new certificate detected", fields
    if stored:
        fields["outcome"] = event.outcome
        if event.detail:
            fields["detail"] = f"no longer matches {job.target}" if event.detail == VANISHED else event.detail
        if event.kind is EventKind.FOUND:
            return logging.INFO, f"certificate {job.kind} found", fields
        _finding(fields, OUTCOME_CODES.get(event.outcome or ""))
        if event.kind is EventKind.MISSING:
            return logging.WARNING, f"certificate {job.kind} missing", fields
        return logging.WARNING, f"certificate {job.kind} {event.outcome.replace('_', ' ')}", fields
    if event.kind is EventKind.MISSING:
        return logging.INFO, "address no longer probed", {**fields, "detail": "no longer resolves to it"}
    if not event.previous_outcome:
        fields.update(outcome=event.outcome, detail=event.detail)
        _finding(fields, OUTCOME_CODES.get(event.outcome or ""))
        return logging.WARNING, "probe failed", fields
    fields.update({"from": event.previous_outcome, "to": event.outcome, "detail": event.detail})
    _finding(fields, OUTCOME_CODES.get(event.outcome or ""))
    level = logging.INFO if event.kind is EventKind.FOUND else logging.WARNING
    return level, "probe state changed", fields


def log_events(job: Job, events: Iterable[Event]) -> None:
    for event in events:
        level, message, fields = describe(job, event)
        log.log(level, message, extra={"fields": fields})
