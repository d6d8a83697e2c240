"""The discovery e-mail: one per run of a `discovery:` scan, built from what the run found.

Subject: ``N endpoints need attention: X expired or expiring, Y without a certificate``, where X
counts the endpoints the run found serving a certificate in the warning tier of the scan's
profile or worse (expired included), and Y the accepted connections that gave no certificate.
Tables: expired or expiring; without a certificate; had a certificate, now gone or without one;
new; forgotten; every certificate found. ``max_rows`` caps each table (the rest is counted).
Rendered as HTML (with a plain-text part in the mail), Markdown or JSON, like the other reports.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from exporter import __version__
from exporter.certs.tiers import Tier, days_left, tier_of
from exporter.config.discovery import Scan
from exporter.config.model import ExpiryTiers
from exporter.config.notify_model import ReportFormat
from exporter.report.html import STYLE
from exporter.report.text import date, days, when
from exporter.sources.discovered import Endpoint, RunChanges

ATTENTION_TIERS = (Tier.EXPIRED, Tier.CRITICAL, Tier.WARNING)  # the profile's warning tier or worse
_TIER_ORDER = {t.value: i for i, t in enumerate((Tier.EXPIRED, Tier.CRITICAL, Tier.WARNING, Tier.INFO, Tier.OK))}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    address: str  # address:port
    protocol: str
    outcome: str
    subject: str
    serial: str
    not_after: float | None
    days_left: float | None
    tier: str  # "" without a certificate
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryReport:
    scan: str
    started: float
    finished: float
    duration: float
    scope: int  # pairs tried
    ok: bool
    error: str
    outcomes: Mapping[str, int]
    expiring: tuple[Row, ...]  # found now with a certificate in the warning tier or worse; worst first
    without: tuple[Row, ...]  # found now (connection accepted) with no certificate
    lost: tuple[Row, ...]  # served a certificate before; now not found, or without one
    new: tuple[Row, ...]  # found for the first time
    forgotten: tuple[Row, ...]  # not found for forget_after: no longer monitored
    certificates: tuple[Row, ...]  # every endpoint found now with a certificate, soonest expiry first

    @property
    def attention(self) -> int:
        return len(self.expiring) + len(self.without)

    @property
    def subject(self) -> str:
        return (
            f"{self.attention} endpoints need attention: {len(self.expiring)} expired or expiring, "
            f"{len(self.without)} without a certificate"
        )

    @property
    def title(self) -> str:
        return f"Discovery {self.scan}, {when(self.finished)}"


def _row(e: Endpoint, tiers: ExpiryTiers, now: float) -> Row:
    c = e.certificate
    return Row(
        address=e.address,
        protocol=e.protocol,
        outcome=e.outcome.value,
        subject=c.subject if c else "",
        serial=c.serial if c else "",
        not_after=c.not_after if c else None,
        days_left=days_left(c.not_after, now) if c else None,
        tier=tier_of(c.not_before, c.not_after, now, tiers).value if c else "",
        first_seen=e.first_seen,
        last_seen=e.last_seen,
    )


def build_discovery_report(scan: Scan, changes: RunChanges, tiers: ExpiryTiers) -> DiscoveryReport:
    run, now = changes.run, changes.run.finished
    rows = [(e, _row(e, tiers, now)) for e in changes.endpoints]
    found_now = [(e, r) for e, r in rows if e.last_seen >= run.started]
    certificates = sorted((r for e, r in found_now if e.certificate is not None), key=_soonest)
    return DiscoveryReport(
        scan=scan.name,
        started=run.started,
        finished=run.finished,
        duration=run.duration,
        scope=run.scope,
        ok=run.ok,
        error=run.error,
        outcomes=dict(run.outcomes),
        expiring=tuple(
            sorted(
                (r for r in certificates if r.tier in ATTENTION_TIERS), key=lambda r: (_TIER_ORDER[r.tier], _soonest(r))
            )
        ),
        without=tuple(r for e, r in found_now if e.certificate is None),
        lost=tuple(r for e, r in rows if e.had_certificate and (e.last_seen < run.started or e.certificate is None)),
        new=tuple(_row(e, tiers, now) for e in changes.new),
        forgotten=tuple(_row(e, tiers, now) for e in changes.vanished),
        certificates=tuple(certificates),
    )


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _worst_first(r: Row) -> tuple[int, float, str]:
    return (_TIER_ORDER[r.tier], *_soonest(r))


def _soonest(r: Row) -> tuple[float, str]:
    return (r.not_after if r.not_after is not None else float("inf"), r.address)


# -- rendering ----------------------------------------------------------------------------------

CERT_HEADER = ("address", "protocol", "tier", "days left", "not after", "subject", "serial")
PLAIN_HEADER = ("address", "protocol", "outcome", "first seen", "last seen")


def _cert_cells(r: Row) -> list[str]:
    return [r.address, r.protocol, r.tier, days(r.days_left), date(r.not_after), r.subject, r.serial]


def _plain_cells(r: Row) -> list[str]:
    return [r.address, r.protocol, r.outcome, when(r.first_seen), when(r.last_seen)]


def _tables(report: DiscoveryReport) -> list[tuple[str, Sequence[str], list[list[str]]]]:
    return [
        ("Expired or expiring", CERT_HEADER, [_cert_cells(r) for r in report.expiring]),
        ("Without a certificate", PLAIN_HEADER, [_plain_cells(r) for r in report.without]),
        ("Had a certificate, now gone or without one", PLAIN_HEADER, [_plain_cells(r) for r in report.lost]),
        ("New endpoints", PLAIN_HEADER, [_plain_cells(r) for r in report.new]),
        ("Forgotten (not found for forget_after)", PLAIN_HEADER, [_plain_cells(r) for r in report.forgotten]),
        ("Every certificate found", CERT_HEADER, [_cert_cells(r) for r in report.certificates]),
    ]


def _summary_lines(report: DiscoveryReport) -> list[str]:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items(), key=lambda kv: (-kv[1], kv[0])))
    lines = [
        report.subject + ".",
        f"Run of {when(report.started)} to {when(report.finished)} ({report.duration:.0f} s): "
        f"{report.scope} address:port pairs tried" + (f"; {outcomes}." if outcomes else "."),
    ]
    if not report.ok:
        lines.append(f"The run failed on the exporter's side: {report.error}")
    return lines


def _capped(rows: list[list[str]], max_rows: int | None) -> tuple[list[list[str]], int]:
    if max_rows is None or len(rows) <= max_rows:
        return rows, 0
    return rows[:max_rows], len(rows) - max_rows


def render_text(report: DiscoveryReport, max_rows: int | None = None) -> str:
    out = [report.title, "", *_summary_lines(report)]
    for title, header, rows in _tables(report):
        shown, more = _capped(rows, max_rows)
        out += ["", f"{title} ({len(rows)})"]
        if not rows:
            out.append("  none")
            continue
        table = [list(header), *([cell or "-" for cell in row] for row in shown)]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        out += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
        if more:
            out.append(f"  ... and {more} more")
    return "\n".join(out) + "\n"


def render_markdown(report: DiscoveryReport, max_rows: int | None = None) -> str:
    out = [f"# {report.title}", "", *(f"{line}  " for line in _summary_lines(report))]
    for title, header, rows in _tables(report):
        shown, more = _capped(rows, max_rows)
        out += ["", f"## {title} ({len(rows)})", ""]
        if not rows:
            out.append("_none_")
            continue
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in shown]
        if more:
            out += ["", f"... and {more} more"]
    return "\n".join(out) + "\n"


def render_html(report: DiscoveryReport, max_rows: int | None = None) -> str:
    body = [
        f"<h1>{escape(report.title)}</h1>",
        *(f'<p class="meta">{escape(line)}</p>' for line in _summary_lines(report)),
    ]
    cards = (
        ("need attention", report.attention, "critical" if report.attention else "ok"),
        ("expired or expiring", len(report.expiring), "critical" if report.expiring else ""),
        ("without a certificate", len(report.without), "warning" if report.without else ""),
        ("new", len(report.new), ""),
        ("gone or lost", len(report.lost), "warning" if report.lost else ""),
    )
    body.append(
        '<div class="cards">'
        + "".join(f'<div class="card {cls}"><b>{n}</b>{escape(label)}</div>' for label, n, cls in cards)
        + "</div>"
    )
    for title, header, rows in _tables(report):
        shown, more = _capped(rows, max_rows)
        body.append(f"<h2>{escape(title)} ({len(rows)})</h2>")
        if not rows:
            body.append('<p class="none">none</p>')
            continue
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        cells = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in shown)
        body.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table></div>')
        if more:
            body.append(f'<p class="meta">... and {more} more</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{STYLE}</style></head><body><main>"
        + "\n".join(body)
        + f"<footer>tls-exporter {escape(__version__)} discovery report</footer></main></body></html>\n"
    )


def render_json(report: DiscoveryReport, max_rows: int | None = None) -> str:
    def rows(items: tuple[Row, ...]) -> dict[str, object]:
        shown = items if max_rows is None else items[:max_rows]
        return {
            "count": len(items),
            "rows": [
                {
                    "address": r.address,
                    "protocol": r.protocol,
                    "outcome": r.outcome,
                    "subject": r.subject or None,
                    "serial": r.serial or None,
                    "not_after": _iso(r.not_after) if r.not_after is not None else None,
                    "days_left": None if r.days_left is None else round(r.days_left, 3),
                    "tier": r.tier or None,
                    "first_seen": _iso(r.first_seen),
                    "last_seen": _iso(r.last_seen),
                }
                for r in shown
            ],
        }

    doc = {
        "discovery": report.scan,
        "subject": report.subject,
        "started": _iso(report.started),
        "finished": _iso(report.finished),
        "duration_seconds": round(report.duration, 3),
        "scope": report.scope,
        "ok": report.ok,
        "error": report.error or None,
        "outcomes": dict(report.outcomes),
        "expiring": rows(report.expiring),
        "without_certificate": rows(report.without),
        "lost": rows(report.lost),
        "new": rows(report.new),
        "forgotten": rows(report.forgotten),
        "certificates": rows(report.certificates),
    }
    return json.dumps(doc, indent=2) + "\n"


def render_discovery(report: DiscoveryReport, fmt: ReportFormat, max_rows: int | None = None) -> str:
    if fmt is ReportFormat.HTML:
        return render_html(report, max_rows)
    if fmt is ReportFormat.MARKDOWN:
        return render_markdown(report, max_rows)
    return render_json(report, max_rows)
