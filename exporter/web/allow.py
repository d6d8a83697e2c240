"""`probe.allow`: which hosts /probe may reach (globs on names, CIDR ranges on every address).

The rule is ``exporter.netpolicy.Patterns.allows``: a name must match a glob and every address it
resolves to must lie in a range, so a glob cannot let DNS send the probe where the ranges do not
allow. The handler answers 403 from this check; the TLS source checks again the addresses it
actually connects to (``PROBE_SCOPE``), so an answer that changes in between is refused too.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from exporter.netpolicy import Patterns, parse_ip


async def probe_refusal(host: str, port: int, patterns: Sequence[str], *, timeout: float) -> str | None:
    """None when /probe may reach ``host``, else why not; resolves the name when ranges need it.

    A name that does not resolve is left to the probe (it reports dns_error)."""
    allowed = Patterns.of(patterns)
    addresses: list[str] = []
    if allowed.networks and parse_ip(host) is None and (not allowed.globs or allowed.name_matches(host)):
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except (OSError, UnicodeError, TimeoutError):
            return None
        addresses = [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    return allowed.allows(host, addresses)
