"""Validation of `notifications:` and `reports:`, with the shared readers of the main parser.

Kept apart from ``parse.py`` so that section stays about targets; errors follow the same
``dotted.path: reason`` form (``notifications.snmp[1].auth_protocol: unknown value 'MD5' ...``).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from exporter.config.cron import parse_cron
from exporter.config.notify_model import (
    Notifications,
    Report,
    ReportFormat,
    ReportPeriod,
    SmtpDelivery,
    SnmpAuthProtocol,
    SnmpPrivProtocol,
    SnmpReceiver,
    SnmpVersion,
)

Raw = dict[str, object]


class _Parser(Protocol):
    """What these sections need of ``exporter.config.parse``'s parser (kept as a protocol so the
    two modules do not import each other)."""

    def error(self, path: str, message: str) -> None: ...
    def mapping(self, value: object, path: str, keys: Sequence[str]) -> Raw | None: ...
    def sequence(self, value: object, path: str) -> list[object]: ...
    def string(self, m: Raw, key: str, path: str, *, empty_ok: bool = False) -> str | None: ...
    def boolean(self, m: Raw, key: str, path: str) -> bool | None: ...
    def choice(self, m: Raw, key: str, path: str, options: Sequence[str]) -> str | None: ...
    def resolve(self, value: str) -> Path: ...
    def split_address(self, text: str) -> tuple[str, int | None]: ...
    def count(self, m: Raw, key: str, path: str) -> int | None: ...

    @property
    def discovery_names(self) -> set[str]: ...  # the names of the `discovery:` scans


NOTIFICATIONS_KEYS = ("snmp",)
SNMP_KEYS = (
    "destination",
    "version",
    "community_env",
    "user",
    "auth_protocol",
    "auth_password_env",
    "priv_protocol",
    "priv_password_env",
    "engine_id",
)
V2C_KEYS = ("community_env",)
V3_KEYS = ("user", "auth_protocol", "auth_password_env", "priv_protocol", "priv_password_env", "engine_id")
REPORT_KEYS = (
    "name",
    "period",
    "at",
    "format",
    "prometheus_url",
    "dashboard_url",
    "smtp",
    "directory",
    "discovery",
    "max_rows",
)
SMTP_KEYS = ("smarthost", "from", "to", "auth_username", "auth_password_env", "starttls")
SNMP_DEFAULT_PORT = 162
SMTP_DEFAULT_PORT = 25

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_MAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+")


def parse_notifications(p: _Parser, raw: object) -> Notifications:
    m = p.mapping(raw, "notifications", NOTIFICATIONS_KEYS) if raw is not None else None
    if m is None:
        return Notifications()
    receivers = []
    for index, item in enumerate(p.sequence(m.get("snmp"), "notifications.snmp")):
        receiver = _snmp_receiver(p, item, f"notifications.snmp[{index}]")
        if receiver is not None:
            receivers.append(receiver)
    return Notifications(snmp=tuple(receivers))


def _snmp_receiver(p: _Parser, item: object, path: str) -> SnmpReceiver | None:
    m = p.mapping(item, path, SNMP_KEYS)
    if m is None:
        return None
    for required in ("destination", "version"):
        if required not in m:
            p.error(path, f"missing required key '{required}'")
    destination = p.string(m, "destination", path)
    hostport = _host_port(p, destination, f"{path}.destination", SNMP_DEFAULT_PORT) if destination else None
    version_text = p.choice(m, "version", path, [v.value for v in SnmpVersion])
    version = SnmpVersion(version_text) if version_text else None
    envs = {key: _env(p, m, key, path) for key in SNMP_KEYS if key.endswith("_env")}
    if version is SnmpVersion.V2C:
        _forbid(p, m, path, V3_KEYS, "v2c")
        if "community_env" not in m:
            p.error(path, "version v2c needs community_env (the environment variable holding the community)")
    elif version is SnmpVersion.V3:
        _forbid(p, m, path, V2C_KEYS, "v3")
        if "user" not in m:
            p.error(path, "missing required key 'user' (version v3)")
        _pair(p, m, path, "auth_protocol", "auth_password_env")
        _pair(p, m, path, "priv_protocol", "priv_password_env")
        if "priv_protocol" in m and "auth_protocol" not in m:
            p.error(path, "priv_protocol needs auth_protocol (SNMPv3 has no privacy without authentication)")
    auth = p.choice(m, "auth_protocol", path, [a.value for a in SnmpAuthProtocol])
    priv = p.choice(m, "priv_protocol", path, [a.value for a in SnmpPrivProtocol])
    user = p.string(m, "user", path)
    engine_id = _engine_id(p, m, path)
    if hostport is None or version is None:
        return None
    return SnmpReceiver(
        destination=destination or "",
        host=hostport[0],
        port=hostport[1],
        version=version,
        community_env=envs["community_env"],
        user=user,
        auth_protocol=SnmpAuthProtocol(auth) if auth else None,
        auth_password_env=envs["auth_password_env"],
        priv_protocol=SnmpPrivProtocol(priv) if priv else None,
        priv_password_env=envs["priv_password_env"],
        engine_id=engine_id,
    )


def _forbid(p: _Parser, m: Raw, path: str, keys: tuple[str, ...], version: str) -> None:
    for key in keys:
        if key in m:
            p.error(f"{path}.{key}", f"not used with version {version}")


def _pair(p: _Parser, m: Raw, path: str, protocol: str, password: str) -> None:
    if (protocol in m) != (password in m):
        p.error(path, f"give both {protocol} and {password}, or neither")


def _env(p: _Parser, m: Raw, key: str, path: str) -> str | None:
    value = p.string(m, key, path)
    if value is not None and not _ENV_NAME.fullmatch(value):
        p.error(f"{path}.{key}", f"invalid environment variable name '{value}'")
        return None
    return value


def _engine_id(p: _Parser, m: Raw, path: str) -> str | None:
    value = p.string(m, "engine_id", path)
    if value is None:
        return None
    digits = value.lower().removeprefix("0x").replace(":", "")
    # RFC 3411 SnmpEngineID: 5 to 32 octets.
    if not _HEX.fullmatch(digits) or not 5 <= len(digits) // 2 <= 32:
        p.error(f"{path}.engine_id", f"invalid engine ID '{value}' (5 to 32 octets in hex)")
        return None
    return digits


def _host_port(p: _Parser, text: str, where: str, default_port: int) -> tuple[str, int] | None:

    try:
        host, port = p.split_address(text)
    except ValueError as exc:
        p.error(where, str(exc))
        return None
    return host, default_port if port is None else port


# ---- reports ----------------------------------------------------------------------------------


def parse_reports(p: _Parser, raw: object) -> tuple[Report, ...]:
    reports: list[Report] = []
    names: dict[str, int] = {}
    for index, item in enumerate(p.sequence(raw, "reports")):
        path = f"reports[{index}]"
        report = _report(p, item, path, index)
        if report is None:
            continue
        if report.name in names:
            p.error(f"{path}.name", f"duplicate of reports[{names[report.name]}] (same name '{report.name}')")
            continue
        names[report.name] = index
        reports.append(report)
    return tuple(reports)


def _report(p: _Parser, item: object, path: str, index: int) -> Report | None:
    m = p.mapping(item, path, REPORT_KEYS)
    if m is None:
        return None
    period = p.choice(m, "period", path, [r.value for r in ReportPeriod])
    discovery = period == ReportPeriod.DISCOVERY
    # A discovery report is sent at the end of each run, from what the run found.
    for required in ("period",) if discovery else ("period", "at", "prometheus_url"):
        if required not in m:
            p.error(path, f"missing required key '{required}'")
    if discovery:
        for extra in ("at", "prometheus_url"):
            if extra in m:
                p.error(f"{path}.{extra}", "not used by a discovery report (it is sent at the end of each run)")
    scan = p.string(m, "discovery", path)
    if scan is not None and not discovery:
        p.error(f"{path}.discovery", "only for period: discovery")
    elif scan is not None and scan not in p.discovery_names:
        names = sorted(p.discovery_names)
        p.error(f"{path}.discovery", f"unknown discovery '{scan}' (one of {', '.join(names) or 'none configured'})")
        scan = None
    max_rows = p.count(m, "max_rows", path)
    at = p.string(m, "at", path)
    if at is not None:
        try:
            parse_cron(at)
        except ValueError as exc:
            p.error(f"{path}.at", str(exc))
            at = None
    fmt = p.choice(m, "format", path, [f.value for f in ReportFormat])
    prometheus_url = _url(p, m, "prometheus_url", path)
    dashboard_url = _url(p, m, "dashboard_url", path)
    smtp = _smtp(p, m["smtp"], f"{path}.smtp") if "smtp" in m else None
    directory = p.string(m, "directory", path)
    if ("smtp" in m) == ("directory" in m):
        p.error(path, "give exactly one of smtp, directory (where the report is delivered)")
    name = p.string(m, "name", path)
    if period is None or (smtp is None and directory is None):
        return None
    if not discovery and (at is None or prometheus_url is None):
        return None
    return Report(
        name=name or f"{period}-{index}",
        period=ReportPeriod(period),
        at=at or "",
        format=ReportFormat(fmt) if fmt else ReportFormat.HTML,
        **({"prometheus_url": prometheus_url.rstrip("/")} if prometheus_url else {}),
        dashboard_url=dashboard_url,
        smtp=smtp,
        directory=None if directory is None else str(p.resolve(directory)),
        discovery=scan,
        max_rows=max_rows,
    )


def _url(p: _Parser, m: Raw, key: str, path: str) -> str | None:
    value = p.string(m, key, path)
    if value is None:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        p.error(f"{path}.{key}", f"invalid URL '{value}' (http:// or https:// with a host)")
        return None
    return value


def _smtp(p: _Parser, raw: object, path: str) -> SmtpDelivery | None:
    m = p.mapping(raw, path, SMTP_KEYS)
    if m is None:
        return None
    for required in ("smarthost", "from", "to"):
        if required not in m:
            p.error(path, f"missing required key '{required}'")
    smarthost = p.string(m, "smarthost", path)
    hostport = _host_port(p, smarthost, f"{path}.smarthost", SMTP_DEFAULT_PORT) if smarthost else None
    sender = _address(p, m, "from", path)
    to: list[str] = []
    bad_to = False
    raw_to = m.get("to")
    for index, value in enumerate([raw_to] if isinstance(raw_to, str) else p.sequence(raw_to, f"{path}.to")):
        where = f"{path}.to" if isinstance(raw_to, str) else f"{path}.to[{index}]"
        if not isinstance(value, str) or not _MAIL.fullmatch(value.strip()):
            p.error(where, f"invalid mail address '{value}'")
            bad_to = True
        else:
            to.append(value.strip())
    if "to" in m and not to and not bad_to:
        p.error(f"{path}.to", "must not be empty")
    username = p.string(m, "auth_username", path)
    password_env = _env(p, m, "auth_password_env", path)
    if ("auth_username" in m) != ("auth_password_env" in m):
        p.error(path, "give both auth_username and auth_password_env, or neither")
    starttls = p.boolean(m, "starttls", path)
    if hostport is None or sender is None or not to:
        return None
    return SmtpDelivery(
        smarthost=smarthost or "",
        host=hostport[0],
        port=hostport[1],
        sender=sender,
        to=tuple(to),
        auth_username=username,
        auth_password_env=password_env,
        starttls=True if starttls is None else starttls,
    )


def _address(p: _Parser, m: Raw, key: str, path: str) -> str | None:
    value = p.string(m, key, path)
    if value is not None and not _MAIL.fullmatch(value):
        p.error(f"{path}.{key}", f"invalid mail address '{value}'")
        return None
    return value
