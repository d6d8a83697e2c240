"""The discovery source: scan `discovery:` networks and ports, and monitor what answered.

A run of a scan goes through every address:port pair of its scope (its networks times its
ports, minus ``exclude``; with ``--shard`` only this replica's share, split by the same key as
the endpoints' jobs), opening at most ``rate`` new connections a second (a token bucket) and
at most ``concurrency`` at once. A pair whose connection is accepted then runs the normal probe
path of its port's protocol (the STARTTLS dialogue, the handshake) under the scan's ``timeout``,
so every pair ends in one handshake outcome (``connection_refused``, ``connect_timeout``,
``not_tls``, ``handshake_failed``, ``no_certificate``, ``certificate_found`` ...).

``Discovery`` keeps what the runs found, across reloads: per scan, the endpoints whose
connection was accepted (first and last seen, last outcome, the leaf's facts) and the last run.
Every endpoint that answered with a certificate is a ``DiscoveredEndpoint`` job of the
``DiscoverySource`` (monitored like a configured target, through the TLS source) until it has
not been found for the scan's ``forget_after``.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from cryptography import x509

from exporter.config.discovery import DISCOVERY_LABEL, DiscoveredEndpoint, Scan, endpoint_key, format_address
from exporter.config.model import Config, Job, Profile, Target
from exporter.results import Observation
from exporter.sources.tls import TLSSource
from exporter.support.deadline import Deadline
from exporter.support.errors import Outcome, ProbeError
from exporter.support.protocols import PROTOCOLS
from exporter.support.steplog import StepLog
from exporter.tls.hello import Opener
from exporter.tls.session import handshake, open_plain

log = logging.getLogger(__name__)
MAX_CONCURRENCY = 1024  # connections of one run open at once, at most
ACCEPTED = "accepted"  # (a pair whose TCP connection was accepted: not refused, not timed out)


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateSummary:
    """The leaf an endpoint served when it was found."""

    subject: str  # RFC 4514
    not_before: float
    not_after: float
    serial: str  # lowercase hex
    fingerprint_sha256: str  # lowercase hex, no colons


def summarise(der: bytes) -> CertificateSummary | None:
    with warnings.catch_warnings():  # a negative serial warns; it is still a certificate
        warnings.simplefilter("ignore")
        try:
            cert = x509.load_der_x509_certificate(der)
            return CertificateSummary(
                subject=cert.subject.rfc4514_string(),
                not_before=cert.not_valid_before_utc.timestamp(),
                not_after=cert.not_valid_after_utc.timestamp(),
                serial=format(cert.serial_number, "x"),
                fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            )
        except ValueError:
            return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PairResult:
    """What one address:port of a run gave."""

    ip: str
    port: int
    protocol: str
    outcome: Outcome
    accepted: bool  # the TCP connection was accepted
    certificates: tuple[bytes, ...] = ()  # served (leaf first), also when the handshake then failed
    detail: str = ""
    at: float = 0.0  # unix time the pair was tried


Probe = Callable[[str, int, str, float], Awaitable[PairResult]]


async def probe_pair(ip: str, port: int, protocol: str, timeout: float) -> PairResult:
    """Connect to ``ip:port``; if accepted, run the protocol's dialogue and the TLS handshake; all
    within ``timeout``. Never raises (but for cancellation): the outcome says what happened."""
    deadline, steps, at = Deadline(timeout), StepLog(), time.time()
    try:
        opened = await open_plain(ip, port, deadline, steps)
    except ProbeError as exc:
        return PairResult(
            ip=ip, port=port, protocol=protocol, outcome=exc.outcome, accepted=False, detail=exc.detail, at=at
        )
    try:
        _, chain = await handshake(
            ip,
            port,
            server_name="",
            starttls=PROTOCOLS[protocol].starttls,
            deadline=deadline,
            steps=steps,
            opened=opened,
        )
        outcome, detail = Outcome.CERTIFICATE_FOUND, ""
    except ProbeError as exc:
        outcome, chain, detail = exc.outcome, exc.certificates, exc.detail
    except Exception as exc:  # a bug costs one pair, never the run
        log.exception("discovery probe of %s failed unexpectedly", format_address(ip, port))
        outcome, chain, detail = Outcome.NETWORK_ERROR, (), f"internal error: {exc!r}"
    return PairResult(
        ip=ip, port=port, protocol=protocol, outcome=outcome, accepted=True, certificates=chain, detail=detail, at=at
    )


class TokenBucket:
    """At most ``rate`` takes a second on average, ``burst`` at once (the connection rate)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate, self.burst = rate, max(1.0, burst)
        self.clock, self.sleep = clock, sleep
        self.tokens, self.last = 1.0, clock()

    async def take(self) -> None:
        while True:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1.0 - 1e-9:  # (a wait of exactly (1 - tokens) / rate may land a hair short)
                self.tokens = max(0.0, self.tokens - 1.0)
                return
            await self.sleep((1.0 - self.tokens) / self.rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """One run of a scan: the outcome of every pair it tried, and the pairs that were accepted."""

    scope: int  # pairs tried (this replica's share of the scope)
    outcomes: Mapping[str, int]  # handshake outcome -> pairs
    accepted: tuple[PairResult, ...]


def concurrency_for(scan: Scan, cap: int = MAX_CONCURRENCY) -> int:
    """Enough connections at once for the rate when every pair waits its whole timeout, up to ``cap``."""
    return max(1, min(cap, math.ceil(scan.rate * scan.timeout) + 1))


async def run_scan(
    scan: Scan,
    *,
    owns: Callable[[str], bool] = lambda key: True,
    probe: Probe = probe_pair,
    bucket: TokenBucket | None = None,
    concurrency: int | None = None,
) -> RunResult:
    """Try every pair of ``scan``'s scope this replica ``owns``; never an address outside it."""
    bucket = bucket or TokenBucket(scan.rate, burst=max(1.0, scan.rate / 20))
    slots = asyncio.Semaphore(concurrency or concurrency_for(scan))
    outcomes: Counter[str] = Counter()
    accepted: list[PairResult] = []
    tasks: set[asyncio.Task[None]] = set()
    tried = 0

    async def one(ip: str, port: int, protocol: str) -> None:
        try:
            result = await probe(ip, port, protocol, scan.timeout)
            outcomes[result.outcome.value] += 1
            if result.accepted:
                accepted.append(result)
        finally:
            slots.release()

    try:
        for ip in scan.iter_addresses():
            for port in scan.ports:
                protocol = scan.protocol(port)
                if not owns(endpoint_key(scan.name, protocol, ip, port)):
                    continue
                await slots.acquire()
                try:
                    await bucket.take()
                except BaseException:
                    slots.release()
                    raise
                tried += 1
                task = asyncio.create_task(one(ip, port, protocol))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        pending = list(tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return RunResult(scope=tried, outcomes=MappingProxyType(dict(outcomes)), accepted=tuple(accepted))


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """An address:port of a scan whose connection was accepted, as last found."""

    ip: str
    port: int
    protocol: str
    outcome: Outcome
    first_seen: float
    last_seen: float  # the last run that found it (connection accepted)
    certificate: CertificateSummary | None  # the leaf served when last found; None: none served
    had_certificate: bool  # it served a certificate at some run: it is monitored

    @property
    def address(self) -> str:
        return format_address(self.ip, self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    started: float  # unix time
    finished: float
    duration: float  # seconds
    scope: int  # pairs tried
    outcomes: Mapping[str, int]
    ok: bool = True  # False: the run stopped on an error on the exporter's side
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanState:
    endpoints: Mapping[tuple[str, int], Endpoint] = field(default_factory=lambda: MappingProxyType({}))
    last_run: RunRecord | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunChanges:
    """What a run changed: for the discovery e-mail and the log."""

    scan: str
    run: RunRecord
    endpoints: tuple[Endpoint, ...]  # every endpoint known after the run (found now or not yet forgotten)
    new: tuple[Endpoint, ...]  # found for the first time
    vanished: tuple[Endpoint, ...]  # forgotten by this run (not found for forget_after)


class Discovery:
    """What the scans found, kept across reloads. Its state is replaced whole at each change, so
    readers in other threads (the scrape, the JSON API) always see one consistent snapshot."""

    def __init__(self) -> None:
        self._scans: Mapping[str, ScanState] = MappingProxyType({})

    def snapshot(self) -> Mapping[str, ScanState]:
        return self._scans

    def state(self, name: str) -> ScanState:
        return self._scans.get(name) or ScanState()

    def retain(self, scans: Sequence[Scan]) -> None:
        """After a reload: scans gone are dropped, and endpoints a scan no longer covers (its
        networks, exclude or ports changed) are forgotten; everything else is kept."""
        kept: dict[str, ScanState] = {}
        for scan in scans:
            state = self._scans.get(scan.name)
            if state is None:
                continue
            endpoints = {k: e for k, e in state.endpoints.items() if e.port in scan.ports and scan.covers(e.ip)}
            kept[scan.name] = replace(state, endpoints=MappingProxyType(endpoints))
        self._scans = MappingProxyType(kept)

    def record(
        self, scan: Scan, result: RunResult | None, started: float, finished: float, error: str = ""
    ) -> RunChanges:
        """Merge a run (``result`` None: it failed with ``error``) and forget what was not found for
        ``forget_after``."""
        state = self.state(scan.name)
        endpoints = dict(state.endpoints)
        new: list[Endpoint] = []
        for pair in result.accepted if result is not None else ():
            key = (pair.ip, pair.port)
            before = endpoints.get(key)
            certificate = summarise(pair.certificates[0]) if pair.certificates else None
            endpoint = Endpoint(
                ip=pair.ip,
                port=pair.port,
                protocol=pair.protocol,
                outcome=pair.outcome,
                first_seen=before.first_seen if before is not None else pair.at,
                last_seen=pair.at,
                certificate=certificate,
                had_certificate=bool(pair.certificates) or (before is not None and before.had_certificate),
            )
            endpoints[key] = endpoint
            if before is None:
                new.append(endpoint)
        vanished = [e for e in endpoints.values() if finished - e.last_seen > scan.forget_after]
        for e in vanished:
            del endpoints[(e.ip, e.port)]
        run = RunRecord(
            started=started,
            finished=finished,
            duration=max(0.0, finished - started),
            scope=result.scope if result is not None else 0,
            outcomes=result.outcomes if result is not None else MappingProxyType({}),
            ok=result is not None,
            error=error,
        )
        ordered = tuple(sorted(endpoints.values(), key=_order))
        scans = dict(self._scans)
        scans[scan.name] = ScanState(endpoints=MappingProxyType({(e.ip, e.port): e for e in ordered}), last_run=run)
        self._scans = MappingProxyType(scans)
        return RunChanges(
            scan=scan.name,
            run=run,
            endpoints=ordered,
            new=tuple(sorted(new, key=_order)),
            vanished=tuple(sorted(vanished, key=_order)),
        )

    def jobs(self, config: Config) -> tuple[DiscoveredEndpoint, ...]:
        """A job for every endpoint that answered with a certificate and is not forgotten."""
        jobs: list[DiscoveredEndpoint] = []
        now = time.time()
        for scan in config.discovery:
            state = self._scans.get(scan.name)
            if state is None:
                continue
            labels = ((DISCOVERY_LABEL, scan.name), *scan.labels)
            for e in state.endpoints.values():
                if not e.had_certificate or now - e.last_seen > scan.forget_after:
                    continue
                if e.port not in scan.ports or not scan.covers(e.ip):
                    continue
                jobs.append(
                    DiscoveredEndpoint(
                        scan=scan.name,
                        ip=e.ip,
                        port=e.port,
                        protocol=scan.protocol(e.port),
                        owner=scan.owner,
                        labels=labels,
                        interval=config.defaults.interval,
                        timeout=config.defaults.timeout,
                        profile=scan.profile,
                    )
                )
        return tuple(jobs)


def _order(e: Endpoint) -> tuple[int, int, int]:
    address = ipaddress.ip_address(e.ip)
    return address.version, int(address), e.port


class DiscoverySource:
    """The endpoints the scans found, each observed through the network source at its address
    (no name to resolve, none to present as SNI or to verify)."""

    name = "discovery"
    every_certificate = False

    def __init__(self, discovery: Discovery | None = None, tls: TLSSource | None = None) -> None:
        self.discovery = discovery or Discovery()
        self.tls = tls or TLSSource()

    def jobs(self, config: Config) -> tuple[Job, ...]:
        return self.discovery.jobs(config)

    @staticmethod
    def _target(job: Job) -> Target:
        assert isinstance(job, DiscoveredEndpoint)
        return Target(
            target=job.target,
            host=job.ip,
            port=job.port,
            protocol=job.protocol,
            server_name="",
            name=job.name,
            owner=job.owner,
            labels=job.labels,
            interval=job.interval,
            timeout=job.timeout,
            profile=job.profile,
        )

    def labels(self, job: Job, location: str, owner: str) -> dict[str, str]:
        labels = {"target": job.target, "address": location, "protocol": job.protocol, "name": job.name, "owner": owner}
        if owner != job.owner:  # a certificate rule chose the owner: the scan's owner is told too
            labels["server_owner"] = job.owner
        labels.update(job.labels)
        return labels

    async def observe(self, job: Job, deadline: Deadline, profile: Profile | None = None) -> list[Observation]:
        return await self.tls.observe(self._target(job), deadline, profile)

    def opener(self, job: Job, location: str, timeout: float, profile: Profile | None = None) -> Opener | None:
        return self.tls.opener(self._target(job), location, timeout, profile)
