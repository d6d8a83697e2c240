"""The alert rules load and pass their promtool unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .artefacts import ROOT, RULE_FILES, RULE_TESTS, SELF_ALERTS, alert_rules, load_yaml, require_tool


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_promtool_check_rules(path: Path) -> None:
    promtool = require_tool("promtool")
    run = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert f"SUCCESS: {len(alert_rules(path))} rules found" in out


def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    assert RULE_TESTS, "no promtool unit tests in alerting-rules/tests/"
    run = subprocess.run(
        [promtool, "test", "rules", *(p.name for p in RULE_TESTS)],
        cwd=RULE_TESTS[0].parent,
        capture_output=True,
        text=True,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "FAILED" not in out
    assert out.count("SUCCESS") == len(RULE_TESTS), out


def _cases() -> dict[str, list[list[dict[str, object]]]]:
    """alertname -> the exp_alerts of every evaluation of it in the unit tests."""
    cases: dict[str, list[list[dict[str, object]]]] = {}
    for path in RULE_TESTS:
        doc = load_yaml(path)
        assert len(doc["rule_files"]) == 1 and doc["rule_files"][0] in {f"../{p.name}" for p in RULE_FILES}, path
        for test in doc["tests"]:
            for ev in test.get("alert_rule_test", []):
                cases.setdefault(ev["alertname"], []).append(ev.get("exp_alerts") or [])
    return cases


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = _cases()
    names = {r["alert"] for r in alert_rules()}
    assert set(cases) <= names, f"tests name unknown alerts: {sorted(set(cases) - names)}"
    for name in sorted(names):
        evals = cases.get(name, [])
        assert any(evals), f"{name}: no unit test where it fires"
        assert any(not e for e in evals), f"{name}: no unit test where it stays quiet"


def test_firing_cases_pin_labels_and_annotations() -> None:
    for name, evals in _cases().items():
        for exp_alerts in evals:
            for exp in exp_alerts:
                labels = exp["exp_labels"]
                annotations = exp.get("exp_annotations") or {}
                assert isinstance(labels, dict) and isinstance(annotations, dict)
                assert labels.get("severity") in ("critical", "warning", "info"), (name, labels)
                assert set(annotations) == {"summary", "detail", "impact", "remedy", "runbook_url"}, (name, annotations)
                if name not in SELF_ALERTS:
                    for label in ("owner", "target", "protocol"):
                        assert label in labels, f"{name}: expected labels lack {label}: {labels}"


def test_tier_boundary_case() -> None:
    """6.9 days left is tier critical and pages showing the days; 7.1 days left is a warning."""
    text = (ROOT / "alerting-rules" / "tests" / "expiry.yml").read_text(encoding="utf-8")
    assert "expires in 6.9 days (tier critical)" in text
    assert "expires in 7.1 days (tier warning)" in text
    doc = load_yaml(ROOT / "alerting-rules" / "tests" / "expiry.yml")
    series = [(s["series"], s["values"]) for t in doc["tests"] for s in t["input_series"]]
    assert any(k.startswith("tls_cert_days_until_expiry") and v.startswith("6.9x") for k, v in series)
    assert any(k.startswith("tls_cert_days_until_expiry") and v.startswith("7.1x") for k, v in series)
