"""Small formatting helpers shared by the HTML and Markdown renderers."""

from __future__ import annotations

import datetime as dt


def date(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d")


def when(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def days(d: float | None) -> str:
    return "" if d is None else f"{d:.1f}"


def delta(now: int, before: int) -> str:
    diff = now - before
    return f"{diff:+d}" if diff else "0"
