"""The whole chain for real: loopback TLS servers -> tls-exporter -> Prometheus (the project's alert
rules with every `for:` set to 0s) -> Alertmanager (the example configuration, receivers turned into
webhooks to a loopback HTTP server of this test) -> webhook deliveries. Prometheus also scrapes
Alertmanager, and one receiver's webhook answers 500, so the rules on Alertmanager's own failed
notifications fire for real.

Also every PromQL expression of every Grafana dashboard is sent to the real Prometheus.

Fixtures served (each by its own loopback TLS server) and what they must raise:

| case         | leaf            | configured owner | expected alerts                                      |
|--------------|-----------------|------------------|------------------------------------------------------|
| good         | good            | web-team         | none                                                 |
| expired      | expired         | web-team         | TLSCertificateExpired (critical)                      |
| critical     | expiring-5d     | payments         | TLSCertificateExpiryCritical (critical)              |
| warning      | expiring-20d    | web-team         | TLSCertificateExpiryWarning (warning); through the   |
|              |                 |                  | /probe job under the `strict` profile it is critical |
| wrong-host   | wrong-host      | hsm-team         | TLSCertificateHostnameMismatch (critical), owner     |
|              |                 |                  | `payments` by the certificate_owners rule            |
| weak-key     | rsa-1024        | (default owner)  | TLSCertificateWeakKey (warning), owner `platform`    |
| closed       | nothing listens | hsm-team         | TLSEndpointConnectionRefused (critical)              |
| ipv6         | good, on [::1]  | web-team         | none                                                 |
| file         | not-yet-valid,  | hsm-team         | TLSCertificateNotYetValid (critical)                 |
|              | a file          |                  |                                                      |

The IPv6 target and the file (its path has spaces, parentheses, `+` and dots) prove that the
dashboards select a target exactly, alone or with others.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from pki import PKI
from servers import LoopbackServers, closed_port

from e2e.harness import (
    REPO,
    ManagedProcess,
    exporter_argv,
    free_port,
    http,
    query_url,
    require_binary,
    running,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e

EXPORTER_JOB = "tls-exporter"
PROBE_JOB = "tls-probe"
RULES = REPO / "alerting-rules" / "tls-exporter.rules.yml"
AM_RULES = REPO / "alerting-rules" / "alertmanager.rules.yml"
ALERTMANAGER_JOB = "alertmanager"
# The receiver whose webhook fails (HTTP 500): its notifications are recorded, then counted failed.
FAILING_RECEIVER = "hsm-team-pager"
AM_EXAMPLE = REPO / "alertmanager" / "alertmanager.example.yml"
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))

# (alertname, case, job) -> labels the alert must carry besides target/address/protocol.
EXPECTED: dict[tuple[str, str, str], dict[str, str]] = {
    ("TLSCertificateExpired", "expired", EXPORTER_JOB): {"severity": "critical", "owner": "web-team"},
    ("TLSCertificateExpiryCritical", "critical", EXPORTER_JOB): {"severity": "critical", "owner": "payments"},
    ("TLSCertificateExpiryWarning", "warning", EXPORTER_JOB): {"severity": "warning", "owner": "web-team"},
    # The same certificate scraped through /probe with profile=strict (critical below 30 days);
    # owner, target, address and protocol come from Prometheus' relabelling.
    ("TLSCertificateExpiryCritical", "warning", PROBE_JOB): {"severity": "critical", "owner": "web-team"},
    ("TLSCertificateHostnameMismatch", "wrong-host", EXPORTER_JOB): {"severity": "critical", "owner": "payments"},
    ("TLSCertificateWeakKey", "weak-key", EXPORTER_JOB): {"severity": "warning", "owner": "platform"},
    ("TLSEndpointConnectionRefused", "closed", EXPORTER_JOB): {"severity": "critical", "owner": "hsm-team"},
    ("TLSCertificateNotYetValid", "file", EXPORTER_JOB): {"severity": "critical", "owner": "hsm-team"},
}

# Alerts that may fire for these fixtures, depending on how the exporter classifies the chain
# (allowed, not required):
# - TLSChainInvalid: an RSA-1024 leaf (OpenSSL's verification at Debian's security level rejects
#   keys below 2048 bits) does not verify for a strict client. An expired leaf (chain issue
#   `expired`) and a leaf that does not cover the server name (`hostname_mismatch`) have alerts of
#   their own, so TLSChainInvalid fires for them only while the exporter reports another issue too.
# - TLSSecurityGradeLow: T and M grades fire only with a low score, C to F always.
# Not allowed, and not firing when the expected set is complete: TLSExporterDown's `absent(up)`
# holds at Prometheus' first evaluation, before the first scrape; with `for: 0s` it fires for that
# one evaluation and is resolved (Alertmanager may get it as resolved) long before every expected
# alert fires, since the /probe job scrapes every 2 s and the exporter probes every 2 s.
ALLOWED: dict[tuple[str, str, str], dict[str, str]] = {
    ("TLSChainInvalid", "expired", EXPORTER_JOB): {"severity": "critical", "owner": "web-team"},
    ("TLSChainInvalid", "wrong-host", EXPORTER_JOB): {"severity": "critical", "owner": "payments"},
    ("TLSChainInvalid", "weak-key", EXPORTER_JOB): {"severity": "critical", "owner": "platform"},
    ("TLSSecurityGradeLow", "expired", EXPORTER_JOB): {"severity": "warning", "owner": "web-team"},
    ("TLSSecurityGradeLow", "wrong-host", EXPORTER_JOB): {"severity": "warning", "owner": "payments"},
    ("TLSSecurityGradeLow", "weak-key", EXPORTER_JOB): {"severity": "warning", "owner": "platform"},
}

LEAVES = {
    "good": "good",
    "expired": "expired",
    "critical": "expiring-5d",
    "warning": "expiring-20d",
    "wrong-host": "wrong-host",
    "weak-key": "rsa-1024",
}
IPV6_LEAF = "good"
FILE_LEAF = "not-yet-valid"
OWNERS = {
    "good": "web-team",
    "expired": "web-team",
    "critical": "payments",
    "warning": "web-team",
    "wrong-host": "hsm-team",
    "closed": "hsm-team",
    "ipv6": "web-team",
    "file": "hsm-team",
}  # weak-key: the default owner


@dataclass
class Webhook:
    """A loopback HTTP server recording every Alertmanager notification (receiver path, payload)."""

    server: ThreadingHTTPServer
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def snapshot(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.received)


def start_webhook() -> Webhook:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.lock:
                hook.received.append((self.path, json.loads(body)))
            self.send_response(500 if self.path.strip("/") == FAILING_RECEIVER else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = False  # server_close() joins every request's thread: no connection outlives it
    hook = Webhook(server)
    threading.Thread(target=server.serve_forever, name="webhook", daemon=True).start()
    return hook


@dataclass
class Stack:
    workdir: Path
    addresses: dict[str, str]  # case -> 127.0.0.1:port, [::1]:port, or the file's path
    exporter: ManagedProcess
    exporter_url: str
    prometheus: ManagedProcess
    prometheus_url: str
    alertmanager: ManagedProcess
    am_url: str
    webhook: Webhook

    def case_of(self, target: str) -> str:
        return next((c for c, a in self.addresses.items() if a == target), f"<unknown {target}>")


def exporter_config(pki: PKI, addresses: dict[str, str]) -> str:
    root = pki.root.cert_path
    lines = [
        "defaults: {interval: 2s, timeout: 2s, owner: platform}",
        "profiles:",
        f"  default: {{trust: '{root}', max_validity: 398d}}",
        f"  strict: {{trust: '{root}', expiry_tiers: {{info: 90d, warning: 60d, critical: 30d}}}}",
        "certificate_owners:",
        "  - {match: {subject_cn: 'wrong.example.test'}, owner: payments}",
        "probe: {allow: ['*', '127.0.0.0/8']}",
        "targets:",
    ]
    for case, address in addresses.items():
        if case == "file":
            continue
        owner = f", owner: {OWNERS[case]}" if case in OWNERS else ""
        lines.append(f"  - {{address: '{address}', protocol: tls, server_name: localhost, name: {case}{owner}}}")
    lines += ["files:", f"  - {{path: '{addresses['file']}', name: file, owner: {OWNERS['file']}}}"]
    return "\n".join(lines) + "\n"


def rules_with_zero_for(source: Path, dest: Path) -> Path:
    text = source.read_text()
    rewritten, count = re.subn(r"(?m)^(\s+)for:\s*\S+\s*$", r"\1for: 0s", text)
    assert count == text.count("- alert:"), f"expected a `for:` on every rule, rewrote {count}"
    dest.write_text(rewritten)
    return dest


def prometheus_config(rules: list[Path], exporter_port: int, am_url: str, addresses: dict[str, str]) -> str:
    am_address = am_url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(r) for r in rules],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_address]}]}]},
        "scrape_configs": [
            {"job_name": EXPORTER_JOB, "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
            {"job_name": ALERTMANAGER_JOB, "static_configs": [{"targets": [am_address]}]},
            {
                # The multi-target pattern (README, scrape configuration): the target is a /probe parameter.
                "job_name": PROBE_JOB,
                "scrape_interval": "2s",
                "scrape_timeout": "2s",
                "metrics_path": "/probe",
                "params": {"protocol": ["tls"], "server_name": ["localhost"]},
                "static_configs": [
                    {"targets": [addresses["good"]], "labels": {"owner": "web-team", "protocol": "tls"}},
                    {
                        "targets": [addresses["warning"]],
                        "labels": {"owner": "web-team", "protocol": "tls", "__param_profile": "strict"},
                    },
                ],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"source_labels": ["__param_target"], "target_label": "target"},
                    {"source_labels": ["__param_target"], "target_label": "address"},
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{exporter_port}"},
                ],
            },
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


# Alertmanager runs from before the first alert fires, so every alert reaches it young: a new
# group then waits group_wait before its first notification, and the inhibitor has seen the
# critical alert (from the /probe job) before the warning one (from the exporter job) could be
# sent. The two fire within a few seconds of each other (2 s probe and scrape intervals);
# 10 s leaves room on a loaded machine. (A group whose first alert is already older than
# group_wait is flushed at once: that was the flake when Alertmanager started last.)
GROUP_WAIT = "10s"


def alertmanager_config(dest_dir: Path, hook_port: int) -> Path:
    """The example configuration, receivers turned into webhooks to the test, waits cut short."""
    config = yaml.safe_load(AM_EXAMPLE.read_text())
    receivers = []
    for receiver in config["receivers"]:
        name = receiver["name"]
        receivers.append(
            {"name": name, "webhook_configs": [{"url": f"http://127.0.0.1:{hook_port}/{name}", "send_resolved": True}]}
        )
    config["receivers"] = receivers

    def fast(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", GROUP_WAIT), ("group_interval", "1s")):
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    shutil.copytree(AM_EXAMPLE.parent / "templates", dest_dir / "templates")
    path = dest_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_alertmanager(stack: ExitStack, workdir: Path, hook_port: int) -> tuple[ManagedProcess, str]:
    am_bin = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    amtool = require_binary("amtool", "prometheus-alertmanager")
    am_dir = workdir / "alertmanager"
    am_dir.mkdir()
    config = alertmanager_config(am_dir, hook_port)
    checked = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    argv = [
        am_bin,
        f"--config.file={config}",
        f"--storage.path={am_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=debug",
    ]
    am = stack.enter_context(running("alertmanager", argv, am_dir))
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, am)
    return am, url


@pytest.fixture(scope="module")
def stack(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    workdir = tmp_path_factory.mktemp("e2e-prometheus")
    with ExitStack() as stack:
        servers = LoopbackServers()
        stack.callback(servers.stop)
        addresses = {case: f"127.0.0.1:{servers.tls(pki[leaf].server_context())}" for case, leaf in LEAVES.items()}
        addresses["closed"] = f"127.0.0.1:{closed_port()}"
        addresses["ipv6"] = f"[::1]:{servers.tls(pki[IPV6_LEAF].server_context(), host='::1')}"
        cert_file = workdir / "certs (prod)" / "not-yet-valid+1.pem"
        cert_file.parent.mkdir()
        shutil.copyfile(pki[FILE_LEAF].cert_path, cert_file)
        addresses["file"] = str(cert_file)

        hook = start_webhook()
        stack.callback(hook.server.server_close)
        stack.callback(hook.server.shutdown)

        config = workdir / "exporter.yml"
        config.write_text(exporter_config(pki, addresses))
        exporter_port = free_port()
        exporter = stack.enter_context(running("exporter", exporter_argv(config, exporter_port), workdir))
        exporter_url = f"http://127.0.0.1:{exporter_port}"
        wait_ready(exporter_url, exporter)

        # Before Prometheus, so that it receives every alert from its first evaluation on.
        alertmanager, am_url = start_alertmanager(stack, workdir, hook.port)

        rules = [
            rules_with_zero_for(RULES, workdir / "rules.yml"),
            rules_with_zero_for(AM_RULES, workdir / "alertmanager.rules.yml"),
        ]
        prom_config = workdir / "prometheus.yml"
        prom_config.write_text(prometheus_config(rules, exporter_port, am_url, addresses))
        checked = subprocess.run(
            [promtool, "check", "config", str(prom_config)], capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

        prom_port = free_port()
        prometheus = stack.enter_context(
            running(
                "prometheus",
                [
                    prometheus_bin,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    # Resend every firing alert at every evaluation (default 1m), so an alert whose
                    # first delivery to Alertmanager failed is not late by a minute.
                    "--rules.alert.resend-delay=100ms",
                ],
                workdir,
            )
        )
        prometheus_url = f"http://127.0.0.1:{prom_port}"
        wait_ready(prometheus_url, prometheus, timeout=60)
        yield Stack(workdir, addresses, exporter, exporter_url, prometheus, prometheus_url, alertmanager, am_url, hook)


def prom_query(stack: Stack, promql: str) -> dict[str, Any]:
    resp = http(query_url(stack.prometheus_url, promql))
    doc = resp.json()
    assert resp.status == 200 and doc["status"] == "success", f"{promql!r}: {resp.status} {resp.body}"
    return doc["data"]


def firing_alerts(stack: Stack) -> dict[tuple[str, str, str], dict[str, str]]:
    resp = http(f"{stack.prometheus_url}/api/v1/alerts")
    assert resp.status == 200, resp
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for alert in resp.json()["data"]["alerts"]:
        if alert["state"] != "firing" or alert["labels"].get("job") == ALERTMANAGER_JOB:
            continue  # Alertmanager's own alerts: test_alertmanager_failed_notifications
        labels = alert["labels"]
        key = (labels["alertname"], stack.case_of(labels.get("target", "")), labels.get("job", ""))
        assert key not in out, f"two firing alerts for {key}: {out[key]} and {labels}"
        out[key] = labels
    return out


def wait_for_expected_alerts(stack: Stack) -> dict[tuple[str, str, str], dict[str, str]]:
    def ready() -> dict[tuple[str, str, str], dict[str, str]] | None:
        firing = firing_alerts(stack)
        return firing if set(EXPECTED) <= set(firing) else None

    return wait_for(
        ready, timeout=90, what=f"alerts {sorted(EXPECTED)} firing in Prometheus", interval=0.5, proc=stack.prometheus
    )


def test_scrape_targets_up(stack: Stack) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        result = prom_query(stack, "up")["result"]
        return result if len(result) == 4 and all(r["value"][1] == "1" for r in result) else None

    ups = wait_for(all_up, timeout=60, what="4 scrape targets up", proc=stack.prometheus)
    assert {(r["metric"]["job"], r["metric"]["instance"]) for r in ups} == {
        (EXPORTER_JOB, stack.exporter_url.removeprefix("http://")),
        (ALERTMANAGER_JOB, stack.am_url.removeprefix("http://")),
        (PROBE_JOB, stack.addresses["good"]),
        (PROBE_JOB, stack.addresses["warning"]),
    }
    # /probe output carries no target labels of its own: nothing was renamed to exported_*.
    probe_series = prom_query(stack, f'{{job="{PROBE_JOB}", __name__=~"tls_.*"}}')["result"]
    assert probe_series, "no tls_* series from the /probe job"
    for series in probe_series:
        assert not [k for k in series["metric"] if k.startswith("exported_")], series["metric"]
    success = prom_query(stack, f'tls_probe_success{{job="{PROBE_JOB}"}}')["result"]
    assert {r["metric"]["instance"]: r["value"][1] for r in success} == {
        stack.addresses["good"]: "1",
        stack.addresses["warning"]: "1",
    }


def test_alerts_fire_with_labels(stack: Stack) -> None:
    firing = wait_for_expected_alerts(stack)
    for key, want in EXPECTED.items():
        labels = firing[key]
        alertname, case, job = key
        address = stack.addresses[case]
        assert labels["alertname"] == alertname
        assert labels["severity"] == want["severity"], (key, labels)
        assert labels["owner"] == want["owner"], (key, labels)
        assert labels["target"] == address, (key, labels)
        if case == "file":
            assert "address" not in labels and labels["protocol"] == "file", (key, labels)
            assert labels["position"] == "0", (key, labels)
        else:
            assert labels["address"] == address, (key, labels)
            assert labels["protocol"] == "tls", (key, labels)
        assert labels["job"] == job, (key, labels)
        if job == EXPORTER_JOB:
            assert labels["name"] == case, (key, labels)
    unexpected = {k: v for k, v in firing.items() if k not in EXPECTED and k not in ALLOWED}
    if unexpected:
        # Every `for:` is 0s here, so one scrape slower than its 1 s timeout on a loaded machine fires
        # TLSExporterDown until the next scrape. An unexpected alert counts when it still fires a few
        # scrapes later (a real one stays; the exporter answering again ends that blip).
        time.sleep(5)
        now = firing_alerts(stack)
        unexpected = {k: v for k, v in unexpected.items() if k in now}
    shown = {" ".join(k): v for k, v in unexpected.items()}  # (alertname, case, job): JSON keys are text
    assert not unexpected, f"unexpected alerts firing: {json.dumps(shown, indent=1, default=str)}"
    for key in set(firing) & set(ALLOWED):
        for label, value in ALLOWED[key].items():
            assert firing[key][label] == value, (key, firing[key])

    # The same through the ALERTS series the dashboards read.
    alerts_series = prom_query(stack, f'ALERTS{{alertstate="firing", job!="{ALERTMANAGER_JOB}"}}')["result"]
    assert {
        (r["metric"]["alertname"], stack.case_of(r["metric"]["target"]), r["metric"]["job"]) for r in alerts_series
    } == set(firing)


# -- dashboards ---------------------------------------------------------------------------------


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_exprs() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) for every PromQL target of every panel."""
    out = []
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        for panel in _panels(doc.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((path.name, panel.get("title", ""), target["expr"]))
    return out


ALL = None  # the "All" option: the dashboards' custom all value `.*`
BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1m", "__range_s": "60", "__interval_ms": "60000"}


def grafana_regex(values: list[str] | None) -> str:
    """What Grafana puts in place of `${var:regex}`: its escapeRegex (a backslash before
    \\ ^ $ * + ? . ( ) | [ ] { } /), `(a|b)` for several values, the custom all value as it is."""
    if values is None:
        return ".*"
    escaped = [re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, **selected: list[str] | None) -> str:
    """Grafana's interpolation of a panel query for a selection (default: the exporter's job, all
    owners, all targets)."""
    selection: dict[str, list[str] | None] = {"job": [EXPORTER_JOB], "owner": ALL, "target": ALL, **selected}
    for name, values in selection.items():
        expr = expr.replace(f"${{{name}:regex}}", grafana_regex(values))
    for name, value in sorted(BUILTINS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    expr = re.sub(r"\$\{?datasource\}?", "", expr)
    assert "$" not in expr.replace('"$1"', ""), f"unsubstituted variable in {expr!r}"
    return expr


def test_grafana_regex() -> None:
    assert grafana_regex(["[::1]:443"]) == "\\[::1\\]:443"
    assert grafana_regex(["/a (b)/c+1.pem", "x"]) == "(\\/a \\(b\\)\\/c\\+1\\.pem|x)"
    assert grafana_regex(ALL) == ".*"


def test_dashboard_variable_queries(stack: Stack) -> None:
    wait_for_expected_alerts(stack)
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        for variable in doc.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
            assert m, f"{path.name}: variable {variable['name']}: unexpected query {query!r}"
            selector, label = substitute(m.group(1)), m.group(2)
            resp = http(
                f"{stack.prometheus_url}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": selector})
            )
            assert resp.status == 200, (path.name, query, resp.body)
            values = resp.json()["data"]
            assert values, f"{path.name}: variable {variable['name']} ({query}) has no values"
            if label == "job":
                assert EXPORTER_JOB in values
            if label == "owner":
                assert {"web-team", "payments", "hsm-team", "platform"} <= set(values), values
            if label == "target":
                assert {stack.addresses["ipv6"], stack.addresses["file"]} <= set(values), values


