"""Every alert carries severity, the four annotations and a runbook link, keeps its owner, and waits `for:`."""

from __future__ import annotations

import re

import pytest

from .artefacts import AGGREGATIONS, AM_RULES, KEPT_LABELS, RULES_BOOK, RUNBOOK_BASE, SELF_ALERTS, alert_rules

RULES = alert_rules()
IDS = [r["alert"] for r in RULES]


def _aggregations(expr: str) -> list[tuple[str, str | None, set[str]]]:
    """(operator, 'by'|'without'|None, labels) for every aggregation, prefix or suffix clause."""
    found = []
    for m in re.finditer(r"\b(" + "|".join(sorted(AGGREGATIONS)) + r")\b\s*", expr):
        i = m.end()
        clause = re.match(r"(by|without)\s*\(([^)]*)\)\s*", expr[i:])
        if clause:
            found.append((m.group(1), clause.group(1), {x.strip() for x in clause.group(2).split(",") if x.strip()}))
            continue
        if i >= len(expr) or expr[i] != "(":
            continue  # a label or metric that merely contains the word
        depth = 0
        for j in range(i, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[j], 0)
            if depth == 0:
                break
        tail = re.match(r"\s*(by|without)\s*\(([^)]*)\)", expr[j + 1 :])
        if tail:
            found.append((m.group(1), tail.group(1), {x.strip() for x in tail.group(2).split(",") if x.strip()}))
        else:
            found.append((m.group(1), None, set()))
    return found


def test_alert_names_are_unique_and_prefixed() -> None:
    assert len(IDS) == len(set(IDS))
    am = {r["alert"] for r in alert_rules(AM_RULES)}
    assert all(name.startswith("Alertmanager") for name in am)
    others = [name for name in IDS if name not in am]
    assert all(name.startswith("TLS") for name in others), "dashboards select ALERTS{alertname=~'TLS.*'}"


@pytest.mark.parametrize("rule", RULES, ids=IDS)
def test_labels_and_annotations(rule: dict[str, object]) -> None:
    labels = rule.get("labels") or {}
    assert isinstance(labels, dict)
    assert labels.get("severity") in ("critical", "warning", "info")
    assert "owner" not in labels, "owner comes from the series (certificate > target > default owner)"
    annotations = rule.get("annotations") or {}
    assert isinstance(annotations, dict)
    for key in ("summary", "detail", "impact", "remedy"):
        assert str(annotations.get(key, "")).strip(), f"annotation {key} missing"
    assert set(annotations) == {"summary", "detail", "impact", "remedy", "runbook_url"}


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


@pytest.mark.parametrize("rule", RULES, ids=IDS)
def test_runbook_url_points_at_its_section(rule: dict[str, object]) -> None:
    url = str(rule["annotations"]["runbook_url"])  # type: ignore[index]
    assert url == RUNBOOK_BASE + str(rule["alert"]).lower()
    anchors = _anchors(RULES_BOOK.read_text(encoding="utf-8"))
    assert url.removeprefix(RUNBOOK_BASE) in anchors, f"docs/alerts.md has no section for {rule['alert']}"


def test_runbook_sections_say_what_impact_and_fix() -> None:
    """Every alert's section of docs/alerts.md has the three parts on-call reads."""
    text = RULES_BOOK.read_text(encoding="utf-8")
    for name in IDS:
        m = re.search(rf"^### {name}\n(.*?)(?=^##)", text + "\n##", re.S | re.M)
        assert m, f"no section ### {name}"
        section = m.group(1)
        for part in ("**Means:**", "**Impact:**", "**Fix:**"):
            assert part in section, f"{name}: section lacks {part}"


@pytest.mark.parametrize("rule", RULES, ids=IDS)
def test_waits_before_firing(rule: dict[str, object]) -> None:
    assert re.fullmatch(r"\d+[smhd]", str(rule.get("for", ""))), "a lost probe must not page: set for:"
    assert str(rule["for"]) not in ("0s", "0m", "0h")


@pytest.mark.parametrize(
    "rule", [r for r in RULES if r["alert"] not in SELF_ALERTS], ids=[i for i in IDS if i not in SELF_ALERTS]
)
def test_expression_keeps_owner_and_target_labels(rule: dict[str, object]) -> None:
    expr = str(rule["expr"])
    assert "absent(" not in expr, "absent() drops every label"
    assert not re.search(r"label_(replace|join)\s*\([^,]*,\s*\"(owner|target|address|protocol)\"", expr)
    per_target = "tls_target_distinct_certificates" in expr
    for op, kind, labels in _aggregations(expr):
        kept = [x for x in KEPT_LABELS if not (per_target and x == "address")]
        if kind == "without":
            assert not labels & set(KEPT_LABELS), f"{op} without ({labels}) drops a kept label"
        else:
            missing = [x for x in kept if x not in labels]
            assert not missing, f"{op} {'by (' + ', '.join(sorted(labels)) + ')' if kind else ''} drops {missing}"


def test_aggregation_parser() -> None:
    assert _aggregations("sum(x)") == [("sum", None, set())]
    assert _aggregations("sum by (owner, target) (x)") == [("sum", "by", {"owner", "target"})]
    assert _aggregations('max(x{a="b"}) without (issue)') == [("max", "without", {"issue"})]
    assert _aggregations("tls_probe_success == 0") == []


def test_expiry_alerts_fire_from_the_tier_state_set() -> None:
    by_name = {r["alert"]: r for r in RULES}
    for name, tier, severity in [
        ("TLSCertificateExpired", "expired", "critical"),
        ("TLSCertificateExpiryCritical", "critical", "critical"),
        ("TLSCertificateExpiryWarning", "warning", "warning"),
        ("TLSCertificateExpiryInfo", "info", "info"),
    ]:
        assert by_name[name]["expr"] == f'tls_cert_expiry_tier{{tier="{tier}"}} == 1'
        assert by_name[name]["labels"]["severity"] == severity
        assert "tls_cert_days_until_expiry" in by_name[name]["annotations"]["detail"]


def test_docs_table_lists_every_alert() -> None:
    text = RULES_BOOK.read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in text.splitlines()
        if line.startswith(("| `TLS", "| `Alertmanager"))
    }
    assert set(rows) == set(IDS)
    for rule in RULES:
        assert f"| {rule['labels']['severity']} | {rule['for']} |" in rows[rule["alert"]], rule["alert"]
