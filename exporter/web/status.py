"""The `/` page: the inventory as a table, coloured by `check`'s verdict, sortable in the page and
filtered by the server. One self-contained document: inline CSS and script, no external assets.

The filter is the inventory API's (``InventoryQuery``): the form is a plain GET form, so the page
and `/api/v1/inventory?...` select the same entries, a filtered page is a link, and the page
works without scripts. With scripts the filter applies as one types and the page refreshes itself
(same URL, so the filter and the sort stay) every ``REFRESH_SECONDS``.

Every value is escaped here (``html.escape``); the script carries no data, it reads the rows and
their ``data-*`` sort keys, so nothing the exporter saw can reach it as code.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePath
from urllib.parse import urlencode

from exporter import __version__
from exporter.certs.findings import PROBLEMS, Severity, Verdict
from exporter.outputs.inventory import InventoryEntry, iso
from exporter.outputs.query import DISCOVERY_LABEL, NO_OWNER, InventoryQuery
from exporter.web.service import ReloadFailure

# Ascending sort shows the worst first.
RANK = {Verdict.CRITICAL: 0, Verdict.WARNING: 1, Verdict.PENDING: 2, Verdict.OK: 3}

SHOWN_AT_ONCE = 1000  # rows laid out before "Show all": a 10,000-row table takes seconds to lay out
REFRESH_SECONDS = 30  # the page reloads its rows this often (a scrape interval's order)

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
    ("Problems and what to do", "text"),
)

# Below this width the table becomes one card per entry (twelve columns do not fit).
NARROW = 1100

_STYLE = """
:root{--crit:#cf222e;--crit-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;--ok:#1a7f37;--ok-bg:#dafbe1;
--grey:#57606a;--grey-bg:#eaeef2;--line:#d0d7de;--link:#0969da}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:1rem 1.25rem;color:#1f2328}
a{color:var(--link)}
h1{font-size:1.3rem;margin:0 0 .3rem}
.summary{margin:.2rem 0 .8rem;color:var(--grey)}
.summary a.link{margin-left:.6rem}
a.count{text-decoration:none;margin-right:.4rem}
a.count[aria-current]{outline:2px solid currentColor}
.banner{background:var(--crit-bg);color:var(--crit);border:1px solid var(--crit);border-radius:6px;padding:.5rem .75rem;
margin:.3rem 0 .8rem}
.banner pre{white-space:pre-wrap;margin:.4rem 0 0;color:#1f2328}
#filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-bottom:.8rem}
#filters input,#filters select,#filters button{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);
border-radius:6px}
#q{flex:1 1 18rem;min-width:10rem}
#shown,#refreshed{color:var(--grey)}
#all{font:inherit;padding:.3rem .7rem;border:1px solid var(--line);border-radius:6px;background:#f6f8fa;cursor:pointer}
table{border-collapse:collapse;width:100%}
th,td{padding:.35rem .45rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0;white-space:nowrap}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.addr{word-break:break-all;min-width:8rem}
td.name{min-width:7rem}td.nowrap{white-space:nowrap}
.sub{display:block;color:var(--grey);font-size:.85em}
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
ul.problems{margin:0;padding-left:1.1rem;min-width:13rem;max-width:30rem}
ul.problems li{margin-bottom:.25rem}
.remedy{display:block;color:var(--grey);font-size:.9em}
.links{font-size:.9em;white-space:nowrap}
.links a{margin-right:.6rem}
@media (max-width:__NARROW__px){
body{padding:.75rem}
table,tbody,tr,td{display:block;width:100%}
thead tr{display:flex;flex-wrap:wrap;gap:.3rem;margin-bottom:.6rem}
thead th{position:static;border:1px solid var(--line);border-radius:1rem;padding:.15rem .6rem}
tbody tr{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));column-gap:1.5rem;
border:1px solid var(--line);border-radius:8px;margin-bottom:.6rem;padding:.3rem .5rem;overflow:hidden}
/* verdict, name and problems first, across the card; the facts in as many columns as fit */
td:nth-child(1){order:-3}td:nth-child(2){order:-2}td:nth-child(12){order:-1}
td:nth-child(1),td:nth-child(2),td:nth-child(12){grid-column:1/-1}
tr.v-critical{border-left:5px solid var(--crit)}tr.v-warning{border-left:5px solid var(--warn)}
tr.v-ok{border-left:5px solid var(--ok)}tr.v-pending,tr.v-unknown{border-left:5px solid var(--grey)}
tbody tr td:first-child{box-shadow:none!important}
td{border:0;padding:.12rem 0;display:flex;gap:.5rem;text-align:left!important}
td::before{content:attr(data-label);flex:0 0 7.5rem;color:var(--grey);font-weight:600;word-break:normal}
td>*{min-width:0}
td:empty{display:none}
td.addr{min-width:0}
ul.problems{min-width:0;max-width:none}
.links{white-space:normal}
}
"""

# Without scripts there is no sorting or "Show all": every row is shown; the form still filters.
_NOSCRIPT = (
    "#inv tr[hidden]{display:table-row}@media (max-width:__NARROW__px){#inv tr[hidden]{display:grid}}#all{display:none}"
)

# Sorts rows by the clicked column (again: the other way); rows without a value sort last either
# way. Only the first LIMIT rows are laid out (a browser takes seconds to lay out a 10,000-row
# table) until "Show all" is pressed. The filter form is applied by the server: typing or choosing
# replaces the URL's query and fetches the page again, and so does the timer; the new rows are
# swapped in and the current sort applied to them. A late answer to an older request is dropped.
_SCRIPT = """
(function(){
var LIMIT=__LIMIT__,REFRESH=__REFRESH__;
var t=document.getElementById("inv"),form=document.getElementById("filters");
var col=0,dir=1,all=false,seq=0,typing=null;
document.getElementById("apply").hidden=true;
function rows(){return Array.prototype.slice.call(t.tBodies[0].rows);}
function key(r,i,num){var c=r.cells[i],k=c.getAttribute("data-k");
if(num)return k===null||k===""?null:parseFloat(k);
return (k===null?c.textContent:k).toLowerCase();}
function order(){var ths=t.tHead.rows[0].cells,num=ths[col].getAttribute("data-type")==="num";
var keyed=rows().map(function(r,n){return [key(r,col,num),n,r];});
keyed.sort(function(a,b){var x=a[0],y=b[0];if(x===y)return a[1]-b[1];if(x===null)return 1;if(y===null)return -1;
return (x<y?-1:1)*dir;});
var f=document.createDocumentFragment();keyed.forEach(function(p){f.appendChild(p[2]);});t.tBodies[0].appendChild(f);
for(var j=0;j<ths.length;j++)ths[j].removeAttribute("aria-sort");
ths[col].setAttribute("aria-sort",dir>0?"ascending":"descending");layout();}
function layout(){var rs=rows(),n=rs.length,vis=0;
rs.forEach(function(r,i){var show=all||i<LIMIT;if(show)vis++;if(r.hidden===show)r.hidden=!show;});
document.getElementById("shown").textContent=vis+" of "+n+" shown"+(vis<n?" (filter further or show all)":"");
document.getElementById("all").hidden=vis>=n;}
function query(){var s=[];
new FormData(form).forEach(function(v,k){if(v)s.push(encodeURIComponent(k)+"="+encodeURIComponent(v));});
return s.length?"?"+s.join("&"):"";}
function swap(d,id){var now=document.getElementById(id),fresh=d.getElementById(id);
if(now&&fresh)now.replaceWith(fresh);}
function refresh(){var mine=++seq,url=location.pathname+location.search;
fetch(url,{credentials:"same-origin"}).then(function(r){if(!r.ok)throw new Error("HTTP "+r.status);return r.text();})
.then(function(text){if(mine!==seq)return;var d=new DOMParser().parseFromString(text,"text/html");
swap(d,"summary");swap(d,"banner");t.tBodies[0].replaceWith(d.getElementById("inv").tBodies[0]);order();
document.getElementById("refreshed").textContent="";})
.catch(function(e){if(mine===seq)
document.getElementById("refreshed").textContent="refresh failed ("+e.message+"), retrying";});}
function apply(){var q=query();if(q!==location.search){history.replaceState(null,"",location.pathname+q);}refresh();}
Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){th.querySelector("button").addEventListener("click",
function(){dir=col===i?-dir:1;col=i;order();});});
document.getElementById("q").addEventListener("input",function(){clearTimeout(typing);typing=setTimeout(apply,300);});
Array.prototype.forEach.call(form.querySelectorAll("select"),function(s){s.addEventListener("change",apply);});
form.addEventListener("submit",function(e){e.preventDefault();clearTimeout(typing);apply();});
document.getElementById("all").addEventListener("click",function(){all=true;layout();});
setInterval(function(){if(!document.hidden)refresh();},REFRESH*1000);
layout();
})();
"""


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _cell(label: str, text: str, *, cls: str = "", key: str | None = None, title: str = "") -> str:
    attrs = f' data-label="{label}"'
    if cls:
        attrs += f' class="{cls}"'
    if key is not None:
        attrs += f' data-k="{key}"'
    if title:
        attrs += f' title="{html.escape(title)}"'
    return f"<td{attrs}>{html.escape(text)}</td>"


def _name_cell(e: InventoryEntry) -> str:
    """An address is named by its job; a file by its own name (a glob matches many), with the job's
    name under it when the job has one."""
    scan = dict(e.labels).get(DISCOVERY_LABEL)
    if scan is not None:  # found by a discovery scan: named by its address, the scan under it (a filter link)
        link = f"?{urlencode({'discovery': scan})}"
        sub = f'<span class="sub">found by <a href="{html.escape(link)}">discovery {html.escape(scan)}</a></span>'
        name = html.escape(e.name)
        return f'<td data-label="Name" class="name" data-k="{name.lower()}">{name}{sub}</td>'
    if e.served or not e.location:
        return _cell("Name", e.name, cls="name")
    own = PurePath(e.location).name or e.location
    sub = f'<span class="sub">{html.escape(e.name)}</span>' if e.name not in (e.target, e.location, own) else ""
    return f'<td data-label="Name" class="name" data-k="{html.escape(own.lower())}">{html.escape(own)}{sub}</td>'


def debug_link(e: InventoryEntry) -> str | None:
    """A /probe of this entry's target with ?debug=true: every step of a fresh probe, and its verdict."""
    if not e.served:
        return None
    params = [("target", e.target), ("protocol", e.protocol)]
    if e.server_name:
        params.append(("server_name", e.server_name))
    if e.profile != "default":
        params.append(("profile", e.profile))
    return "probe?" + urlencode([*params, ("debug", "true")])


