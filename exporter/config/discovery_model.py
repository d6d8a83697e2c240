"""The validated `discovery:` scans (built only by ``exporter.config.discovery``).

Scope = every address of each network (network and broadcast addresses included) times every
port, minus ``exclude``; ``ranges`` holds it as merged integer ranges, made once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

from exporter.support.netpolicy import Network

# The protocol of a port with no `protocols:` entry; any other port speaks implicit TLS (`tls`).
WELL_KNOWN_PORTS: dict[int, str] = {
    443: "https",
    25: "smtp",
    587: "submission",
    143: "imap",
    993: "imaps",
    110: "pop3",
    995: "pop3s",
    389: "ldap",
    636: "ldaps",
    21: "ftp",
    990: "ftps",
    5432: "postgres",
    3306: "mysql",
    5222: "xmpp",
    5061: "sips",
}
DEFAULT_INTERVAL = 24 * 3600.0
MIN_INTERVAL = 10.0
DEFAULT_RATE = 200.0
DEFAULT_TIMEOUT = 3.0
DEFAULT_FORGET_AFTER = 7 * 86400.0
MAX_IPV6_PREFIX = 112  # an IPv6 network must be a /112 (65,536 addresses) or smaller
# Connections of one run open at once, at most. A silent host holds one for the whole timeout, so
# a run opens at most MAX_SCAN_CONNECTIONS / timeout new connections a second whatever its rate.
MAX_SCAN_CONNECTIONS = 1024
DISCOVERY_LABEL = "discovery"  # the label of a discovered endpoint's series: its scan's name


def _span(network: Network) -> tuple[int, int, int]:
    """(IP version, first address, last address) as integers."""
    return network.version, int(network.network_address), int(network.broadcast_address)


def _subtract(ranges: list[tuple[int, int]], cut: tuple[int, int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    lo, hi = cut
    for a, b in ranges:
        if b < lo or a > hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo - 1))
        if b > hi:
            out.append((hi + 1, b))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    name: str
    networks: tuple[Network, ...]
    ports: tuple[int, ...]  # sorted, each once
    exclude: tuple[Network, ...] = ()
    protocols: tuple[tuple[int, str], ...] = ()  # the `protocols:` entries (port, protocol)
    interval: float = DEFAULT_INTERVAL
    rate: float = DEFAULT_RATE  # new connections per second
    timeout: float = DEFAULT_TIMEOUT  # one address:port: connect, dialogue and handshake
    profile: str = "default"
    owner: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    forget_after: float = DEFAULT_FORGET_AFTER
    # (IP version, first, last) of the addresses in scope: networks merged, `exclude` cut out.
    ranges: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)
    _protocol_of: dict[int, str] = field(init=False, repr=False, compare=False)  # every port's protocol

    def __post_init__(self) -> None:
        spans: list[tuple[int, int, int]] = []
        for version in (4, 6):
            ranges = _merge([(a, b) for v, a, b in map(_span, self.networks) if v == version])
            for net in self.exclude:
                v, lo, hi = _span(net)
                if v == version:
                    ranges = _subtract(ranges, (lo, hi))
            spans += [(version, a, b) for a, b in ranges]
        object.__setattr__(self, "ranges", tuple(spans))
        given = dict(self.protocols)
        protocol_of = {port: given.get(port) or WELL_KNOWN_PORTS.get(port, "tls") for port in self.ports}
        object.__setattr__(self, "_protocol_of", protocol_of)

    def protocol(self, port: int) -> str:
        """The protocol spoken on ``port``: its `protocols:` entry, else the well-known one, else `tls`."""
        return self._protocol_of.get(port) or WELL_KNOWN_PORTS.get(port, "tls")

    @property
    def addresses(self) -> int:
        return sum(b - a + 1 for _, a, b in self.ranges)

    @property
    def scope(self) -> int:
        """Address x port pairs in scope (``tls_discovery_scope``)."""
        return self.addresses * len(self.ports)

    def covers(self, ip: str) -> bool:
        """``ip`` lies in one of the networks and in no excluded range."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        value = int(address)
        return any(v == address.version and a <= value <= b for v, a, b in self.ranges)

    def iter_addresses(self) -> Iterator[str]:
        """Every address in scope, in order (IPv4 first), as text."""
        for version, a, b in self.ranges:
            make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
            for value in range(a, b + 1):
                yield str(make(value))

    @property
    def worst_rate(self) -> float:
        """New connections a second when every host is silent: ``rate``, or less when ``rate`` x
        ``timeout`` connections would be more than MAX_SCAN_CONNECTIONS at once."""
        return min(self.rate, MAX_SCAN_CONNECTIONS / self.timeout)

    def seconds_needed(self) -> float:
        """How long a run of the whole scope takes at most: the last connection at ``worst_rate``,
        plus its timeout."""
        return self.scope / self.worst_rate + self.timeout
