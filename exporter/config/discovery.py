"""`discovery:`: scans of networks and ports, and the job every endpoint they find becomes.

A scan (``Scan``) names networks (IPv4 and IPv6 CIDRs), ports and port ranges, ranges to
``exclude``, the protocol of each port (the well-known one by default, else ``tls``), how often
it runs (``interval``), how fast it opens connections (``rate``, new connections per second),
how long one address:port may take (``timeout``), and what the endpoints it finds carry
(``profile``, ``owner``, ``labels``) until they have not been found for ``forget_after``.

Scope = every address of each network (network and broadcast addresses included) times every
port, minus ``exclude``. Load-time refusals, each naming its key: a network that overlaps a
``fetch.deny`` range (metadata services, link-local), an IPv6 network larger than a /112, a
scope that cannot be scanned within the interval at the rate.

The endpoints a scan finds are monitored as ``DiscoveredEndpoint`` jobs of the discovery source
(``exporter.sources.discovery``): each carries ``discovery="<scan>"`` and ``target=address:port``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from exporter.config.discovery_model import (
    DEFAULT_FORGET_AFTER,
    DEFAULT_INTERVAL,
    DEFAULT_RATE,
    DEFAULT_TIMEOUT,
    DISCOVERY_LABEL,
    MAX_IPV6_PREFIX,
    MAX_SCAN_CONNECTIONS,
    MIN_INTERVAL,
    WELL_KNOWN_PORTS,
    Scan,
)
from exporter.config.durations import format_duration
from exporter.config.model import Defaults, Expect, ScanKey
from exporter.config.reader import Reader, _join, _or, did_you_mean
from exporter.support.errors import FileOutcome, Outcome
from exporter.support.netpolicy import Network, Patterns
from exporter.support.protocols import PROTOCOLS

__all__ = ["DISCOVERY_LABEL", "WELL_KNOWN_PORTS", "DiscoveredEndpoint", "Scan", "endpoint_key", "parse_discovery"]

DISCOVERY_KEYS = (
    "name",
    "networks",
    "ports",
    "exclude",
    "protocols",
    "interval",
    "rate",
    "timeout",
    "profile",
    "owner",
    "labels",
    "forget_after",
)
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_PORT_RANGE = re.compile(r"\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?")


def format_address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredEndpoint:
    """An endpoint a scan found with a certificate: monitored like a configured target, by address."""

    scan: str  # the scan's name: the `discovery` label
    ip: str
    port: int
    protocol: str
    owner: str
    labels: tuple[tuple[str, str], ...] = ()  # `discovery` first, then the scan's labels
    interval: float = 300.0
    timeout: float = 10.0
    profile: str = "default"
    key: str = field(init=False, repr=False, compare=False)

    source: ClassVar[str] = "discovery"
    kind: ClassVar[str] = "address"
    served: ClassVar[bool] = True
    unparsable: ClassVar[Outcome | FileOutcome] = Outcome.NO_CERTIFICATE
    sharded: ClassVar[bool] = True  # the replica whose share of the scope found it probes it
    server_name: ClassVar[str | None] = None  # found by address: no name to present or verify
    expect: ClassVar[Expect | None] = None
    label_server_name: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", endpoint_key(self.scan, self.protocol, self.ip, self.port))

    @property
    def target(self) -> str:
        return format_address(self.ip, self.port)

    @property
    def name(self) -> str:
        return self.target

    def location_target(self, location: str) -> str:
        return self.target

    def scan_key(self, location: str) -> ScanKey | None:
        return (self.protocol, location, "")


def endpoint_key(scan: str, protocol: str, ip: str, port: int) -> str:
    """The identity of one address:port of a scan: its job's key, and what ``--shard`` splits by."""
    return f"discovery+{scan}+{protocol}://{format_address(ip, port)}"


