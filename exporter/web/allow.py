"""`probe.allow`: which hosts /probe may reach (shell-style globs on names, CIDR ranges on IPs)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from fnmatch import fnmatchcase


def probe_allowed(host: str, patterns: Sequence[str]) -> bool:
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for pattern in patterns:
        if "/" in pattern:
            if ip is not None and ip in ipaddress.ip_network(pattern, strict=False):
                return True
        elif fnmatchcase(host.lower(), pattern.lower()):
            return True
    return False