@pytest.mark.parametrize(
    ("dashboard", "title", "expr"),
    dashboard_exprs(),
    ids=[f"{d}:{t}:{i}" for i, (d, t, _) in enumerate(dashboard_exprs())],
)
def test_dashboard_expression_parses(stack: Stack, dashboard: str, title: str, expr: str) -> None:
    prom_query(stack, substitute(expr))


# Panel queries that show nothing for these fixtures by design: (dashboard, panel, metric) -> why.
EMPTY_BY_DESIGN = {
    ("tls-overview.json", "Protocol versions below the profile's minimum", "tls_protocol_below_minimum"): (
        "no fixture server accepts a version below its profile's minimum (TLSv1.2)"
    ),
    ("tls-overview.json", "Weak keys and signatures", "tls_cert_signature_weak"): (
        "no fixture is signed with a weak hash (the RSA-1024 leaf fills the panel's weak-key query)"
    ),
    ("tls-target.json", "Chain issues, OCSP status, expectation, steps not judged", "tls_cert_expected_match"): (
        "no target configures `expect`"
    ),
    ("tls-target.json", "Chain issues, OCSP status, expectation, steps not judged", "tls_assessment_error"): (
        "no step fails on the exporter's side"
    ),
    ("tls-trends.json", "Certificates changed in the selected range", "tls_cert_last_change_timestamp_seconds"): (
        "no certificate changes while the test runs"
    ),
    **{
        (dashboard, title, metric): (
            "no discovery scan in this world (its endpoints would share the configured ones' addresses); "
            "tests/sources/test_discovery.py checks the series these panels read"
        )
        for dashboard, title, metric in (
            (
                "tls-trends.json",
                "Discovery: address:port pairs per handshake outcome (last run of each scan)",
                "tls_discovery_endpoints",
            ),
            ("tls-trends.json", "Discovered endpoints: new and vanished (per hour)", "tls_probe_success"),
        )
    },
    **{
        ("tls-target.json", "DNS: DANE (TLSA) and CAA", metric): (
            "no profile here checks DANE or CAA (tests/dnsfacts does, against a real signed zone)"
        )
        for metric in (
            "tls_dane_tlsa_records",
            "tls_dane_match",
            "tls_dane_dnssec_validated",
            "tls_caa_permits_issuer",
            "tls_caa_info",
        )
    },
}