def parse_discovery(reader: Reader, raw: object, defaults: Defaults, deny: Sequence[str]) -> tuple[Scan, ...]:
    """`discovery:` -> scans; ``deny`` is `fetch.deny` (a scan may not reach into it)."""
    denied = Patterns.of(deny).networks
    scans: list[Scan] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(reader.sequence(raw, "discovery")):
        path = f"discovery[{index}]"
        scan = _scan(reader, item, path, defaults, denied)
        if scan is None:
            continue
        if scan.name in seen:
            reader.error(_join(path, "name"), f"duplicate of discovery[{seen[scan.name]}] (same name)")
            continue
        seen[scan.name] = index
        scans.append(scan)
    return tuple(scans)


def _scan(reader: Reader, item: object, path: str, defaults: Defaults, denied: Sequence[Network]) -> Scan | None:
    m = reader.mapping(item, path, DISCOVERY_KEYS)
    if m is None:
        return None
    errors = len(reader.errors)
    for required in ("name", "networks", "ports"):
        if required not in m:
            reader.error(path, f"missing required key '{required}'")
    name = reader.string(m, "name", path)
    networks = _networks(reader, m, "networks", path, denied, v6_limit=True)
    exclude = _networks(reader, m, "exclude", path, (), v6_limit=False)
    ports = _ports(reader, m, path)
    protocols = _protocols(reader, m, path, ports)
    interval = reader.duration(m, "interval", path)
    if interval is not None and interval < MIN_INTERVAL:
        reader.error(_join(path, "interval"), f"must be at least {format_duration(MIN_INTERVAL)}")
        interval = None
    timeout = reader.duration(m, "timeout", path)
    forget_after = reader.duration(m, "forget_after", path)
    rate = _rate(reader, m, path)
    scan = Scan(
        name=name or "",
        networks=networks,
        ports=ports,
        exclude=exclude,
        protocols=protocols,
        interval=_or(interval, DEFAULT_INTERVAL),
        rate=_or(rate, DEFAULT_RATE),
        timeout=_or(timeout, DEFAULT_TIMEOUT),
        profile=_or(reader.profile_ref(m, "profile", path), defaults.profile),
        owner=_or(reader.string(m, "owner", path, empty_ok=True), defaults.owner),
        labels=_or(reader.labels(m, path), ()),
        forget_after=_or(forget_after, DEFAULT_FORGET_AFTER),
    )
    if len(reader.errors) > errors:
        return None
    if scan.timeout > scan.interval:
        reader.error(
            _join(path, "timeout"),
            f"timeout ({format_duration(scan.timeout)}) must not exceed interval ({format_duration(scan.interval)})",
        )
        return None
    needed = scan.seconds_needed()
    if needed > scan.interval:
        reader.error(
            path,
            f"scope of {scan.scope:,} address:port pairs takes {format_duration(math.ceil(needed))} at rate "
            f"{scan.rate:g}/s{_capped(scan)}, longer than interval {format_duration(scan.interval)} "
            "(raise rate or interval, or narrow networks or ports)",
        )
        return None
    return scan


def _networks(
    reader: Reader, m: dict[str, object], key: str, path: str, denied: Sequence[Network], *, v6_limit: bool
) -> tuple[Network, ...]:
    if key not in m:
        return ()
    where = _join(path, key)
    items = reader.sequence(m[key], where)
    if key == "networks" and not items and isinstance(m[key], list):
        reader.error(where, "must list at least one network")
    found: list[Network] = []
    for i, entry in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(entry, str) or not entry.strip():
            reader.error(at, "expected a CIDR network such as 10.0.0.0/24 or 2001:db8::/120")
            continue
        text = entry.strip()
        try:
            net = ipaddress.ip_network(text)
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                reader.error(at, f"invalid CIDR network '{text}' ({exc})")
            else:
                reader.error(at, f"'{text}' has host bits set (did you mean {loose}?)")
            continue
        if v6_limit and net.version == 6 and net.prefixlen < MAX_IPV6_PREFIX:
            reader.error(
                at,
                f"IPv6 network {net} is larger than a /{MAX_IPV6_PREFIX} ({net.num_addresses:,} addresses): "
                f"list the /{MAX_IPV6_PREFIX} (or smaller) networks to scan explicitly",
            )
            continue
        if net.version == 6 and net.overlaps(_IPV4_MAPPED):  # would reach IPv4 addresses, past fetch.deny
            reader.error(at, f"{net} holds IPv4-mapped addresses ({_IPV4_MAPPED}): write the IPv4 network instead")
            continue
        overlap = next((d for d in denied if d.version == net.version and d.overlaps(net)), None)
        if overlap is not None:
            common = net if net.prefixlen >= overlap.prefixlen else overlap
            reader.error(at, f"{net} overlaps fetch.deny range {overlap}: {common} must never be scanned")
            continue
        found.append(net)
    return tuple(found)


