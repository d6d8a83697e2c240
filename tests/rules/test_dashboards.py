"""Grafana dashboards parse, use the datasource variable everywhere and are templated on job, owner, target."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .artefacts import PROVISIONING, TLS_NAME, dashboards, grafana_to_promql, load_yaml, panels, require_tool

DS_REF = "${datasource}"
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
    for name in ("job", "owner", "target"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == DS_REF


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
            for m in re.finditer(r"\b(tls_[a-z0-9_]+)\{([^}]*)\}", t["expr"]):
                for var in ("$job", "$owner", "$target"):
                    assert var in m.group(2), f"panel {p['id']} {p.get('title')!r}: {m.group(1)} not filtered by {var}"
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


def test_provisioning() -> None:
    dash = load_yaml(PROVISIONING / "dashboards" / "tls-exporter.yml")
    assert dash["apiVersion"] == 1
    (provider,) = dash["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    ds = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http://127.0.0.1:")
