"""One entry point for the three formats, with the file extension and MIME type of each."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from exporter.config.notify_model import ReportFormat
from exporter.report.html import render_html
from exporter.report.jsonfmt import render_json
from exporter.report.markdown import render_markdown
from exporter.report.model import TIERS, Report

EXTENSIONS = {ReportFormat.HTML: "html", ReportFormat.MARKDOWN: "md", ReportFormat.JSON: "json"}
MIME_SUBTYPES = {ReportFormat.HTML: "html", ReportFormat.MARKDOWN: "markdown", ReportFormat.JSON: "json"}


def render(report: Report, fmt: ReportFormat, max_rows: int | None = None) -> str:
    if max_rows is not None:
        report = capped(report, max_rows)
    if fmt is ReportFormat.HTML:
        return render_html(report)
    if fmt is ReportFormat.MARKDOWN:
        return render_markdown(report)
    return render_json(report)


def capped(report: Report, max_rows: int) -> Report:
    """``report`` with at most ``max_rows`` rows in each table (a report's `max_rows`); a note says
    which tables were cut and how many rows they had. Totals and charts still count every row."""
    notes: list[str] = []

    def cap(part: Any) -> Any:
        if part is None:
            return None
        cut: dict[str, Any] = {}
        for f in fields(part):
            value = getattr(part, f.name)
            if f.name in ("policies", "trend") or not isinstance(value, tuple) or len(value) <= max_rows:
                continue  # the policy verdicts and the chart series are not tables of rows
            cut[f.name] = value[:max_rows]
            notes.append(f"{f.name.replace('_', ' ')}: the first {max_rows} of {len(value)} rows")
        return replace(part, **cut) if cut else part

    daily = report.daily
    tiers = {tier: sum(1 for c in daily.certificates if c.tier == tier) for tier in TIERS}
    daily = cap(daily)
    if daily is not report.daily:
        daily = replace(daily, tiers=tiers)
    weekly, monthly = cap(report.weekly), cap(report.monthly)
    if not notes:
        return report
    note = f"Tables show at most {max_rows} rows (max_rows): " + "; ".join(notes) + "."
    return replace(report, daily=daily, weekly=weekly, monthly=monthly, notes=(*report.notes, note))
