"""Does the certificate cover the name, and is it the one we expect?

Host-name matching follows RFC 6125 as browsers do: subjectAltName only (no CN fallback),
case-insensitive, a wildcard covers exactly one left-most label, IP literals match IP SANs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from exporter.config.model import Expect
from exporter.results import CertFacts


def ip_of(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``name`` spells (brackets allowed), None for a DNS name."""
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == host
    suffix = pattern[1:]  # ".example.com"
    head, dot, tail = host.partition(".")
    return bool(head) and bool(dot) and "." + tail == suffix


def hostname_matches(facts: CertFacts, server_name: str) -> bool:
    return SanMatcher(facts.sans).covers(server_name)


class SanMatcher:
    """The SANs of one certificate, read once, to match many names against."""

    __slots__ = ("_dns", "_ips")

    def __init__(self, sans: Sequence[str]) -> None:
        ips = [ip_of(san) for san in sans]
        self._ips = frozenset(ip for ip in ips if ip is not None)
        self._dns = tuple(san for san, ip in zip(sans, ips, strict=True) if ip is None)

    def covers(self, server_name: str) -> bool:
        ip = ip_of(server_name)
        if ip is not None:
            return ip in self._ips  # an IP literal matches IP SANs only
        return any(_dns_match(san, server_name) for san in self._dns)


def expected_checks(facts: CertFacts, expect: Expect | None) -> tuple[tuple[str, bool], ...]:
    """(check, match) pairs for each expectation configured, in a stable order."""
    if expect is None:
        return ()
    checks: list[tuple[str, bool]] = []
    if expect.serial is not None:
        checks.append(("serial", facts.serial == expect.serial))
    if expect.fingerprint_sha256 is not None:
        checks.append(("fingerprint", facts.fingerprint_sha256 == expect.fingerprint_sha256))
    return tuple(checks)