def _problems_cell(e: InventoryEntry) -> str:
    shown = [f for f in e.findings if f.severity is not Severity.INFO]
    items = "".join(
        f"<li>{html.escape(f.text)} <code>{f.code}</code>"
        f'<span class="remedy">{html.escape(f.remedy)}'
        f' <a href="runbooks/{PROBLEMS[f.code].alert}">Runbook</a></span></li>'
        for f in shown
    )
    parts = [f'<ul class="problems">{items}</ul>'] if items else []
    debug = debug_link(e)
    if debug is not None:
        parts.append(f'<span class="links"><a href="{html.escape(debug)}" rel="nofollow">Probe now (debug)</a></span>')
    if not parts:
        return '<td data-label="Problems"></td>'
    return f'<td data-label="Problems"><div>{"".join(parts)}</div></td>'


def _last_probe_cell(e: InventoryEntry, now: float) -> str:
    nxt = f"next probe {iso(e.next_probe)}" if e.next_probe is not None else ""
    if e.last_probe_age is not None and e.last_probe is not None:
        title = f"{iso(e.last_probe)}" + (f"; {nxt}" if nxt else "")
        return _cell(
            "Last probe", f"{_age(e.last_probe_age)} ago", cls="num", key=f"{e.last_probe_age:.0f}", title=title
        )
    if e.outcome is None:  # pending: when its first probe comes
        if e.next_probe is None:
            return _cell("Last probe", "not scheduled", cls="num", title="probing is stopped")
        wait = e.next_probe - now
        text = f"first in {_age(wait)}" if wait >= 1 else "first probe under way"
        return _cell("Last probe", text, cls="num", title=f"first probe due {iso(e.next_probe)}")
    return '<td data-label="Last probe" class="num"></td>'


