"""The `/` page: every target, its outcome, days left, tier, grade and owner."""

from __future__ import annotations

import html
import time

from exporter import __version__
from exporter.certs.tiers import days_left, tier_of
from exporter.config.model import Config
from exporter.store import Store

_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}th{background:#f4f4f4}
.ok{color:#1a7f37}.info{color:#0969da}.warning{color:#9a6700}.critical,.expired,.fail{color:#cf222e;font-weight:600}"""


def render_status(store: Store, config: Config, now: float | None = None) -> str:
    now = time.time() if now is None else now
    targets, files = store.snapshot()
    rows = []
    for t, addresses in targets:
        if not addresses:
            rows.append((t.name, t.target, t.protocol, "", "pending", "", "", "", t.owner))
        for address, a in sorted(addresses.items()):
            r = a.result
            if r.report is not None:
                leaf = r.report.leaf
                tier = tier_of(leaf.not_before, leaf.not_after, now, config.profile(t.profile).expiry_tiers).value
                days = f"{days_left(leaf.not_after, now):.1f}"
                grade = r.report.grade or ""
                owner = r.report.owner
            else:
                tier, days, grade, owner = "", "", "", t.owner
            rows.append((t.name, t.target, t.protocol, address, r.outcome.value, days, tier, grade, owner))
    for fstate in files:
        for path, fr in sorted(fstate.results.items()):
            for position, cert in enumerate(fr.certificates) if fr.certificates else [(0, None)]:
                if cert is None:
                    owner = fstate.target.owner
                    rows.append((fstate.target.name, path, "file", "", fr.outcome.value, "", "", "", owner))
                    continue
                tier = tier_of(
                    cert.not_before, cert.not_after, now, config.profile(fstate.target.profile).expiry_tiers
                ).value
                rows.append(
                    (
                        fstate.target.name,
                        f"{path} #{position}",
                        "file",
                        "",
                        fr.outcome.value,
                        f"{days_left(cert.not_after, now):.1f}",
                        tier,
                        "",
                        fr.owners[position] if position < len(fr.owners) else fstate.target.owner,
                    )
                )
    body = "".join(_row(*row) for row in rows)
    head = f'<meta charset="utf-8"><title>tls-exporter</title><style>{_STYLE}</style>'
    counts = f"{len(targets)} target(s), {len(files)} file entr{'y' if len(files) == 1 else 'ies'}"
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
