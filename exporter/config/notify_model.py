"""The validated `notifications:` and `reports:` sections (built only by ``exporter.config.parse_notify``).

Secrets are never held here: only the names of the environment variables that carry them, read
when a notification is sent, so a rotated secret needs no reload and `--config.check` needs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SnmpVersion(StrEnum):
    V2C = "v2c"
    V3 = "v3"


class SnmpAuthProtocol(StrEnum):
    SHA = "SHA"  # HMAC-SHA-96 (RFC 3414)
    SHA256 = "SHA-256"  # HMAC-SHA-192 with SHA-256 (RFC 7860)


class SnmpPrivProtocol(StrEnum):
    AES = "AES"  # AES-128 CFB (RFC 3826)


@dataclass(frozen=True, slots=True, kw_only=True)
class SnmpReceiver:
    """One trap receiver. v2c: ``community_env``; v3: ``user`` with optional auth and privacy."""

    destination: str  # as configured, for logs: "nms.example.com:162"
    host: str
    port: int
    version: SnmpVersion
    community_env: str | None = None
    user: str | None = None
    auth_protocol: SnmpAuthProtocol | None = None
    auth_password_env: str | None = None
    priv_protocol: SnmpPrivProtocol | None = None
    priv_password_env: str | None = None
    engine_id: str | None = None  # lowercase hex; None: derived from the host name


@dataclass(frozen=True, slots=True, kw_only=True)
class Notifications:
    snmp: tuple[SnmpReceiver, ...] = ()


class ReportPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    DISCOVERY = "discovery"  # sent at the end of each run of a `discovery:` scan, not on a schedule


class ReportFormat(StrEnum):
    HTML = "html"
    MARKDOWN = "markdown"
    JSON = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpDelivery:
    smarthost: str  # host:port
    host: str
    port: int
    sender: str  # the `from` key
    to: tuple[str, ...]
    auth_username: str | None = None
    auth_password_env: str | None = None
    starttls: bool = True  # use STARTTLS when the server offers it


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One scheduled report: what, when (``at``: cron-like), from where and to whom. A discovery
    report (``period: discovery``) has no ``at`` or ``prometheus_url``: it is sent at the end of
    each run of its scan (``discovery``: one scan's name, None: every scan)."""

    name: str
    period: ReportPeriod
    at: str = ""  # the cron expression as configured: "minute hour day-of-month month day-of-week"
    format: ReportFormat = ReportFormat.HTML
    prometheus_url: str = "http://127.0.0.1:9090"
    dashboard_url: str | None = None
    smtp: SmtpDelivery | None = None
    directory: str | None = None
    discovery: str | None = None  # period discovery: only this scan's runs
    max_rows: int | None = None  # at most this many rows in each table of the report
