"""Durations as written in the configuration: one or more <number><unit> groups (``1h30m``).

A bare number is refused on purpose: ``interval: 300`` could mean seconds or minutes.
"""

from __future__ import annotations

import re

UNIT_SECONDS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# "ms" comes before "m" so that 500ms is not read as 500m followed by garbage.
_GROUP = r"(\d+(?:\.\d+)?)(ms|s|m|h|d)"
_WHOLE = re.compile(rf"(?:{_GROUP})+")
_GROUPS = re.compile(_GROUP)

DURATION_HINT = "use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m"


def parse_duration(text: object) -> float:
    """Seconds in ``text``; ValueError with the message the configuration error shows."""
    if isinstance(text, str) and _WHOLE.fullmatch(text.strip()):
        return sum(float(number) * UNIT_SECONDS[unit] for number, unit in _GROUPS.findall(text.strip()))
    raise ValueError(f"invalid duration '{text}' ({DURATION_HINT})")


def format_duration(seconds: float) -> str:
    """The shortest way to write ``seconds`` back in configuration syntax (``90.0`` -> ``1m30s``)."""
    millis = round(seconds * 1000)
    if millis <= 0:
        return "0s"
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(UNIT_SECONDS[unit] * 1000)
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