def _instant(stack: Stack, expr: str, **selected: list[str] | None) -> list[dict[str, Any]]:
    return prom_query(stack, substitute(expr, **selected))["result"]


def _panel_expr(dashboard: str, title: str, index: int = 0) -> str:
    matches = [e for d, t, e in dashboard_exprs() if d == dashboard and t == title]
    assert len(matches) > index, f"{dashboard}: no panel {title!r} (or fewer targets)"
    return matches[index]


def test_main_panels_return_data(stack: Stack) -> None:
    wait_for_expected_alerts(stack)
    overview = "tls-overview.json"
    counts = {
        title: float(_instant(stack, _panel_expr(overview, title))[0]["value"][1])
        for title in ("Expired", "Critical", "Warning", "Info", "OK", "Failed probes")
    }
    # good, wrong-host, weak-key, ipv6 (a year left) and the not-yet-valid file (400 days) are ok;
    # closed is the one failed probe.
    assert counts == {"Expired": 1, "Critical": 1, "Warning": 1, "Info": 0, "OK": 5, "Failed probes": 1}

    per_tier = {
        r["metric"]["tier"]: float(r["value"][1])
        for r in _instant(stack, _panel_expr(overview, "Certificates per tier"))
    }
    assert per_tier == {"expired": 1, "critical": 1, "warning": 1, "ok": 5}

    per_outcome = {
        r["metric"]["outcome"]: float(r["value"][1])
        for r in _instant(stack, _panel_expr(overview, "Addresses per handshake outcome"))
    }
    assert per_outcome == {"certificate_found": 7, "connection_refused": 1}
    files = {
        r["metric"]["outcome"]: float(r["value"][1])
        for r in _instant(stack, _panel_expr(overview, "Certificate files per outcome"))
    }
    assert files == {"certificate_found": 1}

    days = {
        stack.case_of(r["metric"]["target"]): float(r["value"][1])
        for r in _instant(stack, _panel_expr(overview, "Every certificate", 0))
    }
    assert set(days) == {*LEAVES, "ipv6", "file"}
    assert days["expired"] < -9
    assert 4 < days["critical"] <= 5
    assert 19 < days["warning"] <= 20
    assert days["good"] > 300 and days["ipv6"] > 300 and days["file"] > 399

    tiers = {
        stack.case_of(r["metric"]["target"]): r["metric"]["tier"]
        for r in _instant(stack, _panel_expr(overview, "Every certificate", 1))
    }
    assert tiers == {
        "good": "ok",
        "expired": "expired",
        "critical": "critical",
        "warning": "warning",
        "wrong-host": "ok",
        "weak-key": "ok",
        "ipv6": "ok",
        "file": "ok",
    }
    # The not-after column: milliseconds, the days left apart.
    not_after = {
        stack.case_of(r["metric"]["target"]): float(r["value"][1])
        for r in _instant(stack, _panel_expr(overview, "Every certificate", 5))
    }
    assert set(not_after) == set(days)
    now_ms = float(prom_query(stack, "time()")["result"][1]) * 1000
    for case, ms in not_after.items():
        assert abs((ms - now_ms) / 86_400_000 - days[case]) < 0.01, case

    # The timeline's colour comes from the tier series: each bar carries its certificate's tier.
    timeline = _instant(
        stack, _panel_expr(overview, "Expiration timeline (days left, soonest first, coloured by tier)")
    )
    assert {stack.case_of(r["metric"]["target"]): r["metric"]["tier"] for r in timeline} == tiers
    assert [stack.case_of(r["metric"]["target"]) for r in timeline][:3] == ["expired", "critical", "warning"]

    # The calendar: the 5-day certificate in week 1, the 20-day one in week 3, nothing else soon.
    calendar = [
        float(
            _instant(
                stack, _panel_expr(overview, "Expiry calendar: certificates expiring per week (next 13 weeks)", k)
            )[0]["value"][1]
        )
        for k in range(13)
    ]
    assert calendar == [1, 0, 1] + [0] * 10

    status = {
        stack.case_of(r["metric"]["target"]): float(r["value"][1])
        for r in _instant(stack, _panel_expr(overview, "Endpoint status over time (handshake outcome)"))
    }
    assert status == {**dict.fromkeys(LEAVES, 1.0), "ipv6": 1.0, "closed": 4.0}  # 4 = connection_refused

    alarms = _instant(stack, _panel_expr(overview, "Firing TLS alerts"))
    assert {r["metric"]["alertname"] for r in alarms} >= {k[0] for k, _ in EXPECTED.items() if k[2] == EXPORTER_JOB}


