"""The discovery source: scan `discovery:` networks and ports, and monitor what answered.

A run of a scan goes through every address:port pair of its scope (its networks times its
ports, minus ``exclude``; with ``--shard`` only this replica's share, split by the same key as
the endpoints' jobs), opening at most ``rate`` new connections a second (a token bucket) and
at most ``concurrency`` at once. A pair whose connection is accepted then runs the normal probe
path of its port's protocol (the STARTTLS dialogue, the handshake) under the scan's ``timeout``,
so every pair ends in one handshake outcome (``connection_refused``, ``connect_timeout``,
``not_tls``, ``handshake_failed``, ``no_certificate``, ``certificate_found`` ...).

``exporter.sources.discovered.Discovery`` keeps what the runs found, across reloads. Every
endpoint that answered with a certificate is a ``DiscoveredEndpoint`` job of the
``DiscoverySource`` (monitored like a configured target, through the TLS source) until it has
not been found for the scan's ``forget_after``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import MappingProxyType

from exporter.config.discovery import DiscoveredEndpoint, Scan, endpoint_key, format_address
from exporter.config.discovery_model import MAX_SCAN_CONNECTIONS
from exporter.config.model import Config, Job, Profile, Target
from exporter.results import Observation
from exporter.sources.discovered import Discovery, PairResult, RunResult
from exporter.sources.tls import TLSSource
from exporter.support.deadline import Deadline
from exporter.support.errors import Outcome, ProbeError
from exporter.support.protocols import PROTOCOLS
from exporter.support.steplog import StepLog
from exporter.tls.hello import Opener
from exporter.tls.session import handshake, open_plain

log = logging.getLogger(__name__)
MAX_CONCURRENCY = MAX_SCAN_CONNECTIONS  # connections of one run open at once, at most


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
