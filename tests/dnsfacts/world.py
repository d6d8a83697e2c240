"""A real DNS on loopback: Knot DNS (knotd) authoritative for the test zones, signing the ones that
should be signed (DNSSEC, ECDSA P-256, keys made at start), and Unbound as the validating resolver
with the signed zones' KSKs as its trust anchors and a stub zone per test zone pointing at knotd.

Every file (configuration, zones, key database, logs) lives in the test's directory and every port
is taken on 127.0.0.53 (knotd) and 127.0.0.54 (unbound). The root is a stub to knotd as well, which
refuses it: no query can leave loopback. ``stop()`` stops both processes by their own PID.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
from e2e.harness import ManagedProcess, require_binary

AUTH_HOST = "127.0.0.53"
RESOLVER_HOST = "127.0.0.54"
START_TIMEOUT = 30.0
# A DNSKEY no zone is signed with: the trust anchor of a zone that must fail validation (SERVFAIL).
WRONG_KSK = "257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="


@dataclass
class Zone:
    origin: str  # "test."
    records: list[str]  # zone file lines after the SOA and NS, names relative to the origin or absolute
    signed: bool = True
    anchor_wrong_key: bool = False  # signed, but the resolver trusts another key: every answer is bogus


def free_udp_tcp_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host`` (bound, then released)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError(f"no free UDP+TCP port on {host}")


def _query(name: str, rdtype: str, host: str, port: int) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, want_dnssec=True, payload=1232)
    q.flags |= dns.flags.AD
    return dns.query.udp(q, host, port=port, timeout=2)


@dataclass
class DnsWorld:
    workdir: Path
    zones: list[Zone]
    auth_port: int = 0
    resolver_port: int = 0
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def resolver(self) -> str:
        """The `dns.resolver` value of the exporter's configuration."""
        return f"{RESOLVER_HOST}:{self.resolver_port}"

    def start(self) -> DnsWorld:
        knotd = require_binary("knotd", "knot")
        unbound = require_binary("unbound", "unbound")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.auth_port = free_udp_tcp_port(AUTH_HOST)
        self.resolver_port = free_udp_tcp_port(RESOLVER_HOST)
        try:
            self._start_knot(knotd)
            anchors = self._anchors()
            self._start_unbound(unbound, anchors)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(p.output() for p in self.processes)

    # -- knotd -------------------------------------------------------------------------------

    def _start_knot(self, knotd: str) -> None:
        d = self.workdir
        (d / "knot-db").mkdir(exist_ok=True)
        zones = []
        for zone in self.zones:
            file = d / f"{zone.origin.rstrip('.') or 'root'}.zone"
            head = [
                "$TTL 60",
                f"@ SOA ns.{zone.origin} hostmaster.{zone.origin} 1 3600 600 86400 60",
                f"@ NS ns.{zone.origin}",
                f"ns A {AUTH_HOST}",
            ]
            file.write_text("\n".join([*head, *zone.records]) + "\n")
            signing = "    dnssec-signing: on\n    dnssec-policy: fast\n" if zone.signed else ""
            zones.append(f'  - domain: "{zone.origin}"\n    file: "{file}"\n{signing}')
        (d / "knot.conf").write_text(
            "server:\n"
            f'    rundir: "{d}"\n'
            f"    listen: {AUTH_HOST}@{self.auth_port}\n"
            f'    pidfile: "{d}/knot.pid"\n'
            "control:\n"
            f'    listen: "{d}/knot.sock"\n'
            "database:\n"
            f'    storage: "{d}/knot-db"\n'
            "log:\n"
            "  - target: stderr\n"
            "    any: info\n"
            "policy:\n"
            "  - id: fast\n"
            "    algorithm: ecdsap256sha256\n"
            "zone:\n" + "".join(zones)
        )
        proc = ManagedProcess("knotd", [knotd, "-c", str(d / "knot.conf")], d)
        self.processes.append(proc)
        for zone in self.zones:
            self._wait(zone.origin, AUTH_HOST, self.auth_port, proc, signed=zone.signed, secure=False)

    def _anchors(self) -> list[str]:
        """``trust-anchor:`` lines: each signed zone's KSK as knotd serves it (or a wrong one)."""
        lines = []
        for zone in self.zones:
            if not zone.signed:
                continue
            key = WRONG_KSK if zone.anchor_wrong_key else self._ksk(zone.origin)
            lines.append(f'    trust-anchor: "{zone.origin} DNSKEY {key}"')
        return lines

    def _ksk(self, origin: str) -> str:
        r = _query(origin, "DNSKEY", AUTH_HOST, self.auth_port)
        rrset = r.find_rrset(r.answer, dns.name.from_text(origin), dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        return next(str(k) for k in rrset if k.flags == 257)

    # -- unbound -----------------------------------------------------------------------------

    def _start_unbound(self, unbound: str, anchors: list[str]) -> None:
        d = self.workdir
        stubs = "".join(
            f'stub-zone:\n    name: "{origin}"\n    stub-addr: {AUTH_HOST}@{self.auth_port}\n'
            for origin in [".", *(z.origin for z in self.zones)]
        )
        nodefault = "".join(f'    local-zone: "{z.origin}" nodefault\n' for z in self.zones)
        (d / "unbound.conf").write_text(
            "server:\n"
            f"    interface: {RESOLVER_HOST}@{self.resolver_port}\n"
            "    do-ip6: no\n"
            "    do-daemonize: no\n"
            '    username: ""\n'
            '    chroot: ""\n'
            f'    directory: "{d}"\n'
            f'    pidfile: "{d}/unbound.pid"\n'
            "    use-syslog: no\n"
            '    logfile: ""\n'
            "    verbosity: 1\n"
            "    val-log-level: 2\n"
            "    num-threads: 1\n"
            "    access-control: 127.0.0.0/8 allow\n"
            "    do-not-query-localhost: no\n"
            '    module-config: "validator iterator"\n' + "\n".join(anchors) + "\n" + nodefault + stubs + ""
            "remote-control:\n"
            "    control-enable: no\n"
        )
        proc = ManagedProcess("unbound", [unbound, "-d", "-c", str(d / "unbound.conf")], d)
        self.processes.append(proc)
        for zone in self.zones:
            if not zone.anchor_wrong_key:
                self._wait(zone.origin, RESOLVER_HOST, self.resolver_port, proc, signed=zone.signed, secure=True)

    def _wait(self, origin: str, host: str, port: int, proc: ManagedProcess, *, signed: bool, secure: bool) -> None:
        """Until ``host`` answers the zone's SOA (signed, and validated when ``secure``)."""
        end = time.monotonic() + START_TIMEOUT
        last = "no answer"
        while time.monotonic() < end:
            if proc.popen.poll() is not None:
                raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}\n{self.logs()}")
            try:
                r = _query(origin, "SOA", host, port)
            except (OSError, dns.exception.DNSException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                has_sig = any(rr.rdtype == dns.rdatatype.RRSIG for rr in r.answer)
                validated = bool(r.flags & dns.flags.AD)
                if r.answer and (not signed or has_sig) and (not secure or validated == signed):
                    return
                last = f"rcode {r.rcode()}, flags {dns.flags.to_text(r.flags)}, {len(r.answer)} RRsets"
            time.sleep(0.1)
        raise AssertionError(f"{proc.name} did not serve {origin} within {START_TIMEOUT:g}s ({last})\n{self.logs()}")


__all__ = ["AUTH_HOST", "RESOLVER_HOST", "DnsWorld", "Zone", "free_udp_tcp_port"]