def _targets_of(results: list[dict[str, Any]]) -> set[str]:
    return {r["metric"].get("target", "") for r in results}


def test_exact_target_selection(stack: Stack) -> None:
    """An IPv6 target, a file path full of regex characters, and both at once select exactly those,
    in every panel of every dashboard; the naive `"$target"` of a single-value variable did not."""
    wait_for_expected_alerts(stack)
    ipv6, path = stack.addresses["ipv6"], stack.addresses["file"]
    assert prom_query(stack, f'tls_probe_success{{target=~"{ipv6}"}}')["result"] == [], "a character class"
    for selection in ([ipv6], [path], [ipv6, path]):
        seen: set[str] = set()
        for dashboard, title, expr in dashboard_exprs():
            results = _instant(stack, expr, target=selection)
            targets = _targets_of(results) - {""}
            assert targets <= set(selection), (dashboard, title, selection, targets)
            seen |= targets
        assert seen == set(selection), selection
    # The panels a user opens first, per selection.
    target_dash = "tls-target.json"
    days = _instant(stack, _panel_expr(target_dash, "Days left (coloured by tier)"), target=[ipv6, path])
    assert {(r["metric"]["target"], r["metric"]["tier"], r["metric"]["display"]) for r in days} == {
        (ipv6, "ok", ipv6),
        (path, "ok", path),
    }
    assert all(float(r["value"][1]) > 300 for r in days)
    table = _instant(stack, _panel_expr(target_dash, "Addresses and certificate", 0), target=[path])
    assert [(r["metric"]["target"], r["metric"]["position"], r["metric"]["protocol"]) for r in table] == [
        (path, "0", "file")
    ]


