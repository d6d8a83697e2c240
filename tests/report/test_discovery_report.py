"""The discovery e-mail's content from a run's changes, and the `period: discovery` report config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from pki import PKI

from exporter.certs.findings import Verdict
from exporter.config.model import ExpiryTiers
from exporter.config.notify_model import ReportFormat, ReportPeriod
from exporter.config.parse import parse_config
from exporter.report.discovery import build_discovery_report, render_discovery, render_text
from exporter.report.model import Certificate, DailyStatus, FailedEndpoint, Report
from exporter.report.render import render
from exporter.sources.discovered import Discovery, PairResult, RunResult
from exporter.support.errors import ConfigError, Outcome

HOUR = 3600.0


def scan_config(**report: object) -> dict[str, object]:
    return {
        "discovery": [{"name": "lab", "networks": ["127.83.0.0/29"], "ports": [443, 25], "interval": "1h"}],
        "reports": [{"name": "mail", "period": "discovery", "directory": "/tmp/reports", **report}],
    }


def test_a_discovery_report_needs_no_schedule_and_may_name_its_scan() -> None:
    config = parse_config(scan_config(discovery="lab", max_rows=25), base_dir=Path("."))
    (report,) = config.reports
    assert (report.period, report.at, report.discovery, report.max_rows) == (ReportPeriod.DISCOVERY, "", "lab", 25)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"discovery": "lba"}, "reports[0].discovery: unknown discovery 'lba' (one of lab)"),
        ({"at": "0 8 * * *"}, "reports[0].at: not used by a discovery report (it is sent at the end of each run)"),
        ({"max_rows": 0}, "reports[0].max_rows: expected a positive integer"),
        ({"period": "day", "discovery": "lab", "at": "0 8 * * *", "prometheus_url": "http://127.0.0.1:9090"},
         "reports[0].discovery: only for period: discovery"),
    ],
)  # fmt: skip
def test_discovery_report_errors_name_the_key(extra: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(scan_config(**extra), base_dir=Path("."))
    assert caught.value.errors == [error]


def _pair(ip: str, port: int, outcome: Outcome, at: float, der: bytes | None = None) -> PairResult:
    return PairResult(
        ip=ip, port=port, protocol="https", outcome=outcome, accepted=True, certificates=(der,) if der else (), at=at
    )


def test_the_report_counts_expiring_and_certificateless_endpoints_and_caps_its_tables(pki: PKI) -> None:
    config = parse_config(scan_config(), base_dir=Path("."))
    (scan,) = config.discovery
    der = {
        name: pki[name].cert.public_bytes(Encoding.DER) for name in ("good", "expired", "expiring-5d", "expiring-60d")
    }
    discovery = Discovery()
    t0 = pki["good"].cert.not_valid_before_utc.timestamp() + 30 * 86400  # the fixtures' "now"
    first = (
        _pair("127.83.0.1", 443, Outcome.CERTIFICATE_FOUND, t0, der["good"]),
        _pair("127.83.0.7", 443, Outcome.CERTIFICATE_FOUND, t0, der["good"]),  # gone at the second run
    )
    discovery.record(scan, RunResult(scope=16, outcomes={}, accepted=first), t0, t0 + 1)
    t1 = t0 + HOUR
    second = (
        _pair("127.83.0.1", 443, Outcome.CERTIFICATE_FOUND, t1, der["good"]),
        _pair("127.83.0.2", 443, Outcome.CERTIFICATE_FOUND, t1, der["expired"]),
        _pair("127.83.0.3", 443, Outcome.CERTIFICATE_FOUND, t1, der["expiring-5d"]),
        _pair("127.83.0.4", 443, Outcome.CERTIFICATE_FOUND, t1, der["expiring-60d"]),  # info tier: not counted
        _pair("127.83.0.5", 443, Outcome.NOT_TLS, t1),
        _pair("127.83.0.6", 25, Outcome.STARTTLS_UNSUPPORTED, t1),
        _pair("127.83.0.5", 25, Outcome.HANDSHAKE_TIMEOUT, t1),
    )
    outcomes = {"certificate_found": 4, "not_tls": 1, "starttls_unsupported": 1, "handshake_timeout": 1}
    changes = discovery.record(scan, RunResult(scope=16, outcomes=outcomes, accepted=second), t1, t1 + 2)
    report = build_discovery_report(scan, changes, ExpiryTiers())

    assert report.subject == "5 endpoints need attention: 2 expired or expiring, 3 without a certificate"
    assert [(r.address, r.tier) for r in report.expiring] == [
        ("127.83.0.2:443", "expired"),
        ("127.83.0.3:443", "critical"),
    ]
    assert [r.address for r in report.without] == ["127.83.0.5:25", "127.83.0.5:443", "127.83.0.6:25"]
    assert [r.address for r in report.lost] == ["127.83.0.7:443"]
    assert len(report.new) == 6 and report.forgotten == ()  # 127.83.0.1:443 was found before
    assert report.certificates[0].address == "127.83.0.2:443"  # soonest expiry first
    assert report.expiring[1].days_left == pytest.approx(5 - 1 / 24, abs=0.01)  # an hour after the fixtures' now

    text = render_text(report, max_rows=2)
    assert "Without a certificate (3)" in text and "... and 1 more" in text
    assert "Every certificate found (4)" in text and "... and 2 more" in text
    html = render_discovery(report, ReportFormat.HTML, max_rows=2)
    # 5 tables have rows (none were forgotten): their headers, then at most 2 rows each (2, 2 of 3, 1, 2 of 6, 2 of 4).
    assert html.count("<tr>") == 5 + 2 + 2 + 1 + 2 + 2
    assert "127.83.0.6:25" not in html  # the third row of "without": capped
    uncapped = render_discovery(report, ReportFormat.JSON)
    assert '"count": 3' in uncapped and "127.83.0.6:25" in uncapped


def _cert(i: int, tier: str) -> Certificate:
    return Certificate(
        target=f"host{i}.example.test", address=f"127.0.0.{i}:443", protocol="https", position="", server_name="",
        name=f"host{i}", owner="web", subject=f"CN=host{i}", issuer="CN=CA", tier=tier, days_left=10.0 * i,
        not_before=0.0, not_after=86400.0 * i, grade="A", verdict=Verdict.OK, problems=(),
    )  # fmt: skip


def test_max_rows_caps_every_table_of_a_periodic_report() -> None:
    certs = tuple(_cert(i, tier) for i, tier in enumerate(("expired", "warning", "ok", "ok", "ok"), start=1))
    failed = tuple(
        FailedEndpoint(target=f"down{i}", address=f"127.0.1.{i}:443", protocol="https", name="", owner="", outcome="x")
        for i in range(3)
    )
    totals = {"certificates": 5, "ok": 3, "warning": 1, "critical": 1, "failed_endpoints": 3}
    report = Report(
        period=ReportPeriod.DAY, title="Daily", start=0.0, end=86400.0, prometheus_url="http://127.0.0.1:9090",
        dashboard_url=None, totals=totals, daily=DailyStatus(certificates=certs, failed=failed, changes=()),
    )  # fmt: skip
    doc = json.loads(render(report, ReportFormat.JSON, max_rows=2))
    assert [c["target"] for c in doc["daily"]["certificates"]] == ["host1.example.test", "host2.example.test"]
    assert len(doc["daily"]["failed"]) == 2
    assert doc["daily"]["tiers"] == {"expired": 1, "critical": 0, "warning": 1, "info": 0, "ok": 3}  # all 5 counted
    assert doc["totals"] == totals
    assert doc["notes"] == [
        "Tables show at most 2 rows (max_rows): certificates: the first 2 of 5 rows; failed: the first 2 of 3 rows."
    ]
    html = render(report, ReportFormat.HTML, max_rows=2)
    assert "host2.example.test" in html and "host3.example.test" not in html
    assert render(report, ReportFormat.JSON, max_rows=5) == render(report, ReportFormat.JSON)  # nothing to cut
    assert "tiers" not in json.loads(render(report, ReportFormat.JSON))["daily"]
