"""`tls-exporter rules`: the bundled rules for a deployment (its default output is the file in
alerting-rules/, and the Kubernetes PrometheusRule), a job selector and runbook links of one's own,
checked by promtool; and `/runbooks/<Alert>`, every alert's runbook served by the exporter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from aiohttp.test_utils import TestClient, TestServer

from exporter.app import Exporter
from exporter.outputs.rules import alert_names, runbook_markdown
from exporter.web.handlers import make_app

from .artefacts import ROOT, RULES, require_tool

PROMETHEUS_RULE = ROOT / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"


def rules(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "rules", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_default_output_is_what_the_repository_ships() -> None:
    assert rules().stdout == RULES.read_text()
    assert rules("--format=prometheusrule").stdout == PROMETHEUS_RULE.read_text()


def test_a_deployment_of_its_own_gets_its_selector_and_runbooks(tmp_path: Path) -> None:
    done = rules('--selector=job="certs"', "--runbook-url=https://wiki.example.org/tls/")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "rules.yml"
    path.write_text(done.stdout)
    promtool = require_tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = yaml.safe_load(done.stdout)
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert {r["annotations"]["runbook_url"] for r in alerts} == {
        f"https://wiki.example.org/tls/{r['alert']}" for r in alerts
    }
    (down,) = [r for r in alerts if r["alert"] == "TLSExporterDown"]
    assert down["expr"] == 'up{job="certs"} == 0 or absent(up{job="certs"})'
    # The job named `certs` pages when it is down, which the bundled `.*tls.*` would never see.
    test = tmp_path / "down.yml"
    fired = {
        "exp_labels": {"job": "certs", "instance": "exporter:9632", "severity": "critical"},
        "exp_annotations": {
            **down["annotations"],
            "summary": "tls-exporter exporter:9632 is down",
            "detail": "Prometheus cannot scrape job certs at exporter:9632.",
        },
    }
    series = {"series": 'up{job="certs", instance="exporter:9632"}', "values": "0x10"}
    case = {"eval_time": "6m", "alertname": "TLSExporterDown", "exp_alerts": [fired]}
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": "1m"}
    doc["tests"] = [{"interval": "1m", "input_series": [series], "alert_rule_test": [case]}]
    test.write_text(yaml.safe_dump(doc, width=10**6))
    unit = subprocess.run([promtool, "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True)
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr


def test_the_external_url_points_runbooks_at_the_exporter_and_bad_input_is_refused() -> None:
    done = rules("--web.external-url=https://tls.example.org/")
    urls = set(re.findall(r"runbook_url: (\S+)", done.stdout))
    assert urls == {f"https://tls.example.org/runbooks/{name}" for name in alert_names(RULES.read_text())}
    bad = rules('--selector=job="a"} or vector(1)')
    assert bad.returncode == 2 and bad.stdout == ""
    assert "is not a PromQL label matcher list" in bad.stderr


async def test_the_exporter_serves_every_alerts_runbook(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("targets: []\n")
    exporter = Exporter(str(config), listen="127.0.0.1:0")
    await exporter.startup()
    client = TestClient(TestServer(make_app(exporter), host="127.0.0.1"))
    await client.start_server()
    try:
        for name in alert_names(RULES.read_text()):
            resp = await client.get(f"/runbooks/{name}")
            assert resp.status == 200 and resp.content_type == "text/html", name
            page = await resp.text()
            assert f"<h1>{name}</h1>" in page and "<strong>Means:</strong>" in page and "<strong>Fix:</strong>" in page
        expired = await (await client.get("/runbooks/TLSCertificateExpired")).text()
        assert "renew the certificate now and install it with its full chain" in expired
        assert runbook_markdown("TLSCertificateExpired") is not None
        assert (await client.get("/runbooks/NoSuchAlert")).status == 404
    finally:
        await client.close()
        await exporter.shutdown()