def test_display_label_falls_back_to_instance(stack: Stack) -> None:
    """Series of a /probe scrape that sets no target label are named by their instance."""
    wait_for_expected_alerts(stack)
    expr = _panel_expr("tls-overview.json", "Endpoint status over time (handshake outcome)")
    # The panel's query on the /probe job, its target label removed as a scrape without it would have it.
    stripped = re.sub(
        r"(tls_handshake_outcome\{[^}]*\})",
        r'label_replace(\1, "target", "", "target", ".*")',
        substitute(expr, job=[PROBE_JOB]),
    )
    rows = prom_query(stack, stripped)["result"]
    assert {(r["metric"].get("target"), r["metric"]["display"]) for r in rows} == {
        (None, stack.addresses["good"]),
        (None, stack.addresses["warning"]),
    }
    with_target = prom_query(stack, substitute(expr))["result"]
    assert all(r["metric"]["display"] == r["metric"]["target"] for r in with_target)


def test_every_panel_returns_data(stack: Stack) -> None:
    """With "All" selected, every panel query returns data, except those listed with a reason."""
    wait_for_expected_alerts(stack)

    def unexplained() -> list[tuple[str, str, str]]:
        out = []
        for dashboard, title, expr in dashboard_exprs():
            if _instant(stack, expr):
                continue
            metrics = set(re.findall(r"\btls_[a-z0-9_]+", expr))
            if any((dashboard, title, m) in EMPTY_BY_DESIGN for m in metrics):
                continue
            out.append((dashboard, title, expr))
        return out

    # A rate or increase() needs two scrapes of its series: when this test runs first, wait for them.
    missing = unexplained()
    for _ in range(60):
        if not missing:
            break
        time.sleep(1)
        missing = unexplained()
    assert not missing, json.dumps(missing, indent=1)


