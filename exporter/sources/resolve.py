"""Name resolution: every A and AAAA record of a target, so one stale node behind a name shows."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from exporter.support.errors import Outcome, ProbeError


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int, *, all_addresses: bool = True, timeout: float = 5.0) -> list[str]:
    """IP addresses for ``host``, IPv4 first then IPv6, each once; an IP literal is returned as is."""
    if is_ip_literal(host):
        return [host]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), timeout
        )
    except TimeoutError:
        raise ProbeError(f"resolving {host} timed out", Outcome.DNS_ERROR) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise ProbeError(f"cannot resolve {host}: {exc}", Outcome.DNS_ERROR) from None
    seen: dict[str, int] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen.setdefault(str(sockaddr[0]), 0 if family == socket.AF_INET else 1)
    if not seen:
        raise ProbeError(f"{host} has no A or AAAA record", Outcome.DNS_ERROR)
    ordered = sorted(seen, key=lambda ip: seen[ip])  # stable within each family
    return ordered if all_addresses else ordered[:1]