def _ports(reader: Reader, m: dict[str, object], path: str) -> tuple[int, ...]:
    if "ports" not in m:
        return ()
    where = _join(path, "ports")
    items = reader.sequence(m["ports"], where)
    if not items and isinstance(m["ports"], list):
        reader.error(where, "must list at least one port")
    ports: set[int] = set()
    for i, entry in enumerate(items):
        at = f"{where}[{i}]"
        text = str(entry) if isinstance(entry, int | str) and not isinstance(entry, bool) else None
        match = None if text is None else _PORT_RANGE.fullmatch(text)
        if match is None:
            reader.error(at, f'invalid port {entry!r} (a port such as 443, or a range such as "8000-8100")')
            continue
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else first
        if not 1 <= first <= 65535 or not 1 <= last <= 65535:
            reader.error(at, f"invalid port '{text}' (1-65535)")
        elif last < first:
            reader.error(at, f"invalid port range '{text}' (the first port must not exceed the last)")
        else:
            ports.update(range(first, last + 1))
    return tuple(sorted(ports))


def _protocols(reader: Reader, m: dict[str, object], path: str, ports: Sequence[int]) -> tuple[tuple[int, str], ...]:
    if "protocols" not in m:
        return ()
    where = _join(path, "protocols")
    raw = m["protocols"]
    if not isinstance(raw, dict):
        reader.error(where, "expected a mapping of port to protocol, e.g. {8443: https, 2525: smtp}")
        return ()
    found: list[tuple[int, str]] = []
    names = sorted(PROTOCOLS)
    for port, protocol in raw.items():
        # (Errors point at the mapping: a path ending in a number reads as a list index.)
        number = port if isinstance(port, int) and not isinstance(port, bool) else None
        if isinstance(port, str) and port.strip().isdigit():
            number = int(port)
        if number is None or not 1 <= number <= 65535:
            reader.error(where, f"invalid port {port!r} (1-65535)")
            continue
        if number not in ports:
            reader.error(where, f"port {number} is not in ports")
            continue
        if not isinstance(protocol, str) or protocol.strip().lower() not in PROTOCOLS:
            hint = did_you_mean(protocol, names)
            reader.error(where, f"port {number}: unknown protocol {protocol!r}{hint} (one of {', '.join(names)})")
            continue
        found.append((number, protocol.strip().lower()))
    return tuple(sorted(found))


def _capped(scan: Scan) -> str:
    if scan.worst_rate >= scan.rate:
        return ""
    return (
        f" ({scan.worst_rate:.0f}/s when the hosts are silent: at most {MAX_SCAN_CONNECTIONS:,} connections "
        f"wait out their {format_duration(scan.timeout)} timeout at once)"
    )


def _rate(reader: Reader, m: dict[str, object], path: str) -> float | None:
    if "rate" not in m:
        return None
    value = m["rate"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1_000_000:
        reader.error(_join(path, "rate"), f"expected new connections per second, a number above 0 (got {value!r})")
        return None
    return float(value)