# -- Alertmanager -------------------------------------------------------------------------------


def _delivered(stack: Stack) -> dict[tuple[str, str, str], set[str]]:
    """(alertname, case, job) -> receivers that got it firing."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for path, payload in stack.webhook.snapshot():
        for alert in payload["alerts"]:
            if alert["status"] != "firing":
                continue
            labels = alert["labels"]
            key = (labels["alertname"], stack.case_of(labels.get("target", "")), labels.get("job", ""))
            out.setdefault(key, set()).add(path.strip("/"))
            assert payload["receiver"] == path.strip("/"), (path, payload["receiver"])
    return out


ROUTED = {
    ("TLSCertificateExpired", "expired", EXPORTER_JOB): {"web-team-pager"},
    ("TLSCertificateExpiryCritical", "critical", EXPORTER_JOB): {"payments-pager"},
    ("TLSCertificateExpiryCritical", "warning", PROBE_JOB): {"web-team-pager"},
    # A certificate rule gives it to payments; the server belongs to hsm-team (server_owner): both.
    ("TLSCertificateHostnameMismatch", "wrong-host", EXPORTER_JOB): {"payments-pager", "hsm-team-pager"},
    ("TLSCertificateWeakKey", "weak-key", EXPORTER_JOB): {"platform"},
    ("TLSEndpointConnectionRefused", "closed", EXPORTER_JOB): {"hsm-team-pager"},
    ("TLSCertificateNotYetValid", "file", EXPORTER_JOB): {"hsm-team-pager"},
}
INHIBITED = ("TLSCertificateExpiryWarning", "warning", EXPORTER_JOB)


def test_alertmanager_routes_and_inhibits(stack: Stack) -> None:
    # Alertmanager has run since before the first alert fired (see GROUP_WAIT).
    am, am_url = stack.alertmanager, stack.am_url
    # Until every receiver of every alert has it: an alert routed to two receivers (continue:
    # true) reaches them in two deliveries, not necessarily in the same instant.
    delivered = wait_for(
        lambda: (d := _delivered(stack)) and all(d.get(k, set()) >= v for k, v in ROUTED.items()) and d,
        timeout=90,
        what=f"webhook deliveries of {sorted(ROUTED)}",
        interval=0.5,
        proc=am,
    )
    for key, receivers in ROUTED.items():
        assert delivered[key] == receivers, (key, delivered[key])

    # The warning-tier alert of the certificate that is critical under another profile is held
    # back by the example's inhibition rule (same target, address, protocol, position).
    def warning_state() -> dict[str, Any] | None:
        alerts = http(f"{am_url}/api/v2/alerts?filter=alertname%3D%22{INHIBITED[0]}%22").json()
        mine = [a for a in alerts if stack.case_of(a["labels"].get("target", "")) == INHIBITED[1]]
        return mine[0] if mine else None

    state = wait_for(warning_state, timeout=30, what="the warning alert in Alertmanager", proc=am)
    assert state["status"]["state"] == "suppressed", state
    assert state["status"]["inhibitedBy"], state
    # The expired certificate's alert pages its owner's pager with the example's annotations.
    expired_payloads = [
        a
        for path, p in stack.webhook.snapshot()
        for a in p["alerts"]
        if path.strip("/") == "web-team-pager" and a["labels"]["alertname"] == "TLSCertificateExpired"
    ]
    assert expired_payloads
    annotations = expired_payloads[0]["annotations"]
    assert set(annotations) >= {"summary", "detail", "impact", "remedy"}
    assert "days ago" in annotations["detail"], annotations["detail"]
    assert INHIBITED not in _delivered(stack), "the inhibited warning alert was delivered"


def test_alertmanager_failed_notifications(stack: Stack) -> None:
    """The receiver whose webhook answers 500 makes Alertmanager count failed notifications, and
    alerting-rules/alertmanager.rules.yml turns them into an alert without an owner."""

    def fired() -> dict[str, Any] | None:
        alerts = http(f"{stack.prometheus_url}/api/v1/alerts").json()["data"]["alerts"]
        mine = [
            a
            for a in alerts
            if a["state"] == "firing" and a["labels"]["alertname"] == "AlertmanagerNotificationsFailed"
        ]
        return mine[0] if mine else None

    alert = wait_for(fired, timeout=120, what="AlertmanagerNotificationsFailed firing", proc=stack.prometheus)
    instance = stack.am_url.removeprefix("http://")
    assert alert["labels"] == {
        "alertname": "AlertmanagerNotificationsFailed",
        "integration": "webhook",
        "job": ALERTMANAGER_JOB,
        "instance": instance,
        "severity": "warning",
    }
    annotations = alert["annotations"]
    assert annotations["summary"] == f"Alertmanager {instance} failed to send webhook notifications"
    assert re.fullmatch(
        rf"\d+ webhook notifications of Alertmanager {re.escape(instance)} \(job {ALERTMANAGER_JOB}\) failed in the "
        r"last hour, after retries\.",
        annotations["detail"],
    ), annotations["detail"]
    assert annotations["runbook_url"].endswith("docs/alerts.md#alertmanagernotificationsfailed")
    # The failing receiver did get the requests: the failure is the answer, not the routing.
    assert any(path.strip("/") == FAILING_RECEIVER for path, _ in stack.webhook.snapshot())
