"""One self-contained HTML file: inline style and inline SVG charts, no script, no external asset."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from exporter import __version__
from exporter.report.model import TIERS, Certificate, Change, FailedEndpoint, Report
from exporter.report.svg import bar_chart, line_chart, paired_bars
from exporter.report.text import date, days, delta, when

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d0d7de}
p.meta{color:#57606a;margin:.2rem 0 1rem}
p.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.4rem .7rem}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .9rem;min-width:8rem}
.card b{display:block;font-size:1.4rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
svg.chart{max-width:100%;height:auto;font-size:12px}
svg .t{font-weight:600;font-size:13px}svg .s{font-size:11px;fill:#57606a}svg .g{stroke:#eaeef2}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.88rem}
td,th{padding:.3rem .5rem;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top;
overflow-wrap:break-word}
th{background:#f6f8fa;white-space:nowrap}
.ok,.PASS{color:#1a7f37}.info{color:#0969da}.warning{color:#9a6700}
.critical,.expired,.FAIL{color:#cf222e;font-weight:600}
.none{color:#57606a;font-style:italic}
td.p{min-width:16rem}
footer{color:#57606a;font-size:.8rem;margin-top:2rem}
"""


def render_html(report: Report) -> str:
    t = report.totals
    cards = "".join(
        f'<div class="card {cls}"><b>{t[key]}</b>{label}</div>'
        for key, label, cls in (
            ("certificates", "certificates", ""),
            ("ok", "ok", "ok"),
            ("warning", "warning", "warning"),
            ("critical", "critical", "critical"),
            ("failed_endpoints", "failed endpoints", "critical" if t["failed_endpoints"] else ""),
        )
    )
    link = f' &middot; <a href="{escape(report.dashboard_url)}">dashboard</a>' if report.dashboard_url else ""
    body = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="meta">{when(report.start)} to {when(report.end)} &middot; from '
        f"{escape(report.prometheus_url)}{link}</p>",
        *(f'<p class="note">{escape(note)}</p>' for note in report.notes),
        f'<div class="cards">{cards}</div>',
    ]
    if report.weekly is None and report.monthly is None:
        body += _daily(report)
    if report.weekly is not None:
        body += _weekly(report)
    if report.monthly is not None:
        body += _monthly(report)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{STYLE}</style></head><body><main>"
        + "\n".join(body)
        + f"<footer>tls-exporter {escape(__version__)} report</footer></main></body></html>\n"
    )


def _daily(report: Report) -> list[str]:
    d = report.daily
    tiers = d.tiers or {tier: sum(1 for c in d.certificates if c.tier == tier) for tier in TIERS}
    verdicts = {v: report.totals[v] for v in ("ok", "warning", "critical")}
    return [
        '<div class="charts">'
        + bar_chart("Certificates by tier", tiers)
        + bar_chart("Certificates by verdict", verdicts)
        + "</div>",
        *_certs("Certificates", d.certificates),
        *_failed("Failed endpoints", d.failed),
        *_changes("Changes in the last day", d.changes),
    ]


def _weekly(report: Report) -> list[str]:
    w = report.weekly
    assert w is not None
    rows = "".join(
        f'<tr><td class="{k}">{k}</td><td>{w.tiers[k]}</td><td>{w.tiers_before[k]}</td>'
        f"<td>{delta(w.tiers[k], w.tiers_before[k])}</td></tr>"
        for k in w.tiers
    )
    return [
        '<div class="charts">'
        + line_chart("Certificates per tier over the week", w.trend)
        + paired_bars("Days left: previous week and now", w.days_left, w.days_left_before, list(w.days_left))
        + "</div>",
        "<h2>Week over week</h2>",
        _table(["tier", "now", "a week ago", "change"], rows),
        *_changes("Renewed", w.renewed),
        *_changes("Replaced", w.replaced),
        *_certs("Newly expiring (entered warning or critical)", w.newly_expiring),
        *_certs("Expired this week", w.expired),
        *_failed("Endpoints that started failing", w.started_failing),
    ]


