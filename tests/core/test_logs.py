"""Structured logs: logfmt quoting and JSON fields, as the scheduler emits them."""

from __future__ import annotations

import json
import logging

from exporter.logs import JSONFormatter, LogfmtFormatter
from exporter.scheduler import log_events
from exporter.store import Event


def record(msg: str, **fields: object) -> logging.LogRecord:
    r = logging.LogRecord("exporter.scheduler", logging.INFO, __file__, 1, msg, None, None)
    r.fields = fields  # type: ignore[attr-defined]
    r.created = 0.0
    return r


def test_logfmt_quotes_what_needs_quoting() -> None:
    text = LogfmtFormatter().format(record("new certificate detected", serial="0a1b", subject='CN=a "b"', empty=""))
    assert text == (
        'ts=1970-01-01T00:00:00.000+00:00 level=info logger=exporter.scheduler msg="new certificate detected" '
        'serial=0a1b subject="CN=a \\"b\\"" empty=""'
    )


def test_json_carries_the_fields() -> None:
    doc = json.loads(JSONFormatter().format(record("probe state changed", to="connection_refused")))
    assert doc["msg"] == "probe state changed" and doc["to"] == "connection_refused" and doc["level"] == "info"


def test_events_become_one_line_each(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="exporter.scheduler")
    log_events(
        [
            Event(
                kind="new_certificate",
                target="shop:443",
                address="127.0.0.1:443",
                message="new certificate detected",
                fields=(("serial", "0a"), ("not_after", "2027-01-01T00:00:00Z")),
            ),
            Event(
                kind="state",
                target="shop:443",
                address="127.0.0.1:443",
                message="probe state changed",
                fields=(("from", "certificate_found"), ("to", "connection_refused"), ("detail", "refused")),
            ),
        ]
    )
    assert [
        (r.levelname, r.getMessage(), r.fields["serial"] if "serial" in r.fields else r.fields["to"])  # type: ignore[attr-defined]
        for r in caplog.records
    ] == [
        ("INFO", "new certificate detected", "0a"),
        ("WARNING", "probe state changed", "connection_refused"),
    ]
