"""`notifications.snmp` and `reports` are validated strictly, each error naming its path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.config import parse_config
from exporter.config.notify_model import (
    ReportFormat,
    ReportPeriod,
    SnmpAuthProtocol,
    SnmpPrivProtocol,
    SnmpVersion,
)
from exporter.support.errors import ConfigError


def _parse(text: str) -> object:
    return parse_config(yaml.safe_load(text), base_dir=Path("/srv"))


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        _parse(text)
    return exc.value.errors


def test_valid_receivers() -> None:
    config = _parse("""
notifications:
  snmp:
    - {destination: "nms.example.com", version: v2c, community_env: SNMP_COMMUNITY}
    - destination: "[2001:db8::5]:1162"
      version: V3
      user: tls
      auth_protocol: sha-256
      auth_password_env: SNMP_AUTH
      priv_protocol: aes
      priv_password_env: SNMP_PRIV
      engine_id: "0x80:00:7e:d9:05:01:02:03"
""")
    v2c, v3 = config.notifications.snmp  # type: ignore[attr-defined]
    assert (v2c.host, v2c.port, v2c.version, v2c.community_env) == ("nms.example.com", 162, SnmpVersion.V2C,
                                                                    "SNMP_COMMUNITY")  # fmt: skip
    assert (v3.host, v3.port, v3.version, v3.user) == ("2001:db8::5", 1162, SnmpVersion.V3, "tls")
    assert (v3.auth_protocol, v3.priv_protocol) == (SnmpAuthProtocol.SHA256, SnmpPrivProtocol.AES)
    assert (v3.auth_password_env, v3.priv_password_env) == ("SNMP_AUTH", "SNMP_PRIV")
    assert v3.engine_id == "80007ed905010203"


def test_invalid_receivers_name_their_path() -> None:
    assert _errors("""
notifications:
  snmp:
    - {destination: "nms.example.com:99999", version: v2c, community_env: "1BAD"}
    - {destination: "nms.example.com", version: v2c, user: tls}
    - {destination: "nms.example.com", version: v3, community_env: C, auth_protocol: MD5, priv_protocol: DES}
    - {destination: "nms.example.com", version: v3, user: u, priv_protocol: AES, priv_password_env: P}
    - {destination: "nms.example.com", version: v3, user: u, engine_id: "0x1234"}
    - {version: v1, port: 162}
  email: []
""") == [
        "notifications: unknown key 'email'",
        "notifications.snmp[0].destination: invalid port '99999' (1-65535)",
        "notifications.snmp[0].community_env: invalid environment variable name '1BAD'",
        "notifications.snmp[1].user: not used with version v2c",
        "notifications.snmp[1]: version v2c needs community_env (the environment variable holding the community)",
        "notifications.snmp[2].community_env: not used with version v3",
        "notifications.snmp[2]: missing required key 'user' (version v3)",
        "notifications.snmp[2]: give both auth_protocol and auth_password_env, or neither",
        "notifications.snmp[2]: give both priv_protocol and priv_password_env, or neither",
        "notifications.snmp[2].auth_protocol: unknown value 'MD5' (one of SHA, SHA-256)",
        "notifications.snmp[2].priv_protocol: unknown value 'DES' (did you mean 'AES'?) (one of AES)",
        "notifications.snmp[3]: priv_protocol needs auth_protocol (SNMPv3 has no privacy without authentication)",
        "notifications.snmp[4].engine_id: invalid engine ID '0x1234' (5 to 32 octets in hex)",
        "notifications.snmp[5]: unknown key 'port'",
        "notifications.snmp[5]: missing required key 'destination'",
        "notifications.snmp[5].version: unknown value 'v1' (one of v2c, v3)",
    ]


def test_valid_reports() -> None:
    config = _parse("""
reports:
  - name: daily
    period: day
    at: "0 7 * * *"
    prometheus_url: http://127.0.0.1:9090/
    smtp: {smarthost: "mail.example.com:587", from: tls@example.com, to: [pki@example.com],
           auth_username: tls, auth_password_env: SMTP_PASSWORD}
  - {period: month, at: "30 6 1 * *", format: markdown, prometheus_url: "http://prom:9090", directory: reports}
""")
    daily, monthly = config.reports  # type: ignore[attr-defined]
    assert (daily.name, daily.period, daily.format, daily.prometheus_url) == (
        "daily",
        ReportPeriod.DAY,
        ReportFormat.HTML,
        "http://127.0.0.1:9090",
    )
    assert daily.smtp is not None and (daily.smtp.host, daily.smtp.port, daily.smtp.to) == (
        "mail.example.com",
        587,
        ("pki@example.com",),
    )
    assert (monthly.name, monthly.format, monthly.directory) == ("month-1", ReportFormat.MARKDOWN, "/srv/reports")


def test_invalid_reports_name_their_path() -> None:
    assert _errors("""
reports:
  - {period: year, at: "0 25 * * *", prometheus_url: "ftp://x", directory: r, smtp: {smarthost: m, from: a@b, to: c}}
  - {at: "* * *", format: pdf, prometheus_url: "http://p:9090"}
  - {period: day, at: "0 7 * * *", prometheus_url: "http://p:9090", smtp: {smarthost: m, from: nobody,
     to: [a@b], auth_username: u}}
""") == [
        "reports[0].period: unknown value 'year' (one of day, week, month, discovery)",
        "reports[0].at: invalid hour field '25' (0-23)",
        "reports[0].prometheus_url: invalid URL 'ftp://x' (http:// or https:// with a host)",
        "reports[0].smtp.to: invalid mail address 'c'",
        "reports[0]: give exactly one of smtp, directory (where the report is delivered)",
        "reports[1]: missing required key 'period'",
        "reports[1].at: invalid schedule '* * *' (five fields: minute hour day month weekday, e.g. '0 7 * * 1')",
        "reports[1].format: unknown value 'pdf' (one of html, markdown, json)",
        "reports[1]: give exactly one of smtp, directory (where the report is delivered)",
        "reports[2].smtp.from: invalid mail address 'nobody'",
        "reports[2].smtp: give both auth_username and auth_password_env, or neither",
    ]
