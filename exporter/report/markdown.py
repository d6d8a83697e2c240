"""Markdown for tickets: the same sections as the HTML report, as tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from exporter.report.model import Certificate, Change, FailedEndpoint, Report
from exporter.report.text import date, days, delta, when


def render_markdown(report: Report) -> str:
    out = [f"# {report.title}", "", f"Generated from {report.prometheus_url} for {when(report.start)} to "
           f"{when(report.end)}.", ""]  # fmt: skip
    if report.dashboard_url:
        out += [f"Dashboard: {report.dashboard_url}", ""]
    out += [line for note in report.notes for line in (f"> Note: {note}", "")]
    t = report.totals
    out += _table(
        ["certificates", "ok", "warning", "critical", "failed endpoints"],
        [[str(t["certificates"]), str(t["ok"]), str(t["warning"]), str(t["critical"]), str(t["failed_endpoints"])]],
    )
    if report.weekly is None and report.monthly is None:
        out += _daily(report)
    if (w := report.weekly) is not None:
        out += _section("Week over week", ["tier", "now", "a week ago", "change"],
                        [[k, str(w.tiers[k]), str(w.tiers_before[k]), delta(w.tiers[k], w.tiers_before[k])]
                         for k in w.tiers])  # fmt: skip
        out += _section("Days left", ["days left", "now", "a week ago"],
                        [[k, str(w.days_left[k]), str(w.days_left_before[k])] for k in w.days_left])  # fmt: skip
        out += _changes("Renewed", w.renewed) + _changes("Replaced", w.replaced)
        out += _certs("Newly expiring (entered warning or critical)", w.newly_expiring)
        out += _certs("Expired this week", w.expired)
        out += _failed("Endpoints that started failing", w.started_failing)
    if (m := report.monthly) is not None:
        out += _section("Policy", ["policy", "result", "where it fails"],
                        [[p.policy, "PASS" if p.passed else f"FAIL ({len(p.failures)})", ", ".join(p.failures)]
                         for p in m.policies])  # fmt: skip
        out += _section("Grades", ["grade", "endpoints"], [[g, str(n)] for g, n in m.grades.items()])
        out += _section("Chain issues", ["issue", "certificates"], [[i, str(n)] for i, n in m.chain_issues.items()])
        out += _certs("Weak keys", m.weak_keys) + _certs("Weak signatures", m.weak_signatures)
        out += _section("Legacy protocol versions", ["where", "owner", "versions"],
                        [[c.where, c.owner, v] for c, v in m.legacy_protocols])  # fmt: skip
        out += _certs("Certificates without an owner", m.unowned)
        out += _section("Longest-lived certificates", ["where", "owner", "subject", "lifetime (days)", "not after"],
                        [[c.where, c.owner, c.subject, f"{c.lifetime_days:.0f}", date(c.not_after)]
                         for c in m.longest_lived])  # fmt: skip
    return "\n".join(out).rstrip() + "\n"


def _daily(report: Report) -> list[str]:
    d = report.daily
    return (
        _certs("Certificates", d.certificates)
        + _failed("Failed endpoints", d.failed)
        + _changes("Changes in the last day", d.changes)
    )


def _certs(title: str, certs: Sequence[Certificate]) -> list[str]:
    rows = [[c.verdict.value, c.where, c.protocol, c.owner, c.tier, days(c.days_left), date(c.not_after), c.grade,
             "; ".join(c.problems)] for c in certs]  # fmt: skip
    header = ["verdict", "where", "protocol", "owner", "tier", "days left", "not after", "grade", "problems"]
    return _section(f"{title} ({len(certs)})", header, rows)


def _failed(title: str, failed: Sequence[FailedEndpoint]) -> list[str]:
    rows = [[f.target, f.address, f.protocol, f.owner, f.outcome] for f in failed]
    return _section(f"{title} ({len(failed)})", ["target", "address", "protocol", "owner", "outcome"], rows)


def _changes(title: str, changes: Sequence[Change]) -> list[str]:
    rows = [[c.kind, c.target, c.address, c.owner, when(c.at), c.subject, c.previous_subject,
             date(c.previous_not_after), date(c.not_after)] for c in changes]  # fmt: skip
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
    return _section(f"{title} ({len(changes)})", header, rows)


def _section(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [f"## {title}", "", *_table(header, rows)]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return ["(none)", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")
