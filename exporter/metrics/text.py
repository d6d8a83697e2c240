"""A small, fast writer of the Prometheus text exposition format (version 0.0.4).

prometheus_client's ``generate_latest`` validates every label name of every sample on every
scrape; with tens of thousands of endpoints that alone costs seconds. Label names here come
from code and validated configuration, so lines are formatted directly and cached per address.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from exporter.metrics import names as n
from exporter.support.textsafe import utf8_safe

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
EOF = b"# EOF\n"


def _media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for item in header.split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        out.append((kind.lower(), values))
    return out


def _q(params: dict[str, str]) -> float:
    try:
        return float(params.get("q", "1"))
    except ValueError:
        return 0.0


def wants_openmetrics(accept: str) -> bool:
    """``Accept`` prefers OpenMetrics (1.0.0 or unversioned) to the text format, as Prometheus asks."""
    om = text = 0.0
    for kind, params in _media_ranges(accept):
        if kind == "application/openmetrics-text" and params.get("version", "1.0.0") in ("1.0.0", "0.0.1"):
            om = max(om, _q(params))
        elif kind in ("text/plain", "text/*", "*/*"):
            text = max(text, _q(params))
    return om > 0 and om >= text


def accepts_gzip(accept_encoding: str) -> bool:
    return any(kind in ("gzip", "x-gzip") and _q(p) > 0 for kind, p in _media_ranges(accept_encoding))


def escape(value: str) -> str:
    if not value.isascii():  # a file name's undecodable bytes must not fail the whole scrape
        value = utf8_safe(value)
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(labels: Mapping[str, str]) -> str:
    """`k="v",k2="v2"` (no braces) for a label set."""
    return ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())


def number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def line(name: str, labels: str, value: float) -> str:
    return f"{name}{{{labels}}} {number(value)}\n" if labels else f"{name} {number(value)}\n"


class Exposition:
    """Lines grouped by metric name; rendered with one HELP and TYPE per family."""

    def __init__(self) -> None:
        self.lines: defaultdict[str, list[str]] = defaultdict(list)

    def add(self, name: str, labels: Mapping[str, str], value: float) -> None:
        self.lines.setdefault(name, []).append(line(name, label_text(labels), value))

    def extend(self, lines: Mapping[str, list[str]]) -> None:
        for name, more in lines.items():
            self.lines.setdefault(name, []).extend(more)

    def render(self) -> str:
        out: list[str] = []
        for name, lines in self.lines.items():
            out.append(f"# HELP {name} {n.HELP[name]}\n# TYPE {name} gauge\n")
            out.extend(lines)
        return "".join(out)


def join(parts: Iterable[str]) -> bytes:
    return "".join(parts).encode()
