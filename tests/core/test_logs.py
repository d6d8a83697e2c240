"""Structured logs: logfmt quoting and JSON fields, as the scheduler emits them."""

from __future__ import annotations

import json
import logging

from cryptography.hazmat.primitives.serialization import Encoding
from helpers import make_target

from exporter.certs.judge import facts_from_der
from exporter.outputs.eventlog import log_events
from exporter.schedule.changes import Event, EventKind
from exporter.support.logs import JSONFormatter, LogfmtFormatter


def record(msg: str, **fields: object) -> logging.LogRecord:
    r = logging.LogRecord("exporter.schedule.scheduler", logging.INFO, __file__, 1, msg, None, None)
    r.fields = fields  # type: ignore[attr-defined]
    r.created = 0.0
    return r


def test_logfmt_quotes_what_needs_quoting() -> None:
    text = LogfmtFormatter().format(record("new certificate detected", serial="0a1b", subject='CN=a "b"', empty=""))
    assert text == (
        'ts=1970-01-01T00:00:00.000+00:00 level=info logger=exporter.schedule.scheduler msg="new certificate detected" '
        'serial=0a1b subject="CN=a \\"b\\"" empty=""'
    )


def test_json_carries_the_fields() -> None:
    doc = json.loads(JSONFormatter().format(record("probe state changed", to="connection_refused")))
    assert doc["msg"] == "probe state changed" and doc["to"] == "connection_refused" and doc["level"] == "info"


def test_events_become_one_line_each(caplog, pki) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="exporter.events")
    target = make_target(443, host="127.0.0.1", target="shop:443")
    new = facts_from_der(pki["good"].cert.public_bytes(Encoding.DER))
    log_events(
        target,
        [
            Event(
                kind=EventKind.RENEWED,
                job=target.key,
                location="127.0.0.1:443",
                at=0.0,
                outcome="certificate_found",
                previous_outcome="certificate_found",
                position=0,
                certificate=new,
                previous_serial="0a",
            ),
            Event(
                kind=EventKind.OUTCOME_CHANGED,
                job=target.key,
                location="127.0.0.1:443",
                at=0.0,
                outcome="connection_refused",
                previous_outcome="certificate_found",
                detail="refused",
            ),
        ],
    )
    assert [
        (r.levelname, r.getMessage(), r.fields["serial"] if "serial" in r.fields else r.fields["to"])  # type: ignore[attr-defined]
        for r in caplog.records
    ] == [
        ("INFO", "new certificate detected", pki["good"].serial_hex),
        ("WARNING", "probe state changed", "connection_refused"),
    ]
    assert caplog.records[0].fields["previous_serial"] == "0a"  # type: ignore[attr-defined]
    assert caplog.records[0].fields["change"] == "renewed"  # type: ignore[attr-defined]
