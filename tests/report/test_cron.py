"""The cron-like `at:` of reports: fields, ranges, steps, lists, and the day/weekday rule."""

from __future__ import annotations

import datetime as dt

import pytest

from exporter.config.cron import parse_cron


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 7 * * *", "2026-12-01T06:59:30", "2026-12-01T07:00:00"),
        ("0 7 * * *", "2026-12-01T07:00:00", "2026-12-02T07:00:00"),
        ("*/15 * * * *", "2026-12-01T10:07:00", "2026-12-01T10:15:00"),
        ("30 6 1 * *", "2026-12-01T07:00:00", "2027-01-01T06:30:00"),
        ("0 8 * * 1", "2026-12-01T00:00:00", "2026-12-07T08:00:00"),  # 2026-12-01 is a Tuesday
        ("0 8 * * 7", "2026-12-01T00:00:00", "2026-12-06T08:00:00"),  # 7 is Sunday too
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 9-17/4 * * 1-5", "2026-12-05T12:00:00", "2026-12-07T09:00:00"),
        ("0 0 13 * 5", "2026-12-01T00:00:00", "2026-12-04T00:00:00"),  # day 13 OR a Friday, as cron
        ("5,35 * * * *", "2026-12-01T10:06:00", "2026-12-01T10:35:00"),
    ],
)
def test_next_slot(expr: str, after: str, expected: str) -> None:
    assert parse_cron(expr).next_after(_utc(after)) == _utc(expected)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 7 * *", "invalid schedule '0 7 * *' (five fields: minute hour day month weekday, e.g. '0 7 * * 1')"),
        ("60 * * * *", "invalid minute field '60' (0-59)"),
        ("0 7 * * mon", "invalid weekday field 'mon'"),
        ("*/0 * * * *", "invalid minute field '*/0' (0-59)"),
        ("0 0 31 2 *", "invalid schedule '0 0 31 2 *' (it never matches a date)"),
    ],
)
def test_invalid(expr: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_cron(expr)
    assert str(exc.value) == message
