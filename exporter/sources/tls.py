"""The network source: resolve a target, and at every address connect, run the STARTTLS dialogue,
shake hands and capture what was served, all under the probe's one ``Deadline``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from exporter.config.model import Config, Job, Profile, Target
from exporter.results import Observation
from exporter.sources.resolve import resolve
from exporter.support.deadline import Deadline
from exporter.support.errors import Outcome, ProbeError
from exporter.support.netpolicy import NOT_ALLOWED, PROBE_SCOPE
from exporter.support.protocols import PROTOCOLS
from exporter.support.proxyurl import ProxyURL
from exporter.support.steplog import StepLog
from exporter.tls.client import ClientCertificate
from exporter.tls.hello import Opener
from exporter.tls.session import format_address, handshake, open_for_hello

log = logging.getLogger(__name__)


def split_address(address: str) -> tuple[str, int]:
    """`127.0.0.1:443` / `[::1]:443` -> (ip, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class TLSSource:
    """Network endpoints (``targets:``): one observation per address the target's name resolves to."""

    name = "tls"
    every_certificate = False  # the leaf is judged; the rest of the served chain is its chain

    def __init__(self, connections: asyncio.Semaphore | None = None) -> None:
        # Caps connections, not targets: a name with eight addresses takes eight slots.
        self.connections = connections

    def jobs(self, config: Config) -> tuple[Target, ...]:
        return config.targets

    def labels(self, job: Job, location: str, owner: str) -> dict[str, str]:
        assert isinstance(job, Target)
        labels = {"target": job.target, "address": location, "protocol": job.protocol, "name": job.name, "owner": owner}
        if owner != job.owner:  # a certificate rule chose the owner: the server's team is told too
            labels["server_owner"] = job.owner
        if job.label_server_name:
            # Part of the target's identity: one address probed under two server names is two targets.
            labels["server_name"] = job.server_name
        labels.update(job.labels)
        return labels

    async def observe(self, job: Job, deadline: Deadline, profile: Profile | None = None) -> list[Observation]:
        assert isinstance(job, Target)
        client = None
        if profile is not None and profile.client_cert and profile.client_key:
            client = ClientCertificate(profile.client_cert, profile.client_key)
        started, steps = time.time(), StepLog()
        proxy = None if profile is None else profile.proxy_url
        if proxy is not None:  # the proxy resolves the name: one location, the name itself
            steps(f"not resolving {job.host}: the proxy {proxy} does")
            return [await self._address(job, job.host, deadline, steps.lines, client, proxy)]
        steps(f"resolving {job.host}")
        try:
            ips = await resolve(job.host, job.port, all_addresses=job.all_addresses, timeout=deadline.left())
        except ProbeError as exc:
            steps(exc.detail)
            return [
                Observation(
                    location="",
                    outcome=exc.outcome,
                    detail=exc.detail,
                    started_at=started,
                    duration=time.time() - started,
                    log=tuple(steps.lines),
                )
            ]
        steps(f"{job.host} has {len(ips)} address(es): {', '.join(ips)}")
        scope = PROBE_SCOPE.get()
        refusal = scope.allows(job.host, ips) if scope is not None else None
        if refusal is not None:  # /probe: DNS may not send the connection outside probe.allow
            steps(f"{NOT_ALLOWED}: {refusal}")
            return [
                Observation(
                    location="",
                    outcome=Outcome.DNS_ERROR,
                    detail=f"{NOT_ALLOWED}: {refusal}",
                    started_at=started,
                    duration=time.time() - started,
                    log=tuple(steps.lines),
                )
            ]
        if len(ips) == 1:  # most names have one address: no task of its own (a task per /probe costs)
            return [await self._address(job, ips[0], deadline, steps.lines, client)]
        return list(await asyncio.gather(*(self._address(job, ip, deadline, steps.lines, client) for ip in ips)))

    async def _address(
        self,
        job: Target,
        ip: str,
        deadline: Deadline,
        prefix: list[str],
        client: ClientCertificate | None,
        proxy: ProxyURL | None = None,
    ) -> Observation:
        started, t0, steps = time.time(), time.monotonic(), StepLog()
        address = format_address(ip, job.port)
        try:
            async with self._slot(deadline):
                session, chain = await handshake(
                    ip,
                    job.port,
                    server_name=job.server_name,
                    starttls=PROTOCOLS[job.protocol].starttls,
                    deadline=deadline,
                    steps=steps,
                    read_hsts=job.protocol == "https",
                    client=client,
                    proxy=proxy,
                )
            outcome, detail = Outcome.CERTIFICATE_FOUND, ""
        except ProbeError as exc:
            steps(f"{exc.outcome}: {exc.detail}")
            session, chain, outcome, detail = None, exc.certificates, exc.outcome, exc.detail
        except Exception as exc:  # a bug must cost one probe, never the exporter
            steps(f"internal error: {exc!r}")
            log.exception("probe of %s %s failed unexpectedly", job.target, address)
            session, chain, outcome, detail = None, (), Outcome.NETWORK_ERROR, f"internal error: {exc!r}"
        return Observation(
            location=address,
            outcome=outcome,
            detail=detail,
            certificates=chain,
            session=session,
            started_at=started,
            duration=time.monotonic() - t0,
            log=(*prefix, *steps.lines),
        )

    @contextlib.asynccontextmanager
    async def _slot(self, deadline: Deadline) -> AsyncIterator[None]:
        if self.connections is None:
            yield
            return
        try:
            await deadline.run(self.connections.acquire())
        except TimeoutError:
            raise ProbeError(
                "no free connection slot within the timeout (the exporter is overloaded)", Outcome.NETWORK_ERROR
            ) from None
        try:
            yield
        finally:
            self.connections.release()

    def opener(self, job: Job, address: str, timeout: float, profile: Profile | None = None) -> Opener:
        """Fresh connections to ``address``, ready for a ClientHello (the version scan's)."""
        assert isinstance(job, Target)
        ip, port = split_address(address)
        starttls = PROTOCOLS[job.protocol].starttls
        proxy = None if profile is None else profile.proxy_url

        async def reopen() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await open_for_hello(
                ip, port, starttls=starttls, server_name=job.server_name, timeout=timeout, proxy=proxy
            )

        return reopen
