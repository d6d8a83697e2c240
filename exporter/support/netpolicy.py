"""Where the exporter may connect: `probe.allow` for /probe targets, `fetch.allow`/`fetch.deny` for
the AIA, OCSP and CRL URLs that served certificates name.

A list of patterns holds shell-style globs on host names and CIDR ranges on addresses. A host is
allowed when its name matches a glob (when the list has globs) and *every* address it resolves to
lies in a CIDR range (when the list has ranges): a glob says which names may be asked for, the
ranges say where connections may go, so DNS cannot send a connection where the ranges do not
allow. An IP literal is judged by the ranges (or, in a list without ranges, by the globs, so that
`*` allows everything). A deny list refuses a host whose name matches one of its globs or any of
whose addresses lies in one of its ranges. IPv4-mapped IPv6 addresses are judged as IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from fnmatch import fnmatchcase

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Link-local (where cloud metadata services live) and the metadata endpoints outside it.
DEFAULT_FETCH_DENY: tuple[str, ...] = (
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",  # AWS IMDS over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "168.63.129.16/32",  # Azure WireServer
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
)


def parse_ip(text: str) -> IP | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Patterns:
    """A list of globs and CIDR ranges, split once."""

    globs: tuple[str, ...]
    networks: tuple[Network, ...]

    @classmethod
    def of(cls, patterns: Iterable[str]) -> Patterns:
        globs, networks = [], []
        for p in patterns:
            if "/" in p:
                networks.append(ipaddress.ip_network(p, strict=False))
            else:
                globs.append(p.lower())
        return cls(tuple(globs), tuple(networks))

    def name_matches(self, host: str) -> bool:
        host = host.lower().removesuffix(".")
        return any(fnmatchcase(host, g) for g in self.globs)

    def in_networks(self, ip: IP) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)

    def allows(self, host: str, addresses: Sequence[str]) -> str | None:
        """None when allowed, else why not (naming the host or address)."""
        literal = parse_ip(host)
        if literal is not None:
            if self.networks:
                return None if self.in_networks(literal) else f"address {host} is in no allowed range"
            return None if self.name_matches(host) else f"address {host} matches no allowed pattern"
        if self.globs and not self.name_matches(host):
            return f"host '{host}' matches no allowed name"
        if self.networks:
            for text in addresses:
                ip = parse_ip(text)
                if ip is None or not self.in_networks(ip):
                    return f"host '{host}' resolves to {text}, in no allowed range"
        return None

    def denies(self, host: str, addresses: Sequence[str]) -> str | None:
        """None when nothing here denies ``host``, else why."""
        literal = parse_ip(host)
        if literal is None and self.name_matches(host):
            return f"host '{host}' is denied"
        for text in (host,) if literal is not None else addresses:
            ip = parse_ip(text)
            if ip is not None and self.in_networks(ip):
                return f"address {text} is denied" if text == host else f"host '{host}' resolves to denied {text}"
        return None


_ANY = Patterns.of(("*",))
_DEFAULT_DENY = Patterns.of(DEFAULT_FETCH_DENY)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """`fetch.allow` and `fetch.deny`, plus (for a /probe request) the `probe.allow` list."""

    allow: Patterns = _ANY
    deny: Patterns = _DEFAULT_DENY
    also: Patterns | None = None  # a further allow list every fetch must pass too

    @classmethod
    def of(cls, allow: Iterable[str], deny: Iterable[str]) -> FetchPolicy:
        return cls(Patterns.of(allow), Patterns.of(deny))

    def refuses(self, host: str, addresses: Sequence[str]) -> str | None:
        why = self.deny.denies(host, addresses) or self.allow.allows(host, addresses)
        if why is None and self.also is not None:
            why = self.also.allows(host, addresses)
            if why is not None:
                why += " (probe.allow)"
        return why


# The start of the detail of a probe refused by probe.allow (the handler answers it with 403).
NOT_ALLOWED = "not allowed by probe.allow"

# Set for the duration of one /probe request: its connections and the fetches its certificates
# name must pass `probe.allow` too. A context variable, so that the scheduled probes running at the
# same time (other tasks, other contexts) are not restricted, and nothing between the handler and
# the socket needs a parameter for it.
PROBE_SCOPE: ContextVar[Patterns | None] = ContextVar("probe_scope", default=None)
