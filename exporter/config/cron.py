"""Cron-like schedule times (``at:`` of a report): five fields, minute hour day month weekday.

Each field takes ``*``, a number, a range ``a-b``, a list ``a,b`` and a step ``*/n`` or ``a-b/n``;
weekday 0 or 7 is Sunday. As in cron, when both day of month and weekday are restricted a time
matches either. Times are UTC: reports cover UTC days, weeks and months.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_MAX_SEARCH_MINUTES = 366 * 24 * 60 * 5  # a valid expression matches within five years (Feb 29)


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_any: bool
    weekdays_any: bool

    def matches(self, t: dt.datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        return self.day_matches(t)

    def day_matches(self, t: dt.datetime) -> bool:
        day_ok = t.day in self.days
        weekday_ok = (t.isoweekday() % 7) in self.weekdays
        if self.days_any or self.weekdays_any:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def next_after(self, t: dt.datetime) -> dt.datetime:
        """The first matching minute strictly after ``t`` (an aware datetime)."""
        candidate = t.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for _ in range(_MAX_SEARCH_MINUTES):
            if candidate.month not in self.months:
                # Jump to the first day of the next month.
                year, month = divmod(candidate.month, 12)
                candidate = candidate.replace(year=candidate.year + year, month=month + 1, day=1, hour=0, minute=0)
                continue
            if not self.day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if self.matches(candidate):
                return candidate
            if candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + dt.timedelta(hours=1)
            else:
                candidate += dt.timedelta(minutes=1)
        raise ValueError("schedule never matches")


def parse_cron(text: str) -> Cron:
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"invalid schedule '{text}' (five fields: minute hour day month weekday, e.g. '0 7 * * 1')")
    sets = [_field(value, name, low, high) for value, (name, low, high) in zip(fields, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    cron = Cron(sets[0], sets[1], sets[2], sets[3], weekdays, fields[2] == "*", fields[4] == "*")
    try:
        cron.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    except ValueError:
        raise ValueError(f"invalid schedule '{text}' (it never matches a date)") from None
    return cron


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = end = int(base)
                if step_text:
                    end = high
        except ValueError:
            raise ValueError(f"invalid {name} field '{text}'") from None
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"invalid {name} field '{text}' ({low}-{high})")
        values.update(range(start, end + 1, step))
    return frozenset(values)
