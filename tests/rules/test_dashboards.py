"""Grafana dashboards parse, use the datasource variable everywhere and are templated on job, owner, target.

Two Grafana behaviours these tests pin (read in Grafana's source, packages/grafana-data):
- A variable in the `regex` format (`${target:regex}`) is escaped with a single backslash before
  `\\ ^ $ * + ? . ( ) | [ ] { } /` and several values become `(a|b)`; a custom "All" value is left
  as it is. Inside a PromQL double-quoted string `\\[` is an invalid escape, so the dashboards put
  the variable in a raw (backtick) string: target=~`${target:regex}` selects `[::1]:443` or a file
  path exactly, one or many. A bare `"$target"` is escaped by the Prometheus data source only for
  multi-value variables (and differently across versions): a single-value `[::1]:443` becomes a
  character class that matches nothing.
- Unit `d` renders 7 days and more as weeks ("2.86 week" for 20 days); the custom unit
  `suffix:days` renders the number with the panel's decimals and " days" ("20.0 days").
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .artefacts import PROVISIONING, TLS_NAME, dashboards, grafana_to_promql, load_yaml, panels, require_tool

DS_REF = "${datasource}"
VARIABLES = ("job", "owner", "target")
# The fixed day thresholds the dashboards used to colour by: they ignore per-profile tiers.
FIXED_DAY_STEPS = [0, 7, 30, 90]
TIERS = ("ok", "info", "warning", "critical", "expired")
DASHBOARDS = dashboards()
NAMES = [p.name for p, _ in DASHBOARDS]


def test_expected_dashboards() -> None:
    assert {"tls-overview.json", "tls-trends.json", "tls-target.json"} <= set(NAMES)
    uids = [d["uid"] for _, d in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("dash", [d for _, d in DASHBOARDS], ids=NAMES)
def test_templating(dash: dict[str, object]) -> None:
    variables = {v["name"]: v for v in dash["templating"]["list"]}  # type: ignore[index]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in VARIABLES:
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == DS_REF
        assert variables[name]["multi"] is True, f"{name}: several values can be selected"
        if variables[name]["includeAll"]:
            assert variables[name]["allValue"] == ".*", name


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric, matchers) of every `tls_...{...}` selector; braces inside strings do not end it."""
    out = []
    for m in re.finditer(r"\b(tls_[a-z0-9_]+)\{", expr):
        i, quote = m.end(), ""
        while i < len(expr):
            c = expr[i]
            if quote:
                quote = "" if c == quote else quote
            elif c in '"`':
                quote = c
            elif c == "}":
                break
            i += 1
        out.append((m.group(1), expr[m.end() : i]))
    return out


def test_selector_parser() -> None:
    assert selectors('sum(tls_a{job=~`${job:regex}`, x="}"}) / tls_b{}') == [
        ("tls_a", 'job=~`${job:regex}`, x="}"'),
        ("tls_b", ""),
    ]


def _all_exprs(dash: dict[str, object]) -> list[str]:
    exprs = [t["expr"] for p in panels(dash["panels"]) for t in p.get("targets", [])]  # type: ignore[arg-type]
    for var in dash["templating"]["list"]:  # type: ignore[index]
        query = var.get("query")
        exprs.append(query["query"] if isinstance(query, dict) else str(query or ""))
    return exprs


@pytest.mark.parametrize("dash", [d for _, d in DASHBOARDS], ids=NAMES)
def test_variables_select_exactly(dash: dict[str, object]) -> None:
    """Every use of job, owner, target is a regex-escaped raw string, never a bare "$var"."""
    for expr in _all_exprs(dash):
        for name in VARIABLES:
            uses = re.findall(rf"\$\{{?{name}\b[^`\"]*", expr)
            for use in uses:
                assert use == f"${{{name}:regex}}", f"{use!r} in {expr}"
            assert not re.search(rf"\w+\s*(=|!=|=~|!~)\s*\"\$\{{?{name}\b", expr), f"bare ${name} in {expr}"
            for m in re.finditer(rf"\$\{{{name}:regex\}}", expr):
                before, after = expr[: m.start()], expr[m.end() :]
                assert before.endswith(f"{name}=~`") and after.startswith("`"), expr


@pytest.mark.parametrize("dash", [d for _, d in DASHBOARDS], ids=NAMES)
def test_every_panel_uses_the_datasource_variable(dash: dict[str, object]) -> None:
    ids = []
    for p in panels(dash["panels"]):  # type: ignore[arg-type]
        ids.append(p["id"])
        assert p["datasource"]["uid"] == DS_REF, f"panel {p['id']} {p.get('title')!r}"
        assert "gridPos" in p
        if p["type"] == "row":
            continue
        assert p["targets"], f"panel {p['id']} {p.get('title')!r} has no query"
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DS_REF, f"panel {p['id']} target {t['refId']}"
            for metric, matchers in selectors(t["expr"]):
                # The exporter's own counters carry no owner or target.
                # Nor do the discovery scans' series (per scan, not per endpoint).
                wanted = ("job",) if metric.startswith(("tls_exporter_", "tls_discovery_")) else VARIABLES
                for var in wanted:
                    assert f"{var}=~`${{{var}:regex}}`" in matchers, (
                        f"panel {p['id']} {p.get('title')!r}: {metric} not filtered by {var}"
                    )
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_expression_parses(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = []
    for _, dash in DASHBOARDS:
        for p in panels(dash["panels"]):
            for t in p.get("targets", []):
                rules.append({"record": f"dashboard:panel_{len(rules)}", "expr": grafana_to_promql(t["expr"])})
    assert rules
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}), encoding="utf-8")
    run = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(rules)} rules found" in run.stdout