def _row(e: InventoryEntry, esc: dict[str, str], hidden: bool, now: float) -> str:
    h = e.headline
    v = e.verdict.value
    owner = esc.get(e.owner) or esc.setdefault(e.owner, html.escape(e.owner))
    cells = [
        f'<td data-label="Verdict" data-k="{RANK[e.verdict]}"><span class="badge">{v}</span></td>',
        _name_cell(e),
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
    cells.append(_last_probe_cell(e, now))
    cells.append(_problems_cell(e))
    attrs = f'class="v-{v}" data-verdict="{v}"' + (" hidden" if hidden else "")
    return f"<tr {attrs}>{''.join(cells)}</tr>"


def _order(e: InventoryEntry) -> tuple[int, float, str, str]:
    days = e.headline.days_left if e.headline is not None else math.inf
    return (RANK[e.verdict], days, e.name, e.location)


def _option(value: str, label: str, chosen: str) -> str:
    selected = " selected" if value == chosen else ""
    return f'<option value="{html.escape(value)}"{selected}>{html.escape(label)}</option>'


def _banner(failure: ReloadFailure | None) -> str:
    if failure is None:
        return '<div id="banner" hidden></div>'
    since = f"loaded {iso(failure.loaded_at)}" if failure.loaded_at is not None else "loaded at start"
    errors = html.escape("\n".join(failure.errors))
    return (
        f'<div id="banner" class="banner" role="alert"><strong>The last configuration reload failed</strong> '
        f"({iso(failure.at)}, {len(failure.errors)} error{'s' if len(failure.errors) != 1 else ''}): "
        f"the exporter keeps running the previous configuration ({since}). Fix the file and reload again."
        f"<pre>{errors}</pre></div>"
    )


def render_status(
    entries: Sequence[InventoryEntry],
    *,
    query: InventoryQuery | None = None,
    now: float | None = None,
    metrics_path: str = "/metrics",
    limit: int = SHOWN_AT_ONCE,
    reload_failure: ReloadFailure | None = None,
    refresh: float | None = None,
) -> str:
    """The page with the entries ``query`` selects, worst first (verdict, then days left); a click
    on a heading sorts it otherwise. Rows past ``limit`` are in the page but hidden until asked for
    (or when scripts are off)."""
    now = time.time() if now is None else now
    refresh = REFRESH_SECONDS if refresh is None else refresh
    query = query or InventoryQuery()
    selected = query.select(entries)
    esc: dict[str, str] = {}
    body = "\n".join(_row(e, esc, i >= limit, now) for i, e in enumerate(sorted(selected, key=_order)))
    n = len(selected)
    shown = f"{min(n, limit)} of {n} shown" + (" (filter further or show all)" if n > limit else "")
    # The chips count what the filter selects; each one narrows the filter to its verdict (again: all).
    counts = Counter(e.verdict for e in selected)
    chosen_verdict = ",".join(sorted(query.verdicts))
    chips = []
    for level in sorted(RANK, key=RANK.__getitem__):
        if not counts[level] and level.value not in query.verdicts:
            continue
        current = chosen_verdict == level.value
        href = "?" + query.params(verdict=None if current else level.value)
        chips.append(
            f'<a class="count badge b-{level.value}" href="{html.escape(href)}"'
            f"{' aria-current=true' if current else ''}>{counts[level]} {level.value}</a>"
        )
    owners = sorted({e.owner for e in entries})
    owner_options = _option("", "All owners", query.owner or "") + "".join(
        _option(o or NO_OWNER, o or "(no owner)", query.owner or "") for o in owners
    )
    verdict_options = _option("", "All verdicts", chosen_verdict) + _option(
        "critical,warning", "critical or warning", chosen_verdict
    )
    verdict_options += "".join(_option(lv.value, lv.value, chosen_verdict) for lv in sorted(RANK, key=RANK.__getitem__))
    protocols = sorted({e.protocol for e in entries})
    chosen_protocol = ",".join(sorted(query.protocols))
    protocol_options = _option("", "All protocols", chosen_protocol) + "".join(
        _option(p, p, chosen_protocol) for p in protocols
    )
    discovery = (
        f'<input type="hidden" name="discovery" value="{html.escape(query.discovery)}">' if query.discovery else ""
    )
    heads = "".join(
        f'<th data-type="{kind}"{" aria-sort=ascending" if i == 0 else ""}><button type="button">{name}</button></th>'
        for i, (name, kind) in enumerate(COLUMNS)
    )
    of_all = f"{n} of {len(entries)} entries" if query.active else f"{n} entries"
    clear = ' <a class="link" href="?">Clear the filter</a>' if query.active else ""
    api = "api/v1/inventory" + (f"?{query.params()}" if query.active else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>tls-exporter</title><style>{_STYLE.replace("__NARROW__", str(NARROW))}</style></head>
<body>
<h1>tls-exporter {html.escape(__version__)}</h1>
{_banner(reload_failure)}
<p class="summary" id="summary">{of_all} as of {iso(now)}: {"".join(chips)}{clear}
<a class="link" href="{html.escape(metrics_path)}">Metrics</a>
<a class="link" href="{html.escape(api)}">This list as JSON</a>
<span id="refreshed"></span></p>
<form id="filters" role="search" method="get">
<input id="q" name="q" type="search" value="{html.escape(query.q)}"
 placeholder="Filter: name, address, problem ..." aria-label="Text filter">
<select id="owner" name="owner" aria-label="Owner">{owner_options}</select>
<select id="verdict" name="verdict" aria-label="Verdict">{verdict_options}</select>
<select id="protocol" name="protocol" aria-label="Protocol">{protocol_options}</select>{discovery}
<button type="submit" id="apply">Apply</button>
<span id="shown">{shown}</span> <button type="button" id="all"{"" if n > limit else " hidden"}>Show all</button>
</form>
<noscript><style>{_NOSCRIPT.replace("__NARROW__", str(NARROW))}</style></noscript>
<table id="inv"><thead><tr>{heads}</tr></thead>
<tbody>
{body}
</tbody></table>
<script>{_SCRIPT.replace("__LIMIT__", str(int(limit))).replace("__REFRESH__", f"{refresh:g}")}</script>
</body></html>
"""
