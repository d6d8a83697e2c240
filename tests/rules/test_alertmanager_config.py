"""The example Alertmanager configuration loads, routes by owner and inhibits what it should."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from e2e.harness import free_port, running, wait_ready

from .artefacts import ALERTMANAGER, alert_rules, load_yaml, require_tool

TEAMS = ("platform", "web-team", "payments", "hsm-team")


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    amtool = require_tool("amtool")
    return subprocess.run([amtool, *args], capture_output=True, text=True, check=False, cwd=ALERTMANAGER.parent)


def test_check_config() -> None:
    run = _amtool("check-config", ALERTMANAGER.name)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "SUCCESS" in out and "FAILED" not in out
    assert "1 templates" in out


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        *[((f"owner={t}", "severity=critical"), f"{t}-pager") for t in TEAMS],
        *[((f"owner={t}", "severity=warning"), t) for t in TEAMS],
        *[((f"owner={t}", "severity=info"), t) for t in TEAMS],
        (("owner=unknown-team", "severity=warning"), "platform"),
        (("alertname=TLSExporterDown", "severity=critical"), "platform-pager"),
        (("alertname=TLSExporterConfigReloadFailed", "severity=warning"), "platform"),
        # A step the exporter could not judge is for its operators, whoever owns the certificate.
        (("alertname=TLSAssessmentError", "severity=warning", "step=chain"), "platform"),
        (("alertname=AlertmanagerNotificationsFailed", "severity=warning", "integration=email"), "platform"),
        (("alertname=AlertmanagerNotificationsFailing", "severity=critical", "integration=webhook"), "platform-pager"),
    ],
)
def test_routes(labels: tuple[str, ...], receiver: str) -> None:
    run = _amtool("config", "routes", "test", f"--config.file={ALERTMANAGER.name}", *labels)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == receiver


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # Critical: the certificate's owner and the server's team are both paged.
        (("owner=payments", "server_owner=web-team", "severity=critical"), "web-team-pager,payments-pager"),
        (("owner=payments", "server_owner=hsm-team", "severity=critical"), "hsm-team-pager,payments-pager"),
        (("owner=web-team", "server_owner=platform", "severity=critical"), "platform-pager,web-team-pager"),
        (("owner=hsm-team", "server_owner=payments", "severity=critical"), "payments-pager,hsm-team-pager"),
        # An owner without a route of its own still reaches the server's team and the fallback pager.
        (("owner=pki-team", "server_owner=web-team", "severity=critical"), "web-team-pager,platform-pager"),
        # Below critical only the certificate's owner is told.
        (("owner=payments", "server_owner=web-team", "severity=warning"), "payments"),
        (("owner=payments", "server_owner=web-team", "severity=info"), "payments"),
    ],
)
def test_two_layer_ownership_routes(labels: tuple[str, ...], receivers: str) -> None:
    run = _amtool("config", "routes", "test", f"--config.file={ALERTMANAGER.name}", *labels)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == receivers


def test_server_owner_routes_continue_and_cover_every_team() -> None:
    config = load_yaml(ALERTMANAGER)
    layered = [r for r in config["route"]["routes"] if any("server_owner" in m for m in r.get("matchers", []))]
    assert {r["receiver"] for r in layered} == {f"{t}-pager" for t in TEAMS}
    assert all(r["continue"] is True and 'severity="critical"' in r["matchers"] for r in layered)


def test_snmp_receivers_post_to_the_exporter() -> None:
    config = load_yaml(ALERTMANAGER)
    receivers = {r["name"]: r for r in config["receivers"]}
    for name in ("hsm-team", "hsm-team-pager"):
        hooks = [h for h in receivers[name]["webhook_configs"] if h["url"].endswith("/alertmanager/snmp")]
        assert hooks == [{"url": "http://127.0.0.1:9632/alertmanager/snmp", "send_resolved": True}]


def test_template_renders() -> None:
    run = _amtool(
        "template",
        "render",
        "--template.glob=templates/*.tmpl",
        '--template.text={{ template "tls.subject" . }}|{{ template "tls.text" . }}|{{ template "tls.html" . }}',
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "<html>" in run.stdout


def _alertname_patterns(matchers: list[str]) -> list[str]:
    out = []
    for m in matchers:
        parsed = re.fullmatch(r'alertname(=~|=)"([^"]*)"', m.strip())
        if parsed:
            out.append(parsed.group(2))
    return out


def test_inhibition_names_real_alerts() -> None:
    names = {r["alert"] for r in alert_rules()}
    severity = {r["alert"]: r["labels"]["severity"] for r in alert_rules()}
    config = load_yaml(ALERTMANAGER)
    for rule in config["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            for pattern in _alertname_patterns(rule[side]):
                matched = {n for n in names if re.fullmatch(pattern, n)}
                assert matched, f"{side} {pattern!r} matches no alert of the rules"
    # The tier chain: expired > critical > warning > info, for the same target and address.
    tiers = [
        "TLSCertificateExpired",
        "TLSCertificateExpiryCritical",
        "TLSCertificateExpiryWarning",
        "TLSCertificateExpiryInfo",
    ]
    for i, higher in enumerate(tiers[:-1]):
        rules = [r for r in config["inhibit_rules"] if higher in _alertname_patterns(r["source_matchers"])]
        assert rules, higher
        targets = {
            n for r in rules for p in _alertname_patterns(r["target_matchers"]) for n in names if re.fullmatch(p, n)
        }
        assert targets == set(tiers[i + 1 :])
        assert all({"target", "address"} <= set(r["equal"]) for r in rules)
    # An unreachable endpoint hides the certificate alerts of the same target and address.
    endpoint = [n for n in names if n.startswith("TLSEndpoint")]
    rules = [
        r
        for r in config["inhibit_rules"]
        if any(re.fullmatch(p, endpoint[0]) for p in _alertname_patterns(r["source_matchers"]))
    ]
    assert len(rules) == 1 and {"target", "address"} <= set(rules[0]["equal"])
    sources = {n for p in _alertname_patterns(rules[0]["source_matchers"]) for n in names if re.fullmatch(p, n)}
    assert sources == set(endpoint)
    hidden = {n for p in _alertname_patterns(rules[0]["target_matchers"]) for n in names if re.fullmatch(p, n)}
    assert {"TLSCertificateExpiryCritical", "TLSCertificateHostnameMismatch", "TLSChainInvalid"} <= hidden
    assert not hidden & set(endpoint)
    assert severity["TLSCertificateExpired"] == "critical"


def test_receivers_are_loopback_webhooks_and_email() -> None:
    config = load_yaml(ALERTMANAGER)
    receivers = {r["name"]: r for r in config["receivers"]}
    for team in TEAMS:
        for name in (team, f"{team}-pager"):
            assert receivers[name]["email_configs"], name
            for hook in receivers[name]["webhook_configs"]:
                assert hook["url"].startswith("http://127.0.0.1:"), hook
    assert config["route"]["receiver"] == "platform"
    # One notification per certificate: grouped by target and address, not by alert name.
    assert {"owner", "target", "address"} <= set(config["route"]["group_by"])
    assert "alertname" not in config["route"]["group_by"]


def test_the_real_alertmanager_starts_on_the_example_without_a_warning(tmp_path: Path) -> None:
    """Debian's Alertmanager on the example as shipped (only its own addresses and storage made
    local): it becomes ready and logs no warning (a repeat_interval over its data retention did)."""
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    argv = [
        binary,
        f"--config.file={ALERTMANAGER}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: one instance
    ]
    with running("alertmanager", argv, tmp_path) as proc:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        log = proc.stdout() + proc.stderr()
    assert "Completed loading of configuration file" in log, log
    warnings = [line for line in log.splitlines() if re.search(r"level=(warn|error)", line, re.IGNORECASE)]
    assert warnings == [], "\n".join(warnings)