def test_contents() -> None:
    by_name = {p.name: d for p, d in DASHBOARDS}

    def exprs(name: str) -> str:
        return "\n".join(t["expr"] for p in panels(by_name[name]["panels"]) for t in p.get("targets", []))

    def types(name: str) -> set[str]:
        return {p["type"] for p in panels(by_name[name]["panels"])}

    overview = exprs("tls-overview.json")
    for metric in (
        "tls_cert_expiry_tier",
        "tls_handshake_outcome",
        "tls_file_outcome",
        "tls_cert_days_until_expiry",
        "tls_cert_info",
        "tls_security_grade",
        "tls_cert_key_weak",
        "tls_cert_signature_weak",
        "tls_protocol_accepted",
    ):
        assert metric in overview, metric
    assert {"state-timeline", "table", "bargauge", "stat"} <= types("tls-overview.json")
    trends = exprs("tls-trends.json")
    assert "tls_cert_days_until_expiry" in trends and "tls_cert_last_change_timestamp_seconds" in trends
    assert 'ALERTS{alertname=~"TLS.*"' in trends
    assert "tls_chain_cert_not_after_timestamp_seconds" in exprs("tls-target.json")
    assert TLS_NAME.search(exprs("tls-target.json"))
    assert "tls_protocol_below_minimum" in overview and "tls_assessment_error" in exprs("tls-target.json")
    assert "tls_exporter_errors_total" in trends
    assert "tls_discovery_endpoints" in trends and 'discovery!=""' in trends
    target = exprs("tls-target.json")
    for metric in ("tls_dane_tlsa_records", "tls_dane_match", "tls_dane_dnssec_validated", "tls_caa_permits_issuer"):
        assert metric in target, metric
    assert "tls_caa_info" in target


def _unit_props(p: dict[str, object]) -> list[tuple[str, object]]:
    """(field, unit or decimals) of a panel's defaults and overrides."""
    fc = p.get("fieldConfig") or {}
    out = [(k, v) for k, v in (fc.get("defaults") or {}).items() if k in ("unit", "decimals")]  # type: ignore[union-attr]
    for ov in fc.get("overrides") or []:  # type: ignore[union-attr]
        out += [(prop["id"], prop["value"]) for prop in ov["properties"] if prop["id"] in ("unit", "decimals")]
    return out


@pytest.mark.parametrize("dash", [d for _, d in DASHBOARDS], ids=NAMES)
def test_days_shown_as_days(dash: dict[str, object]) -> None:
    for p in panels(dash["panels"]):  # type: ignore[arg-type]
        units = dict(_unit_props(p))
        assert units.get("unit") != "d", f"panel {p['id']} {p.get('title')!r}: unit d shows weeks"
        exprs = " ".join(t["expr"] for t in p.get("targets", []))
        value_is_days = re.match(
            r"\s*(sort\()?(label_replace\(label_replace\(label_join\()?tls_(cert|chain)_days_until", exprs
        )
        if value_is_days and p["type"] != "table":
            assert units.get("unit") == "suffix:days" and units.get("decimals") == 1, (p["id"], units)
        if p["type"] == "table" and "tls_cert_days_until_expiry" in exprs:
            assert ("unit", "suffix:days") in _unit_props(p) and ("decimals", 1) in _unit_props(p), p["id"]


def _threshold_values(p: dict[str, object]) -> list[list[object]]:
    fc = p.get("fieldConfig") or {}
    found = [(fc.get("defaults") or {}).get("thresholds")]  # type: ignore[union-attr]
    found += [pr["value"] for ov in fc.get("overrides") or [] for pr in ov["properties"] if pr["id"] == "thresholds"]  # type: ignore[union-attr]
    return [[s["value"] for s in t["steps"]] for t in found if t]


@pytest.mark.parametrize("dash", [d for _, d in DASHBOARDS], ids=NAMES)
def test_colours_follow_the_tier_metric(dash: dict[str, object]) -> None:
    """No fixed 0/7/30/90-day thresholds; days coloured by the tier series of the same certificate."""
    for p in panels(dash["panels"]):  # type: ignore[arg-type]
        for values in _threshold_values(p):
            assert [v for v in values if v is not None] != FIXED_DAY_STEPS, f"panel {p['id']}: fixed day thresholds"
        exprs = " ".join(t["expr"] for t in p.get("targets", []))
        if p["type"] in ("stat", "bargauge") and "tls_cert_days_until_expiry" in exprs and "count(" not in exprs:
            assert "group_left (tier) (tls_cert_expiry_tier{" in exprs, p["id"]
            assert all("({{tier}})" in t["legendFormat"] for t in p["targets"]), p["id"]
            colours = {
                ov["matcher"]["options"]: ov["properties"][0]["value"]["fixedColor"]
                for ov in p["fieldConfig"]["overrides"]
                if ov["matcher"]["id"] == "byRegexp"
            }
            assert colours == {
                ".*\\(ok\\)$": "green",
                ".*\\(info\\)$": "blue",
                ".*\\(warning\\)$": "orange",
                ".*\\(critical\\)$": "red",
                ".*\\(expired\\)$": "dark-red",
            }, p["id"]