def _monthly(report: Report) -> list[str]:
    m = report.monthly
    assert m is not None
    policy_rows = "".join(
        f'<tr><td>{escape(p.policy)}</td><td class="{"PASS" if p.passed else "FAIL"}">'
        f"{'PASS' if p.passed else f'FAIL ({len(p.failures)})'}</td><td>{escape(', '.join(p.failures))}</td></tr>"
        for p in m.policies
    )
    legacy_rows = "".join(
        f"<tr><td>{escape(c.where)}</td><td>{escape(c.owner)}</td><td>{escape(v)}</td></tr>"
        for c, v in m.legacy_protocols
    )
    longest_rows = "".join(
        f"<tr><td>{escape(c.where)}</td><td>{escape(c.owner)}</td><td>{escape(c.subject)}</td>"
        f"<td>{c.lifetime_days or 0:.0f}</td><td>{date(c.not_after)}</td></tr>"
        for c in m.longest_lived
    )
    passed = sum(p.passed for p in m.policies)
    return [
        f"<h2>Policy: {passed} of {len(m.policies)} pass</h2>",
        _table(["policy", "result", "where it fails"], policy_rows),
        '<div class="charts">'
        + bar_chart("Grade distribution", m.grades)
        + bar_chart("Chain issues", m.chain_issues)
        + line_chart("Certificates per tier over the month", m.trend)
        + "</div>",
        *_certs("Weak keys", m.weak_keys),
        *_certs("Weak signatures", m.weak_signatures),
        f"<h2>Legacy protocol versions ({len(m.legacy_protocols)})</h2>",
        _table(["where", "owner", "versions accepted"], legacy_rows),
        *_certs("Certificates without an owner", m.unowned),
        "<h2>Longest-lived certificates</h2>",
        _table(["where", "owner", "subject", "lifetime (days)", "not after"], longest_rows),
    ]


def _certs(title: str, certs: Sequence[Certificate]) -> list[str]:
    rows = "".join(
        f'<tr><td class="{c.verdict.value}">{c.verdict.value}</td><td>{escape(c.where)}</td>'
        f"<td>{escape(c.protocol)}</td><td>{escape(c.owner) or '<span class=none>none</span>'}</td>"
        f'<td class="{escape(c.tier)}">{escape(c.tier)}</td><td>{days(c.days_left)}</td><td>{date(c.not_after)}</td>'
        f'<td>{escape(c.grade)}</td><td class="p">{escape("; ".join(c.problems))}</td></tr>'
        for c in certs
    )
    header = ["verdict", "where", "protocol", "owner", "tier", "days left", "not after", "grade", "problems"]
    return [f"<h2>{escape(title)} ({len(certs)})</h2>", _table(header, rows)]


def _failed(title: str, failed: Sequence[FailedEndpoint]) -> list[str]:
    rows = "".join(
        f"<tr><td>{escape(f.target)}</td><td>{escape(f.address)}</td><td>{escape(f.protocol)}</td>"
        f'<td>{escape(f.owner)}</td><td class="critical">{escape(f.outcome)}</td></tr>'
        for f in failed
    )
    return [f"<h2>{escape(title)} ({len(failed)})</h2>", _table(["target", "address", "protocol", "owner", "outcome"],
                                                               rows)]  # fmt: skip


def _changes(title: str, changes: Sequence[Change]) -> list[str]:
    rows = "".join(
        f"<tr><td>{escape(c.kind)}</td><td>{escape(c.target)}</td><td>{escape(c.address)}</td>"
        f"<td>{escape(c.owner)}</td><td>{when(c.at)}</td><td>{escape(c.subject)}</td><td>{escape(c.previous_subject)}</td>"
        f"<td>{date(c.previous_not_after)}</td><td>{date(c.not_after)}</td></tr>"
        for c in changes
    )
    header = [
        "change",
        "target",
        "address",
        "owner",
        "seen",
        "subject",
        "previous subject",
        "old not after",
        "new not after",
    ]
    return [f"<h2>{escape(title)} ({len(changes)})</h2>", _table(header, rows)]


def _table(header: Sequence[str], rows: str) -> str:
    if not rows:
        return '<p class="none">none</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
