"""The shipped config.example.yml (the README quick start runs it) loads and covers everything."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from exporter.config import load_config
from exporter.config.discovery import DISCOVERY_KEYS
from exporter.config.parse import FILE_KEYS, parse_config
from exporter.config.parse_notify import REPORT_KEYS, SMTP_KEYS, SNMP_KEYS
from exporter.config.parse_profile import PROFILE_KEYS
from exporter.config.parse_target import TARGET_KEYS
from exporter.support.protocols import PROTOCOLS

EXAMPLE = Path(__file__).parent.parent.parent / "config.example.yml"


def test_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.source == str(EXAMPLE)
    assert config.defaults.owner == "platform"
    assert set(config.profiles) == {"default", "internal", "legacy", "mail"}
    mail = config.profile("mail")
    assert (mail.dane, mail.caa) == (True, True)
    assert (config.profile("default").dane, config.profile("default").caa) == (False, False)
    assert config.dns.resolvers == (("127.0.0.1", 53), ("::1", 53))
    assert dict(config.caa_issuer_domains) == {"Example Issuing CA Ltd": "ca.example.net"}


def test_example_has_every_protocol() -> None:
    config = load_config(EXAMPLE)
    assert {t.protocol for t in config.targets} == set(PROTOCOLS)


def test_example_has_files_owners_and_probe_allow() -> None:
    config = load_config(EXAMPLE)
    assert len(config.files) >= 1
    assert len(config.certificate_owners) >= 1
    assert config.probe.allow == ("*.example.com", "192.0.2.0/24", "2001:db8::/32")


def test_example_has_notifications_and_reports() -> None:
    config = load_config(EXAMPLE)
    assert [r.version.value for r in config.notifications.snmp] == ["v2c", "v3"]
    assert [(r.name, r.period.value, r.smtp is not None) for r in config.reports] == [
        ("daily-status", "day", True),
        ("monthly-compliance", "month", False),
    ]


def test_example_mentions_every_option() -> None:
    text = EXAMPLE.read_text()
    notify_keys = (*SNMP_KEYS, *REPORT_KEYS, *SMTP_KEYS)
    for key in (*PROFILE_KEYS, *TARGET_KEYS, *FILE_KEYS, *notify_keys, "subject_cn", "san", "issuer_cn",
                "fingerprint_sha256"):  # fmt: skip
        assert f"{key}:" in text or f"{key}," in text, key


def test_the_commented_discovery_example_loads_and_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    block = re.search(r"^# discovery:.*?(?=^[^#])", text, re.M | re.S)
    assert block is not None
    lines = [line[2:] for line in block.group(0).splitlines() if line.startswith("# ")]
    document = yaml.safe_load("\n".join(lines))
    config = parse_config({"profiles": {"internal": {}}, **document}, base_dir=EXAMPLE.parent)
    (scan,) = config.discovery
    assert (scan.name, scan.rate, scan.timeout, scan.interval) == ("datacenter-a", 100.0, 2.0, 12 * 3600.0)
    assert scan.ports == (25, 443, 636, 993, 8443, 8444, 8445)
    assert [scan.protocol(p) for p in (25, 636, 8443, 8445)] == ["smtp", "ldaps", "tls", "smtp"]
    assert scan.scope == (768 + 256) * 7  # 10.20.0.0/22 minus 10.20.3.0/24, plus a /120
    for key in DISCOVERY_KEYS:
        assert f"{key}:" in block.group(0), key
