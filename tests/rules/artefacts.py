"""Shared helpers of the artefact tests: paths, tool lookup and PromQL metric-name extraction."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerting-rules" / "tls-exporter.rules.yml"
# Alertmanager's own failed notifications: a rule file of its own (it watches another program).
AM_RULES = ROOT / "alerting-rules" / "alertmanager.rules.yml"
RULE_FILES = (RULES, AM_RULES)
RULES_BOOK = ROOT / "docs" / "alerts.md"
RULE_TESTS = sorted((ROOT / "alerting-rules" / "tests").glob("*.yml"))
ALERTMANAGER = ROOT / "alertmanager" / "alertmanager.example.yml"
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
PROVISIONING = ROOT / "grafana" / "provisioning"

# Alerts about the exporter or Alertmanager themselves: they carry no owner, so they take
# Alertmanager's default route to the exporter's operators.
SELF_ALERTS = frozenset(
    {
        "TLSExporterDown",
        "TLSExporterConfigReloadFailed",
        "TLSDiscoveryRunFailed",
        "TLSDiscoveryRunOverran",
        "TLSAssessmentError",
        "AlertmanagerNotificationsFailed",
        "AlertmanagerNotificationsFailing",
    }
)
# Labels every other alert keeps from its series.
KEPT_LABELS = ("owner", "target", "address", "protocol")
# Names a rule or panel may use besides the exporter's own.
PROMETHEUS_NAMES = frozenset(
    {"up", "ALERTS", "ALERTS_FOR_STATE", "alertmanager_notifications_total", "alertmanager_notifications_failed_total"}
)
# Where every alert's runbook_url points: a section of docs/alerts.md (replace the base on deploy).
RUNBOOK_BASE = "https://tls-exporter.example.com/docs/alerts.md#"

PROMQL_FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_quantile",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "time",
        "timestamp",
        "vector",
        "year",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
AGGREGATIONS = frozenset(
    ["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"]
)
KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
    ]
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?")
TLS_NAME = re.compile(r"\btls_[a-z0-9_]+\b")


def require_tool(name: str) -> str:
    """The path of a Prometheus tool; the test FAILS without it (CI installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH: install the Debian packages prometheus and "
            "prometheus-alertmanager (apt-get install prometheus prometheus-alertmanager)"
        )
    return path


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana variables so that the expression is plain PromQL."""
    expr = re.sub(r"\$\{?__(?:range|interval|rate_interval)\}?", "1h", expr)
    return re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", expr)


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) used in a PromQL expression.

    Metric names inside strings (``{__name__=~"tls_a|tls_b"}``) count as metric names.
    """
    names = set(TLS_NAME.findall(" ".join(m.group(0) for m in _STRING.finditer(expr))))
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    functions: set[str] = set()
    for m in _IDENT.finditer(text):
        word, call = m.group(1), m.group(2)
        if word in KEYWORDS:
            continue
        if call:
            functions.add(word)
        else:
            names.add(word)
    return names, functions


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules(path: Path | None = None) -> list[dict[str, Any]]:
    """The alerting rules of one rule file, or of all of them."""
    rules: list[dict[str, Any]] = []
    for file in (path,) if path else RULE_FILES:
        for group in load_yaml(file)["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


def dashboards() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, json.loads(p.read_text(encoding="utf-8"))) for p in DASHBOARDS]


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def template_queries(text: str) -> list[str]:
    """PromQL of the `printf "..." ... | query` calls of an alert template, with %q filled in."""
    out = []
    for m in re.finditer(r'printf\s+("(?:[^"\\]|\\.)*")', text):
        out.append(json.loads(m.group(1)).replace("%q", '"x"'))
    return out
