"""One entry point for the three formats, with the file extension and MIME type of each."""

from __future__ import annotations

from exporter.config.notify_model import ReportFormat
from exporter.report.html import render_html
from exporter.report.jsonfmt import render_json
from exporter.report.markdown import render_markdown
from exporter.report.model import Report

EXTENSIONS = {ReportFormat.HTML: "html", ReportFormat.MARKDOWN: "md", ReportFormat.JSON: "json"}
MIME_SUBTYPES = {ReportFormat.HTML: "html", ReportFormat.MARKDOWN: "markdown", ReportFormat.JSON: "json"}


def render(report: Report, fmt: ReportFormat) -> str:
    if fmt is ReportFormat.HTML:
        return render_html(report)
    if fmt is ReportFormat.MARKDOWN:
        return render_markdown(report)
    return render_json(report)
