"""The `/` page: the inventory as a table, coloured by `check`'s verdict, sortable and filterable
in the page. One self-contained document: inline CSS and script, no external assets.

Every value is escaped here (``html.escape``); the script carries no data, it reads the rows and
their ``data-*`` sort keys, so nothing the exporter saw can reach it as code.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter
from collections.abc import Sequence

from exporter import __version__
from exporter.certs.findings import Severity, Verdict
from exporter.outputs.inventory import InventoryEntry, iso

# Ascending sort shows the worst first.
RANK = {Verdict.CRITICAL: 0, Verdict.WARNING: 1, Verdict.PENDING: 2, Verdict.OK: 3}

SHOWN_AT_ONCE = 1000  # rows laid out before "Show all": a 10,000-row table takes seconds to lay out

# (heading, sort type: numbers come from the cells' data-k)
COLUMNS = (
    ("Verdict", "num"),
    ("Name", "text"),
    ("Address or path", "text"),
    ("Protocol", "text"),
    ("Owner", "text"),
    ("Outcome", "text"),
    ("Days left", "num"),
    ("Not after (UTC)", "num"),
    ("Tier", "text"),
    ("Grade", "text"),
    ("Last probe", "num"),
    ("Problems", "text"),
)

_STYLE = """
:root{--crit:#cf222e;--crit-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;--ok:#1a7f37;--ok-bg:#dafbe1;
--grey:#57606a;--grey-bg:#eaeef2;--line:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:1rem 1.25rem;color:#1f2328}
h1{font-size:1.3rem;margin:0 0 .3rem}
.summary{margin:.2rem 0 .8rem;color:var(--grey)}
.summary a{margin-left:.6rem}
.count{display:inline-block;margin-right:.4rem}
#filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-bottom:.8rem}
#filters input,#filters select{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:6px}
#q{flex:1 1 18rem;min-width:10rem}
#shown{color:var(--grey)}
#all{font:inherit;padding:.3rem .7rem;border:1px solid var(--line);border-radius:6px;background:#f6f8fa;cursor:pointer}
table{border-collapse:collapse;width:100%}
th,td{padding:.35rem .45rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0;white-space:nowrap}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.addr{word-break:break-all;min-width:9rem}
td.name{min-width:7rem}td.nowrap{white-space:nowrap}
tr[hidden]{display:none}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-weight:600;font-size:.85em}
tr.v-critical td:first-child{box-shadow:inset 4px 0 var(--crit)}
tr.v-warning td:first-child{box-shadow:inset 4px 0 var(--warn)}
tr.v-ok td:first-child{box-shadow:inset 4px 0 var(--ok)}
tr.v-pending td:first-child,tr.v-unknown td:first-child{box-shadow:inset 4px 0 var(--grey)}
.v-critical .badge,.b-critical{background:var(--crit-bg);color:var(--crit)}
.v-warning .badge,.b-warning{background:var(--warn-bg);color:var(--warn)}
.v-ok .badge,.b-ok{background:var(--ok-bg);color:var(--ok)}
.v-pending .badge,.v-unknown .badge,.b-pending,.b-unknown{background:var(--grey-bg);color:var(--grey)}
td.t-expired,td.t-critical{color:var(--crit);font-weight:600}
td.t-warning{color:var(--warn);font-weight:600}
ul.problems{margin:0;padding-left:1.1rem;min-width:14rem}
@media (max-width:760px){
body{padding:.75rem}
table,tbody,tr,td{display:block;width:100%}
thead tr{display:flex;flex-wrap:wrap;gap:.3rem;margin-bottom:.6rem}
thead th{position:static;border:1px solid var(--line);border-radius:1rem;padding:.15rem .6rem}
tbody tr{display:flex;flex-direction:column;border:1px solid var(--line);border-radius:8px;margin-bottom:.6rem;
padding:.3rem .5rem;overflow:hidden}
td:nth-child(1){order:-3}td:nth-child(2){order:-2}td:nth-child(12){order:-1}/* verdict, name, problems */
tr.v-critical{border-left:5px solid var(--crit)}tr.v-warning{border-left:5px solid var(--warn)}
tr.v-ok{border-left:5px solid var(--ok)}tr.v-pending,tr.v-unknown{border-left:5px solid var(--grey)}
tbody tr td:first-child{box-shadow:none!important}
td{border:0;padding:.12rem 0;display:flex;gap:.5rem;text-align:left!important}
td::before{content:attr(data-label);flex:0 0 7.5rem;color:var(--grey);font-weight:600;word-break:normal}
td:empty{display:none}
td.addr{min-width:0}
ul.problems{min-width:0}
}
"""

# Without scripts there is no filter: every row is shown.
_NOSCRIPT = "#inv tr[hidden]{display:table-row}@media (max-width:760px){#inv tr[hidden]{display:flex}}"

# Sorts rows by the clicked column (again: the other way) and filters them by text, owner and
# verdict; rows without a value sort last either way. Only the first LIMIT matching rows are
# laid out (a browser takes seconds to lay out a 10,000-row table) until "Show all" is pressed.
_SCRIPT = """
(function(){
var LIMIT=__LIMIT__;
var t=document.getElementById("inv"),tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows);
var ths=t.tHead.rows[0].cells,col=0,dir=1,all=false,text=new Map();
var q=document.getElementById("q"),ow=document.getElementById("owner"),ve=document.getElementById("verdict");
var shown=document.getElementById("shown"),more=document.getElementById("all");
function key(r,i,num){var c=r.cells[i],k=c.getAttribute("data-k");
if(num)return k===null||k===""?null:parseFloat(k);
return (k===null?c.textContent:k).toLowerCase();}
function sort(i){dir=col===i?-dir:1;col=i;var num=ths[i].getAttribute("data-type")==="num";
var keyed=rows.map(function(r,n){return [key(r,i,num),n,r];});
keyed.sort(function(a,b){var x=a[0],y=b[0];if(x===y)return a[1]-b[1];if(x===null)return 1;if(y===null)return -1;
return (x<y?-1:1)*dir;});
rows=keyed.map(function(p){return p[2];});
var f=document.createDocumentFragment();rows.forEach(function(r){f.appendChild(r);});tb.appendChild(f);
for(var j=0;j<ths.length;j++)ths[j].removeAttribute("aria-sort");
ths[i].setAttribute("aria-sort",dir>0?"ascending":"descending");filter();}
function filter(){var s=q.value.trim().toLowerCase(),o=ow.value,v=ve.value,n=0,vis=0;
rows.forEach(function(r){if(s&&!text.has(r))text.set(r,r.textContent.toLowerCase());
var ok=(!s||text.get(r).indexOf(s)>=0)&&(!o||"="+r.getAttribute("data-owner")===o)
&&(!v||r.getAttribute("data-verdict")===v);
if(ok)n++;var show=ok&&(all||vis<LIMIT);if(show)vis++;if(r.hidden===show)r.hidden=!show;});
shown.textContent=vis+" of "+rows.length+" shown"+(vis<n?" ("+n+" match: filter further or show all)":"");
more.hidden=vis>=n;}
Array.prototype.forEach.call(ths,function(th,i){th.querySelector("button").addEventListener("click",function(){sort(i);});});
q.addEventListener("input",filter);ow.addEventListener("change",filter);ve.addEventListener("change",filter);
more.addEventListener("click",function(){all=true;filter();});
document.getElementById("filters").addEventListener("submit",function(e){e.preventDefault();});
filter();
})();
"""


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m ago"
    return f"{s // 86400}d {s % 86400 // 3600}h ago"


def _cell(label: str, text: str, *, cls: str = "", key: str | None = None, title: str = "") -> str:
    attrs = f' data-label="{label}"'
    if cls:
        attrs += f' class="{cls}"'
    if key is not None:
        attrs += f' data-k="{key}"'
    if title:
        attrs += f' title="{html.escape(title)}"'
    return f"<td{attrs}>{html.escape(text)}</td>"


def _row(e: InventoryEntry, esc: dict[str, str], hidden: bool) -> str:
    h = e.headline
    v = e.verdict.value
    owner = esc.get(e.owner) or esc.setdefault(e.owner, html.escape(e.owner))
    cells = [
        f'<td data-label="Verdict" data-k="{RANK[e.verdict]}"><span class="badge">{v}</span></td>',
        _cell("Name", e.name, cls="name"),
        _cell("Address or path", e.location, cls="addr", title=e.target if e.target != e.location else ""),
        _cell("Protocol", e.protocol),
        f'<td data-label="Owner" class="nowrap">{owner}</td>',
        _cell("Outcome", e.outcome or "pending", title=e.detail),
    ]
    if h is not None:
        cells += [
            _cell("Days left", f"{h.days_left:.1f}", cls=f"num days t-{h.tier}", key=f"{h.days_left:.4f}"),
            _cell("Not after", iso(h.not_after)[:10], cls="num", key=f"{h.not_after:.0f}", title=iso(h.not_after)),
            _cell("Tier", h.tier),
        ]
    else:
        cells += ['<td data-label="Days left" class="num days"></td>', '<td data-label="Not after"></td>']
        cells.append('<td data-label="Tier"></td>')
    cells.append(
        _cell(
            "Grade",
            e.grade or ("grading" if e.grading else ""),
            title="waits for the version scan" if e.grading else "",
        )
    )
    if e.last_probe_age is not None and e.last_probe is not None:
        cells.append(
            _cell(
                "Last probe", _age(e.last_probe_age), cls="num", key=f"{e.last_probe_age:.0f}", title=iso(e.last_probe)
            )
        )
    else:
        cells.append('<td data-label="Last probe" class="num"></td>')
    shown = [f for f in e.findings if f.severity is not Severity.INFO]
    if shown:
        items = "".join(
            f'<li title="{html.escape(f.remedy)}">{html.escape(f.text)} <code>{f.code}</code></li>' for f in shown
        )
        cells.append(f'<td data-label="Problems"><ul class="problems">{items}</ul></td>')
    else:
        cells.append('<td data-label="Problems"></td>')
    attrs = f'class="v-{v}" data-verdict="{v}" data-owner="{owner}"' + (" hidden" if hidden else "")
    return f"<tr {attrs}>{''.join(cells)}</tr>"


def _order(e: InventoryEntry) -> tuple[int, float, str, str]:
    days = e.headline.days_left if e.headline is not None else math.inf
    return (RANK[e.verdict], days, e.name, e.location)


def render_status(
    entries: Sequence[InventoryEntry],
    *,
    now: float | None = None,
    metrics_path: str = "/metrics",
    limit: int = SHOWN_AT_ONCE,
) -> str:
    """The page, worst first (verdict, then days left); a click on a heading sorts it otherwise.
    Rows past ``limit`` are in the page but hidden until asked for (or when scripts are off)."""
    now = time.time() if now is None else now
    esc: dict[str, str] = {}
    body = "\n".join(_row(e, esc, i >= limit) for i, e in enumerate(sorted(entries, key=_order)))
    n = len(entries)
    shown = f"{min(n, limit)} of {n} shown" + (f" ({n} match: filter further or show all)" if n > limit else "")
    counts = Counter(e.verdict for e in entries)
    badges = "".join(
        f'<span class="count badge b-{level.value}">{counts[level]} {level.value}</span>'
        for level in sorted(counts, key=RANK.__getitem__)
    )
    owners = "".join(
        f'<option value="={html.escape(o)}">{html.escape(o) or "(no owner)"}</option>'
        for o in sorted({e.owner for e in entries})
    )
    verdicts = "".join(f'<option value="{lv.value}">{lv.value}</option>' for lv in sorted(RANK, key=RANK.__getitem__))
    heads = "".join(
        f'<th data-type="{kind}"{" aria-sort=ascending" if i == 0 else ""}><button type="button">{name}</button></th>'
        for i, (name, kind) in enumerate(COLUMNS)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>tls-exporter</title><style>{_STYLE}</style></head>
<body>
<h1>tls-exporter {html.escape(__version__)}</h1>
<p class="summary">{len(entries)} entries as of {iso(now)}: {badges}
<a href="{html.escape(metrics_path)}">Metrics</a><a href="/api/v1/inventory">Inventory (JSON)</a></p>
<form id="filters" role="search">
<input id="q" type="search" placeholder="Filter: name, address, problem ..." aria-label="Text filter">
<select id="owner" aria-label="Owner"><option value="">All owners</option>{owners}</select>
<select id="verdict" aria-label="Verdict"><option value="">All verdicts</option>{verdicts}</select>
<span id="shown">{shown}</span> <button type="button" id="all"{"" if n > limit else " hidden"}>Show all</button>
</form>
<noscript><style>{_NOSCRIPT}</style></noscript>
<table id="inv"><thead><tr>{heads}</tr></thead>
<tbody>
{body}
</tbody></table>
<script>{_SCRIPT.replace("__LIMIT__", str(int(limit)))}</script>
</body></html>
"""
