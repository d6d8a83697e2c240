"""The `/` page: every job's locations, their outcome, days left, tier, grade and owner."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence

from exporter import __version__
from exporter.certs.tiers import days_left, tier_of
from exporter.config.model import Config, FileTarget, Job, Target
from exporter.store import Entry

_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}th{background:#f4f4f4}
.ok{color:#1a7f37}.info{color:#0969da}.warning{color:#9a6700}.critical,.expired,.fail{color:#cf222e;font-weight:600}"""

Row = tuple[str, str, str, str, str, str, str, str, str]


def _rows(job: Job, entries: Mapping[str, Entry], config: Config, now: float) -> list[Row]:
    """One row per followed certificate of every location (or one for a location without any)."""
    served = isinstance(job, Target)
    protocol = job.protocol if isinstance(job, Target) else "file"
    tiers = config.profile(job.profile).expiry_tiers
    if not entries:
        shown = job.target if isinstance(job, Target) else job.path
        return [(job.name, shown, protocol, "", "pending", "", "", "", job.owner)]
    rows: list[Row] = []
    for location, entry in sorted(entries.items()):
        r = entry.result
        target = job.target if isinstance(job, Target) else location
        address = location if served else ""
        report = r.report
        if report is None:
            rows.append((job.name, target, protocol, address, r.outcome.value, "", "", "", job.owner))
            continue
        followed = report.chain[:1] if served else report.chain
        grade = (report.assessment.grade or "") if report.assessment else ""
        for position, cert in enumerate(followed):
            tier = tier_of(cert.not_before, cert.not_after, now, tiers).value
            shown = target if served else f"{target} #{position}"
            days = f"{days_left(cert.not_after, now):.1f}"
            rows.append(
                (job.name, shown, protocol, address, r.outcome.value, days, tier, grade, report.owners[position])
            )
    return rows


def render_status(snapshot: Sequence[tuple[Job, Mapping[str, Entry]]], config: Config, now: float | None = None) -> str:
    now = time.time() if now is None else now
    rows = [row for job, entries in snapshot for row in _rows(job, entries, config, now)]
    targets = sum(1 for job, _ in snapshot if isinstance(job, Target))
    files = sum(1 for job, _ in snapshot if isinstance(job, FileTarget))
    body = "".join(_row(*row) for row in rows)
    head = f'<meta charset="utf-8"><title>tls-exporter</title><style>{_STYLE}</style>'
    counts = f"{targets} target(s), {files} file entr{'y' if files == 1 else 'ies'}"
    return f"""<!doctype html><html><head>{head}</head>
<body><h1>tls-exporter {html.escape(__version__)}</h1>
<p>{counts}. <a href="/metrics">Metrics</a></p>
<table><tr><th>name</th><th>target</th><th>protocol</th><th>address</th><th>outcome</th><th>days left</th>
<th>tier</th><th>grade</th><th>owner</th></tr>{body}</table></body></html>"""


def _row(
    name: str, target: str, proto: str, addr: str, outcome: str, days: str, tier: str, grade: str, owner: str
) -> str:
    outcome_class = "ok" if outcome == "certificate_found" else ("" if outcome == "pending" else "fail")
    cells = [
        (name, ""),
        (target, ""),
        (proto, ""),
        (addr, ""),
        (outcome, outcome_class),
        (days, tier),
        (tier, tier),
        (grade, ""),
        (owner, ""),
    ]
    return (
        "<tr>"
        + "".join(f'<td class="{c}">{html.escape(v)}</td>' if c else f"<td>{html.escape(v)}</td>" for v, c in cells)
        + "</tr>"
    )
