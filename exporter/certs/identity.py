"""Does the certificate cover the name, and is it the one we expect?

Host-name matching follows RFC 6125 as browsers do: subjectAltName only (no CN fallback),
case-insensitive, a wildcard covers exactly one left-most label, IP literals match IP SANs.
"""

from __future__ import annotations

import ipaddress

from exporter.config.model import Expect
from exporter.results import CertFacts


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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
    ip = _ip(server_name)
    for san in facts.sans:
        san_ip = _ip(san)
        if ip is not None:
            if san_ip == ip:
                return True
        elif san_ip is None and _dns_match(san, server_name):
            return True
    return False


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
