"""Alarms that leave by e-mail and SNMP, for real: loopback TLS servers -> tls-exporter ->
Prometheus (the project's rules, every `for:` set to 0s) -> Alertmanager (the example
configuration: its routes, templates and receivers; the smarthost pointed at an SMTP sink of this
test, the SNMP webhook at the exporter) -> e-mail in the sink, and traps at Debian's snmptrapd.

| case      | leaf         | target owner | certificate owner (rule) | routed to (critical)                 |
|-----------|--------------|--------------|--------------------------|--------------------------------------|
| expired   | expired      | hsm-team     |                          | hsm-team-pager: mail + SNMP traps    |
| closed    | (refused)    | hsm-team     |                          | hsm-team-pager: mail + SNMP traps    |
| wrong     | wrong-host   | hsm-team     | payments                 | payments-pager (mail) and, two-layer |
|           |              |              |                          | ownership, hsm-team-pager (mail+SNMP)|
| warning   | expiring-20d | web-team     |                          | web-team (mail), no trap             |

Two-layer ownership needs the `server_owner` label on the series of a certificate whose owner
came from a rule; Prometheus sets it here by relabelling too (the same value the exporter
gives), so this test checks the routing whatever the exporter version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from notify.trapd import COMMUNITY_DEFAULT, ENGINE_ID, TrapDaemon, V3User, snmptrapd
from pki import PKI
from servers import LoopbackServers, closed_port
from smtp_sink import Mail, SmtpSink

from e2e.harness import (
    REPO,
    ManagedProcess,
    exporter_argv,
    free_port,
    http,
    require_binary,
    running,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e

RULES = REPO / "alerting-rules" / "tls-exporter.rules.yml"
AM_EXAMPLE = REPO / "alertmanager" / "alertmanager.example.yml"
LEAVES = {"expired": "expired", "wrong": "wrong-host", "warning": "expiring-20d"}
OWNERS = {"expired": "hsm-team", "closed": "hsm-team", "wrong": "hsm-team", "warning": "web-team"}
V3 = V3User("tls-noc", "SHA-256", "noc-auth-pass", "noc-priv-pass")
SNMP_ENV = {
    "E2E_SNMP_COMMUNITY": COMMUNITY_DEFAULT,
    "E2E_SNMP_AUTH": V3.auth_password,
    "E2E_SNMP_PRIV": V3.priv_password,
}


@dataclass
class Stack:
    workdir: Path
    addresses: dict[str, str]
    exporter: ManagedProcess
    prometheus_url: str
    prometheus: ManagedProcess
    alertmanager: ManagedProcess
    sink: SmtpSink
    trapd: TrapDaemon

    def case_of(self, target: str) -> str:
        return next((c for c, a in self.addresses.items() if a == target), f"<unknown {target}>")


def exporter_config(pki: PKI, addresses: dict[str, str], trap_port: int) -> str:
    lines = [
        "defaults: {interval: 2s, timeout: 2s, owner: platform}",
        f"profiles: {{default: {{trust: '{pki.root.cert_path}'}}}}",
        "certificate_owners:",
        "  - {match: {subject_cn: 'wrong.example.test'}, owner: payments}",
        "notifications:",
        "  snmp:",
        f"    - {{destination: '127.0.0.1:{trap_port}', version: v2c, community_env: E2E_SNMP_COMMUNITY}}",
        f"    - {{destination: '127.0.0.1:{trap_port}', version: v3, user: {V3.name}, auth_protocol: SHA-256,",
        "        auth_password_env: E2E_SNMP_AUTH, priv_protocol: AES, priv_password_env: E2E_SNMP_PRIV,",
        f"        engine_id: '0x{ENGINE_ID}'}}",
        "targets:",
    ]
    for case, address in addresses.items():
        lines.append(
            f"  - {{address: '{address}', protocol: tls, server_name: localhost, name: {case}, owner: {OWNERS[case]}}}"
        )
    return "\n".join(lines) + "\n"


def prometheus_config(rules: Path, exporter_port: int, am_port: int, wrong: str) -> str:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {
                "job_name": "tls-exporter",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                # The server's team of the certificate owned by `payments` through a rule.
                "metric_relabel_configs": [
                    {
                        "source_labels": ["target", "owner"],
                        "regex": re.escape(wrong) + ";payments",
                        "target_label": "server_owner",
                        "replacement": "hsm-team",
                    }
                ],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def rules_with_zero_for(dest: Path) -> Path:
    text, count = re.subn(r"(?m)^(\s+)for:\s*\S+\s*$", r"\1for: 0s", RULES.read_text())
    assert count >= 20
    dest.write_text(text)
    return dest


def alertmanager_config(dest: Path, smtp_port: int, exporter_port: int) -> Path:
    """The example as shipped, with the smarthost, the exporter's port and waits made local."""
    config = yaml.safe_load(AM_EXAMPLE.read_text())
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{smtp_port}"
    config["global"]["smtp_require_tls"] = False  # the sink offers no STARTTLS
    for receiver in config["receivers"]:
        hooks = []
        for hook in receiver.get("webhook_configs", []):
            if hook["url"].endswith("/alertmanager/snmp"):
                hooks.append({**hook, "url": hook["url"].replace(":9632/", f":{exporter_port}/")})
        # The other webhooks of the example point at a placeholder service: left out here.
        if hooks:
            receiver["webhook_configs"] = hooks
        else:
            receiver.pop("webhook_configs", None)

    def fast(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route or route is config["route"]:
                route[key] = "1s"
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    shutil.copytree(AM_EXAMPLE.parent / "templates", dest / "templates")
    path = dest / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def firing(stack: Stack) -> list[dict[str, str]]:
    resp = http(f"{stack.prometheus_url}/api/v1/alerts")
    return [a["labels"] for a in resp.json()["data"]["alerts"] if a["state"] == "firing"]


def annotations(stack: Stack) -> dict[tuple[str, str], dict[str, str]]:
    resp = http(f"{stack.prometheus_url}/api/v1/alerts")
    return {
        (a["labels"]["alertname"], a["labels"].get("target", "")): a["annotations"]
        for a in resp.json()["data"]["alerts"]
        if a["state"] == "firing"
    }


EXPECTED = {
    ("TLSCertificateExpired", "expired"),
    ("TLSEndpointConnectionRefused", "closed"),
    ("TLSCertificateHostnameMismatch", "wrong"),
    ("TLSCertificateExpiryWarning", "warning"),
}


@pytest.fixture(scope="module")
def stack(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = require_binary("prometheus", "prometheus")
    am_bin = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    amtool = require_binary("amtool", "prometheus-alertmanager")
    workdir = tmp_path_factory.mktemp("e2e-notify")
    with ExitStack() as es:
        servers = LoopbackServers()
        es.callback(servers.stop)
        addresses = {case: f"127.0.0.1:{servers.tls(pki[leaf].server_context())}" for case, leaf in LEAVES.items()}
        addresses["closed"] = f"127.0.0.1:{closed_port()}"
        sink = SmtpSink().start()
        es.callback(sink.stop)
        trapd = es.enter_context(snmptrapd(workdir / "trapd", community=COMMUNITY_DEFAULT, users=[V3]))

        config = workdir / "exporter.yml"
        config.write_text(exporter_config(pki, addresses, trapd.port))
        exporter_port = free_port()
        env = {**os.environ, **SNMP_ENV}
        exporter = es.enter_context(running("exporter", exporter_argv(config, exporter_port), workdir, env=env))
        wait_ready(f"http://127.0.0.1:{exporter_port}", exporter)

        am_port = free_port()
        prom_config = workdir / "prometheus.yml"
        rules = rules_with_zero_for(workdir / "rules.yml")
        prom_config.write_text(prometheus_config(rules, exporter_port, am_port, addresses["wrong"]))
        prom_port = free_port()
        prometheus = es.enter_context(
            running(
                "prometheus",
                [
                    prometheus_bin,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--rules.alert.resend-delay=100ms",
                ],
                workdir,
            )
        )
        prometheus_url = f"http://127.0.0.1:{prom_port}"
        wait_ready(prometheus_url, prometheus, timeout=60)
        # Alertmanager starts once every expected alert fires, so the first notification of each
        # certificate already lists all its conditions.
        stack = Stack(workdir, addresses, exporter, prometheus_url, prometheus, exporter, sink, trapd)
        wait_for(
            lambda: {(a["alertname"], stack.case_of(a.get("target", ""))) for a in firing(stack)} >= EXPECTED,
            timeout=90,
            what=f"alerts {sorted(EXPECTED)} firing",
            interval=0.5,
            proc=prometheus,
        )
        am_dir = workdir / "alertmanager"
        am_dir.mkdir()
        am_config = alertmanager_config(am_dir, sink.port, exporter_port)
        checked = subprocess.run([amtool, "check-config", str(am_config)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        am_argv = [
            am_bin,
            f"--config.file={am_config}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ]
        alertmanager = es.enter_context(running("alertmanager", am_argv, am_dir))
        wait_ready(f"http://127.0.0.1:{am_port}", alertmanager)
        stack.alertmanager = alertmanager
        yield stack


def _subject(mail: Mail) -> str:
    return str(mail.message["Subject"])


def mails_for(stack: Stack, recipient: str, case: str) -> list[Mail]:
    target = stack.addresses[case]
    return [m for m in stack.sink.snapshot() if recipient in m.recipients and target in _subject(m)]


def critical_conditions(stack: Stack, target: str) -> list[str]:
    """Alert names firing critical for ``target``, less the expiry tiers `expired` inhibits."""
    inhibited = {"TLSCertificateExpiryCritical", "TLSCertificateExpiryWarning", "TLSCertificateExpiryInfo"}
    names = {a["alertname"] for a in firing(stack) if a.get("target") == target and a["severity"] == "critical"}
    return sorted(names - inhibited if "TLSCertificateExpired" in names else names)


def test_one_mail_per_certificate_lists_every_condition(stack: Stack) -> None:
    expired = stack.addresses["expired"]

    # Alertmanager sends the group again when a condition joins it: the latest mail lists all.
    def latest_complete() -> tuple[Mail, list[str]] | None:
        mails = mails_for(stack, "hsm-oncall@example.com", "expired")
        conditions = critical_conditions(stack, expired)
        if mails and _subject(mails[-1]).startswith(f"[EXPIRED] {len(conditions)} condition"):
            return mails[-1], conditions
        return None

    mail, conditions = wait_for(
        latest_complete, timeout=180, what="the mail about the expired certificate", proc=stack.alertmanager
    )
    assert "TLSCertificateExpired" in conditions
    count = len(conditions)
    subject = _subject(mail)
    assert (
        subject == f"[EXPIRED] {count} condition{'s' if count > 1 else ''} on {expired} at {expired} (tls) [hsm-team]"
    )
    fired = annotations(stack)
    text = mail.text()
    for name in conditions:
        notes = fired[(name, expired)]
        assert f"* {notes['summary']} (critical)" in text, (name, text)
        assert f"Remedy:   {notes['remedy']}" in text, (name, text)
        assert f"Alert:    {name}," in text
    assert text.count("\n* ") == count
    dashboard = "http://grafana.example.com:3000/d/tls-exporter-target/tls-target?var-target="
    assert f"Dashboard:   {dashboard}{expired.replace(':', '%3A')}" in text
    assert "Renew the certificate now" in mail.html()
    assert mail.sender == "alertmanager@example.com"
    # One mail per certificate: the refused endpoint has its own.
    closed = wait_for(
        lambda: (m := mails_for(stack, "hsm-oncall@example.com", "closed")) and m[0],
        timeout=30,
        what="the mail about the refused endpoint",
        proc=stack.alertmanager,
    )
    assert _subject(closed).startswith("[CRITICAL] 1 condition on "), _subject(closed)
    assert "TLSEndpointConnectionRefused" in closed.text() and "TLSCertificateExpired" not in closed.text()
    # A warning goes to the team, not its pager, with the worst tier in the subject.
    warning = wait_for(
        lambda: (m := mails_for(stack, "web-team@example.com", "warning")) and m[0],
        timeout=30,
        what="the warning mail to web-team",
        proc=stack.alertmanager,
    )
    assert _subject(warning).startswith("[WARNING] 1 condition on "), _subject(warning)
    assert not mails_for(stack, "web-team-oncall@example.com", "warning")


def test_two_layer_ownership_pages_both_teams(stack: Stack) -> None:
    wrong = stack.addresses["wrong"]

    def mail_with_mismatch(recipient: str) -> Mail | None:
        mails = [m for m in mails_for(stack, recipient, "wrong") if "TLSCertificateHostnameMismatch" in m.text()]
        return mails[-1] if mails else None

    owner_mail = wait_for(
        lambda: mail_with_mismatch("payments-oncall@example.com"),
        timeout=180,  # a bound for a hang: a loaded CI machine took over a minute (see the trap test)
        what="the payments pager mail",
        proc=stack.alertmanager,
    )
    server_mail = wait_for(
        lambda: mail_with_mismatch("hsm-oncall@example.com"),
        timeout=180,  # a bound for a hang: a loaded CI machine took over a minute (see the trap test)
        what="the hsm-team pager mail (server owner)",
        proc=stack.alertmanager,
    )
    for mail in (owner_mail, server_mail):
        assert _subject(mail).endswith(f"on {wrong} at {wrong} (tls) [payments]"), _subject(mail)
        assert "TLSCertificateHostnameMismatch" in mail.text()
        assert "Owner:       payments; server run by hsm-team" in mail.text()


def test_snmp_route_sends_traps_end_to_end(stack: Stack) -> None:
    # What the example routes to hsm-team's receivers: its own alerts, and the critical alerts
    # of certificates on its servers (two-layer ownership).
    def routed() -> set[tuple[str, str]]:
        return {
            (a["alertname"], a.get("target", ""))
            for a in firing(stack)
            if a.get("owner") == "hsm-team" or (a.get("server_owner") == "hsm-team" and a["severity"] == "critical")
        }

    seen: dict[str, object] = {}  # the last state polled: what the failure message shows

    def traps_by_security() -> dict[str, set[tuple[str, str]]] | None:
        want = routed() - {("TLSCertificateExpiryCritical", stack.addresses["expired"])}
        got: dict[str, set[tuple[str, str]]] = {}
        seen.update(want=sorted(want), got=got)
        ours = set(stack.addresses.values())
        for trap in stack.trapd.traps():
            if trap.values.get("tlsAlertTarget") not in ours:
                continue  # UDP: a stale sender (another run's Alertmanager) may reach a reused port
            version = "v3" if "SNMP v3" in trap.security else "v2c"
            got.setdefault(version, set()).add((trap.values["tlsAlertName"], trap.values["tlsAlertTarget"]))
        # Both receivers get every trap, but not at the same instant: wait until they agree.
        complete = set(got) == {"v2c", "v3"} and all(want <= v for v in got.values())
        return got if complete and got["v2c"] == got["v3"] else None

    # Alert evaluation, Alertmanager's grouping, the webhook and two trap sends, each a few seconds
    # when idle; on a loaded CI machine one chain took over a minute. The bound is for a hang only.
    try:
        got = wait_for(traps_by_security, timeout=180, what="traps for hsm-team's alerts", proc=stack.alertmanager)
    except BaseException:
        print(f"last seen: {seen}\nexporter log:\n{stack.exporter.stderr()[-4000:]}")
        raise
    assert got["v2c"] == got["v3"]
    cases = {stack.case_of(t) for _, t in got["v2c"]}
    assert cases == {"expired", "closed", "wrong"}, got
    traps = [t for t in stack.trapd.traps() if t.values.get("tlsAlertTarget") in set(stack.addresses.values())]
    expired = next(t for t in traps if t.values["tlsAlertName"] == "TLSCertificateExpired" and "SNMP v3" in t.security)
    assert expired.oid == "TLS-EXPORTER-MIB::tlsAlertFiring"
    assert expired.values["tlsAlertSeverity"] == "critical(1)"
    assert expired.values["tlsAlertOwner"] == expired.values["tlsAlertServerOwner"] == "hsm-team"
    assert expired.values["tlsAlertAddress"] == stack.addresses["expired"]
    assert float(expired.values["tlsAlertDaysLeft"]) < 0  # from the exporter's own latest result
    assert expired.values["tlsAlertRemedy"].startswith("Renew the certificate now")
    mismatch = next(t for t in traps if t.values["tlsAlertName"] == "TLSCertificateHostnameMismatch")
    assert (mismatch.values["tlsAlertOwner"], mismatch.values["tlsAlertServerOwner"]) == ("payments", "hsm-team")
    # Nothing of web-team's reaches the NOC.
    assert not [t for t in traps if t.values["tlsAlertOwner"] == "web-team"]
    log = stack.exporter.stderr()
    assert f"SNMP trap sent to trap host 127.0.0.1:{stack.trapd.port}" in log
    assert "SNMP trap not sent" not in log