@pytest.mark.parametrize("dash", [d for _, d in DASHBOARDS], ids=NAMES)
def test_instance_is_shown(dash: dict[str, object]) -> None:
    """A /probe scrape without a target label is named by its instance, in tables and legends."""
    for p in panels(dash["panels"]):  # type: ignore[arg-type]
        for t in p.get("transformations", []):
            if t["id"] == "organize":
                assert "instance" not in t["options"].get("excludeByName", {}), p["id"]
        for t in p.get("targets", []):
            legend = t.get("legendFormat", "")
            assert "{{target}}" not in legend, f"panel {p['id']}: use {{{{display}}}} (target, else instance)"
            if "{{display}}" in legend:
                assert "label_join(" in t["expr"] and '"display", ";", "target", "instance"' in t["expr"], p["id"]


def test_overview_table_and_calendar() -> None:
    overview = next(d for p, d in DASHBOARDS if p.name == "tls-overview.json")
    by_title = {p.get("title"): p for p in panels(overview["panels"])}
    table = by_title["Every certificate"]
    refs = {t["refId"]: t["expr"] for t in table["targets"]}
    not_after = [
        r for r, e in refs.items() if e.startswith("tls_cert_not_after_timestamp_seconds{") and e.endswith("* 1000")
    ]
    assert len(not_after) == 1
    organize = [t for t in table["transformations"] if t["id"] == "organize"][-1]["options"]
    assert organize["renameByName"][f"Value #{not_after[0]}"] == "Not after"
    assert {
        "matcher": {"id": "byName", "options": "Not after"},
        "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
    } in table["fieldConfig"]["overrides"]
    calendar = by_title["Expiry calendar: certificates expiring per week (next 13 weeks)"]
    weeks = [t["expr"] for t in calendar["targets"]]
    assert len(weeks) == 13
    for k, expr in enumerate(weeks):
        assert expr.endswith(f" >= {7 * k} < {7 * (k + 1)}) or vector(0)"), expr
        assert expr.startswith("count(tls_cert_days_until_expiry{")
    assert calendar["targets"][0]["legendFormat"] == "week 1 (days 0-7)"


def test_provisioning() -> None:
    dash = load_yaml(PROVISIONING / "dashboards" / "tls-exporter.yml")
    assert dash["apiVersion"] == 1
    (provider,) = dash["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    ds = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("dash", [d for _, d in DASHBOARDS], ids=NAMES)
def test_tables_drop_the_metric_name_before_merging(dash: dict[str, object]) -> None:
    """Grafana's merge joins rows only where the fields they share agree: __name__ differs between
    the queries of one table, so it is dropped before the merge."""
    for p in panels(dash["panels"]):  # type: ignore[arg-type]
        ids = [t["id"] for t in p.get("transformations", [])]
        if "merge" in ids:
            first = p["transformations"][0]
            assert ids.index("merge") == 1 and first["id"] == "organize", p["id"]
            assert first["options"]["excludeByName"] == {"__name__": True}, p["id"]


def test_overview_rows_open_the_target_dashboard() -> None:
    """A target in the overview's table links to the per-target dashboard with every variable of
    that dashboard set: the data source, job and owner as chosen, the time range, and the row's
    target percent-encoded (a file path or `[::1]:443` survives the URL)."""
    overview = next(d for p, d in DASHBOARDS if p.name == "tls-overview.json")
    detail = next(d for p, d in DASHBOARDS if p.name == "tls-target.json")
    table = next(p for p in panels(overview["panels"]) if p.get("title") == "Every certificate")
    organize = [t for t in table["transformations"] if t["id"] == "organize"][-1]["options"]
    assert organize["renameByName"]["target"] == "Target"
    [override] = [o for o in table["fieldConfig"]["overrides"] if o["matcher"] == {"id": "byName", "options": "Target"}]
    [link] = next(p["value"] for p in override["properties"] if p["id"] == "links")
    path, _, query = link["url"].partition("?")
    assert path == f"/d/{detail['uid']}/tls-exporter-target"
    params = query.split("&")
    assert "${__url_time_range}" in params and "var-target=${__value.raw:percentencode}" in params
    names = [v["name"] for v in detail["templating"]["list"]]
    passed = {p[2:].removesuffix(":queryparam}") for p in params if p.endswith(":queryparam}")}
    assert passed | {"target"} == set(names), (passed, names)
    # Each variable passed through exists in the overview too (so ${name:queryparam} has a value).
    assert passed <= {v["name"] for v in overview["templating"]["list"]}
