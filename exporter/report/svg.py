"""Inline SVG charts for the HTML report: no script, no external asset, scales with its box."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape

from exporter.report.model import TrendSeries

COLOURS = {
    "expired": "#8b0000",
    "critical": "#cf222e",
    "warning": "#d4a72c",
    "info": "#0969da",
    "ok": "#1a7f37",
    "now": "#0969da",
    "before": "#afb8c1",
}
DEFAULT = "#57606a"


def bar_chart(title: str, values: Mapping[str, int], *, colours: Mapping[str, str] | None = None) -> str:
    """Horizontal bars, one per key, labelled with the key and the count."""
    rows = list(values.items())
    width, bar_x, row_h = 480, 130, 24
    height = row_h * max(len(rows), 1) + 30
    top = max([v for _, v in rows] + [1])
    parts = [_open(title, width, height), f'<text x="0" y="14" class="t">{escape(title)}</text>']
    for i, (label, value) in enumerate(rows):
        y = 24 + i * row_h
        w = (width - bar_x - 40) * value / top
        colour = (colours or COLOURS).get(label, DEFAULT)
        parts.append(f'<text x="{bar_x - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect class="bar" x="{bar_x}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}"/>'
        )
        parts.append(f'<text x="{bar_x + w + 6:.1f}" y="{y + 15}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def paired_bars(title: str, now: Mapping[str, int], before: Mapping[str, int], labels: Sequence[str]) -> str:
    """Two bars per key (now and the previous period), for week-over-week comparisons."""
    width, bar_x, row_h = 480, 130, 34
    height = row_h * len(labels) + 46
    top = max([*now.values(), *before.values(), 1])
    parts = [_open(title, width, height), f'<text x="0" y="14" class="t">{escape(title)}</text>']
    for i, label in enumerate(labels):
        y = 24 + i * row_h
        parts.append(f'<text x="{bar_x - 6}" y="{y + 17}" text-anchor="end">{escape(label)}</text>')
        for j, (series, values) in enumerate((("before", before), ("now", now))):
            value = values.get(label, 0)
            w = (width - bar_x - 40) * value / top
            by = y + 2 + j * 14
            parts.append(
                f'<rect class="bar" x="{bar_x}" y="{by}" width="{w:.1f}" height="12" fill="{COLOURS[series]}"/>'
            )
            parts.append(f'<text x="{bar_x + w + 6:.1f}" y="{by + 10}" class="s">{value}</text>')
    legend_y = height - 8
    parts.append(f'<rect x="{bar_x}" y="{legend_y - 9}" width="10" height="10" fill="{COLOURS["before"]}"/>')
    parts.append(f'<text x="{bar_x + 14}" y="{legend_y}" class="s">previous</text>')
    parts.append(f'<rect x="{bar_x + 80}" y="{legend_y - 9}" width="10" height="10" fill="{COLOURS["now"]}"/>')
    parts.append(f'<text x="{bar_x + 94}" y="{legend_y}" class="s">now</text></svg>')
    return "".join(parts)


def line_chart(title: str, series: Sequence[TrendSeries]) -> str:
    """Counts over time, one line per series, with a time axis and a legend."""
    width, height = 720, 260
    left, right, top_pad, bottom = 40, 10, 24, 46
    times = [t for s in series for t, _ in s.points]
    peak = max([v for s in series for _, v in s.points] + [1])
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return left + (width - left - right) * (t - t0) / span

    def y(v: float) -> float:
        return top_pad + (height - top_pad - bottom) * (1 - v / peak)

    parts = [_open(title, width, height), f'<text x="0" y="14" class="t">{escape(title)}</text>']
    for frac in (0.0, 0.5, 1.0):
        value = peak * frac
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="g"/>')
        parts.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" class="s">{value:g}</text>')
    for t, anchor in ((t0, "start"), (t0 + span / 2, "middle"), (t1, "end")):
        label = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%m-%d")
        parts.append(f'<text x="{x(t):.1f}" y="{height - bottom + 16}" text-anchor="{anchor}" class="s">{label}</text>')
    for s in series:
        if not s.points:
            continue
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
        colour = COLOURS.get(s.name, DEFAULT)
        parts.append(f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for i, s in enumerate(series):
        lx = left + i * 90
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{COLOURS.get(s.name, DEFAULT)}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 5}" class="s">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    )
