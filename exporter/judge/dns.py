"""DNS lookups for DANE (TLSA) and CAA, through the resolver of ``dns.resolver`` (or the system's).

Queries are dnspython's asyncio stub (``dns.asyncquery``), with recursion desired, the DO bit set
(DNSSEC) and the AD bit asked for (RFC 6840 section 5.7), so that a validating resolver says
whether it validated the answer. What the probe is told about an answer (``Answer``) is what the
resolver said: the records, the owner name after CNAMEs, and the AD bit.

Every lookup:

- runs under the probe's ``Deadline`` (the caller's), and each query under what is left of it;
- is kept until its TTL runs out (``MAX_TTL`` at most; a negative answer its SOA minimum), in a
  cache bounded in bytes (``MAX_CACHE_BYTES``, least recently used out first);
- is made once for concurrent callers (single-flight): every address of a target asks for the same
  names at the same moment, and one query answers them all;
- is bounded: at most ``MAX_RECORDS`` records and ``MAX_ANSWER_BYTES`` of record data, at most
  ``MAX_CNAMES`` CNAMEs, a CNAME loop stops the walk. A truncated UDP answer is asked again over
  TCP; SERVFAIL, REFUSED, a timeout, a loop or an answer past the bounds raise ``DnsError``: the
  assessment's ``dns`` step could not be judged, never a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CAA
import dns.rdtypes.ANY.TLSA
import dns.resolver

from exporter.certs.caa import CAA
from exporter.certs.dane import TLSA, tlsa_name
from exporter.support.deadline import Deadline
from exporter.support.fileio import in_file_thread

MAX_TTL = 3600.0
NEGATIVE_TTL = 60.0  # a negative answer without an SOA
MAX_RECORDS = 64
MAX_ANSWER_BYTES = 16 * 1024
MAX_CACHE_BYTES = 4 * 1024 * 1024
MAX_CNAMES = 8
EDNS_PAYLOAD = 1232  # the DNS flag day 2020 size: no IP fragments

Server = tuple[str, int]  # (IP address, port)
Record = TLSA | CAA


class DnsError(Exception):
    """A lookup that gave no usable answer (SERVFAIL, timeout, loop, too large ...)."""


@dataclass(frozen=True, slots=True)
class Answer:
    qname: str  # what was asked
    name: str  # the owner name of the records, after CNAMEs
    records: tuple[Record, ...]
    secure: bool  # the AD bit: the resolver validated the answer with DNSSEC
    rcode: str  # NOERROR or NXDOMAIN
    ttl: float
    size: int  # bytes of record data, what the cache counts

    @property
    def cnames(self) -> bool:
        return self.name != self.qname


def _to_record(rdata: dns.rdata.Rdata) -> Record | None:
    if isinstance(rdata, dns.rdtypes.ANY.TLSA.TLSA):
        return TLSA(int(rdata.usage), int(rdata.selector), int(rdata.mtype), bytes(rdata.cert))
    if isinstance(rdata, dns.rdtypes.ANY.CAA.CAA):
        tag = bytes(rdata.tag).decode("ascii", "replace").lower()
        return CAA(int(rdata.flags), tag, bytes(rdata.value).decode("utf-8", "replace"))
    return None


def read_answer(qname: str, rdtype: dns.rdatatype.RdataType, response: dns.message.Message) -> Answer:
    """The records of ``rdtype`` for ``qname`` in a recursive resolver's response, after the CNAMEs
    in its answer section; raises DnsError for an error, a CNAME loop or an answer past the bounds."""
    rcode = response.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DnsError(f"the resolver answered {dns.rcode.to_text(rcode)}")
    name = dns.name.from_text(qname)
    seen = {name}
    ttl = MAX_TTL
    records: list[Record] = []
    size = 0
    while True:
        found = response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)
        if found is not None:
            ttl = min(ttl, found.ttl)
            if len(found) > MAX_RECORDS:
                raise DnsError(f"{len(found)} {rdtype.name} records at {name}, more than {MAX_RECORDS}")
            for rdata in found:
                size += len(rdata.to_wire())
                record = _to_record(rdata)
                if record is not None:
                    records.append(record)
            if size > MAX_ANSWER_BYTES:
                raise DnsError(f"{size} bytes of {rdtype.name} records at {name}, more than {MAX_ANSWER_BYTES}")
            break
        cname = response.get_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            break
        ttl = min(ttl, cname.ttl)
        target = cname[0].target
        if target in seen:
            raise DnsError(f"CNAME loop: {name} -> {target}")
        if len(seen) > MAX_CNAMES:
            raise DnsError(f"more than {MAX_CNAMES} CNAMEs from {qname}")
        seen.add(target)
        name = target
    if not records:
        soa = next((r for r in response.authority if r.rdtype == dns.rdatatype.SOA), None)
        ttl = min(ttl, NEGATIVE_TTL if soa is None else min(soa.ttl, soa[0].minimum))
    secure = bool(response.flags & dns.flags.AD)
    return Answer(
        qname=qname,
        name=name.to_text(),
        records=tuple(records),
        secure=secure,
        rcode=dns.rcode.to_text(rcode),
        ttl=max(0.0, float(ttl)),
        size=size + len(qname) + 64,
    )


class DnsLookup:
    """TLSA and CAA lookups with a TTL cache bounded in bytes and single-flight queries."""

    def __init__(self, *, max_cache_bytes: int = MAX_CACHE_BYTES) -> None:
        self.max_cache_bytes = max_cache_bytes
        self._cache: OrderedDict[tuple[tuple[Server, ...], str, int], tuple[float, Answer]] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[tuple[tuple[Server, ...], str, int], asyncio.Future[Answer]] = {}
        self._system: tuple[Server, ...] | None = None
        self.queries = 0  # queries sent (for tests: single-flight and the cache)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        self._inflight.clear()

    async def tlsa(self, name: str, servers: Sequence[Server], deadline: Deadline) -> Answer:
        """The TLSA records at ``name`` (``_25._tcp.mx.example.com.``), CNAMEs followed."""
        return await self.lookup(name, dns.rdatatype.TLSA, servers, deadline)

    async def tlsa_for(self, host: str, port: int, servers: Sequence[Server], deadline: Deadline) -> Answer:
        """The TLSA records of a service (RFC 7671 section 7, RFC 7672 section 2.2.2): when the host's
        address lookup follows CNAMEs and validates, the records at ``_port._tcp.<final name>`` come
        first; when there are none there (or the expansion is not secure), those of the host's name.
        ``Answer.qname`` says which name answered."""
        own = tlsa_name(host, port)
        try:
            address = await self.lookup(host.rstrip(".") + ".", dns.rdatatype.A, servers, deadline)
        except DnsError:
            address = None  # the TLSA lookup of the host's own name says what is wrong
        if address is not None and address.cnames and address.secure:
            expanded = await self.tlsa(tlsa_name(address.name, port), servers, deadline)
            if expanded.records:
                return expanded
        return await self.tlsa(own, servers, deadline)

    async def caa(self, host: str, servers: Sequence[Server], deadline: Deadline) -> Answer | None:
        """The relevant CAA set of ``host`` (RFC 8659 section 3): the first non-empty set on the name
        or, climbing, on its parents (the root excluded); None when there is none."""
        labels = host.rstrip(".").split(".")
        for i in range(len(labels)):
            answer = await self.lookup(".".join(labels[i:]) + ".", dns.rdatatype.CAA, servers, deadline)
            if answer.records:
                return answer
        return None

    async def lookup(
        self, qname: str, rdtype: dns.rdatatype.RdataType, servers: Sequence[Server], deadline: Deadline
    ) -> Answer:
        where = tuple(servers) or await self._system_servers()
        key = (where, qname.lower(), int(rdtype))
        hit = self._cache.get(key)
        if hit is not None:
            if hit[0] > time.monotonic():
                self._cache.move_to_end(key)
                return hit[1]
            self._evict(key)
        task = self._inflight.get(key)
        if task is None:
            # Bounded by the first caller's time; later callers share it (and keep their own deadline).
            budget = deadline.left()
            task = asyncio.ensure_future(self._resolve(qname, rdtype, where, budget))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        return await deadline.run(asyncio.shield(task))

    def _done(self, key: tuple[tuple[Server, ...], str, int], task: asyncio.Future[Answer]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled() or task.exception() is not None:  # retrieved: no "never retrieved" noise
            return
        answer = task.result()
        if answer.ttl <= 0 or answer.size > self.max_cache_bytes:
            return
        self._evict(key)
        self._cache[key] = (time.monotonic() + answer.ttl, answer)
        self._bytes += answer.size
        while self._bytes > self.max_cache_bytes and self._cache:
            self._evict(next(iter(self._cache)))

    def _evict(self, key: tuple[tuple[Server, ...], str, int]) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._bytes -= old[1].size

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    async def _system_servers(self) -> tuple[Server, ...]:
        if self._system is None:
            try:
                conf = await in_file_thread(dns.resolver.Resolver)
            except dns.resolver.NoResolverConfiguration as exc:
                raise DnsError(f"no system resolver: {exc}; set dns.resolver") from exc
            self._system = tuple((str(ns), int(conf.port)) for ns in conf.nameservers)
        if not self._system:
            raise DnsError("the system names no resolver; set dns.resolver")
        return self._system

    async def _resolve(
        self, qname: str, rdtype: dns.rdatatype.RdataType, servers: tuple[Server, ...], budget: float
    ) -> Answer:
        """Ask the servers in turn (each gets its share of the time left) until one answers."""
        end = time.monotonic() + budget
        failures = []
        for i, (address, port) in enumerate(servers):
            left = end - time.monotonic()
            if left <= 0:
                break
            share = left / (len(servers) - i)
            try:
                async with asyncio.timeout(share):
                    response = await self._query(qname, rdtype, address, port, share)
                return read_answer(qname, rdtype, response)
            except (TimeoutError, dns.exception.Timeout):
                failures.append(f"{address}:{port}: no answer within {share:.1f}s")
            except DnsError as exc:
                failures.append(f"{address}:{port}: {exc}")
            except (OSError, dns.exception.DNSException) as exc:
                failures.append(f"{address}:{port}: {type(exc).__name__}: {exc}")
        raise DnsError(f"{qname} {rdtype.name}: " + ("; ".join(failures) or "no time left to ask"))

    async def _query(
        self, qname: str, rdtype: dns.rdatatype.RdataType, address: str, port: int, timeout: float
    ) -> dns.message.Message:
        query = dns.message.make_query(qname, rdtype, want_dnssec=True, payload=EDNS_PAYLOAD)
        query.flags |= dns.flags.AD
        self.queries += 1
        response = await dns.asyncquery.udp(query, address, timeout=timeout, port=port)
        if response.flags & dns.flags.TC:
            self.queries += 1
            response = await dns.asyncquery.tcp(query, address, timeout=timeout, port=port)
            if response.flags & dns.flags.TC:
                raise DnsError("the answer is truncated even over TCP")
        return response


__all__ = ["Answer", "DnsError", "DnsLookup", "Server", "read_answer"]
