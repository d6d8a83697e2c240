"""Rules and dashboards name only metrics the exporter exposes (exporter.metrics.names)."""

from __future__ import annotations

import re

import pytest

from exporter.metrics.names import EXPOSED, HELP

from .artefacts import (
    PROMETHEUS_NAMES,
    PROMQL_FUNCTIONS,
    TLS_NAME,
    alert_rules,
    dashboards,
    grafana_to_promql,
    panels,
    promql_names,
    template_queries,
)

ALLOWED = EXPOSED | PROMETHEUS_NAMES


def _check(where: str, expr: str) -> None:
    names, functions = promql_names(expr)
    unknown = sorted(names - ALLOWED)
    assert not unknown, f"{where}: {unknown} not in exporter.metrics.names.EXPOSED: {expr}"
    bad = sorted(functions - PROMQL_FUNCTIONS)
    assert not bad, f"{where}: unknown PromQL functions {bad}: {expr}"


def test_extractor() -> None:
    names, functions = promql_names(
        'sum by (owner) (rate(tls_exporter_probes_total{outcome="x"}[5m])) > 1e3 '
        'and on (target) ALERTS or {__name__=~"tls_probe_success|tls_file_outcome"} offset 5m'
    )
    assert names == {"tls_exporter_probes_total", "ALERTS", "tls_probe_success", "tls_file_outcome"}
    assert functions == {"sum", "rate"}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_rule_metric_names(rule: dict[str, object]) -> None:
    _check(str(rule["alert"]), str(rule["expr"]))
    for key, text in (rule.get("annotations") or {}).items():  # type: ignore[union-attr]
        for query in template_queries(str(text)):
            _check(f"{rule['alert']} annotation {key}", query)
        prose = set(TLS_NAME.findall(str(text)))
        assert prose <= EXPOSED | set(HELP), (
            f"{rule['alert']} annotation {key} names {sorted(prose - EXPOSED - set(HELP))}"
        )


def _dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path, dash in dashboards():
        for p in panels(dash["panels"]):
            for t in p.get("targets", []):
                out.append((f"{path.name} panel {p['id']} {p.get('title')!r}", t["expr"]))
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                m = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
                assert m, f"{path.name} variable {var['name']}: {query}"
                out.append((f"{path.name} variable {var['name']}", m.group(1)))
    return out


@pytest.mark.parametrize(("where", "expr"), _dashboard_exprs())
def test_dashboard_metric_names(where: str, expr: str) -> None:
    _check(where, grafana_to_promql(expr))
