"""Probe one target: resolve it, probe every address, judge what each served.

This is the one path from a ``Target`` to ``ProbeResult``s: the scheduler, ``/probe`` and the
``check`` command all call it, so they cannot disagree.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from exporter.certs.report import leaf_report, parse_chain
from exporter.config.model import Config, Target
from exporter.errors import Outcome, ProbeError
from exporter.protocols import PROTOCOLS
from exporter.resolve import resolve
from exporter.results import CertReport, Observation, ProbeResult
from exporter.steplog import StepLog
from exporter.tls.session import format_address, handshake, open_for_hello

log = logging.getLogger(__name__)

Reopen = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class Assess(Protocol):
    """Chain, revocation, posture and grade: fills the rest of a CertReport (issue 4)."""

    async def __call__(
        self,
        report: CertReport,
        *,
        observation: Observation,
        target: Target,
        config: Config,
        reopen: Reopen | None,
        log: StepLog,
    ) -> CertReport: ...


class Prober:
    def __init__(self, assess: Assess | None = None) -> None:
        self.assess = assess

    async def probe_target(self, target: Target, config: Config, *, timeout: float | None = None) -> list[ProbeResult]:
        started, log = time.time(), StepLog()
        limit = target.timeout if timeout is None else min(timeout, target.timeout)
        log(f"resolving {target.host}")
        try:
            ips = await resolve(target.host, target.port, all_addresses=target.all_addresses, timeout=limit)
        except ProbeError as exc:
            log(exc.detail)
            return [
                ProbeResult(
                    address="",
                    outcome=exc.outcome,
                    detail=exc.detail,
                    started_at=started,
                    duration=time.time() - started,
                    log=tuple(log.lines),
                )
            ]
        log(f"{target.host} has {len(ips)} address(es): {', '.join(ips)}")
        return list(await asyncio.gather(*(self.probe_address(target, config, ip, limit, log.lines) for ip in ips)))

    async def probe_address(
        self, target: Target, config: Config, ip: str, timeout: float, prefix: list[str] | None = None
    ) -> ProbeResult:
        started, t0, log = time.time(), time.monotonic(), StepLog()
        spec = PROTOCOLS[target.protocol]
        address = format_address(ip, target.port)
        try:
            observation = await handshake(
                ip,
                target.port,
                server_name=target.server_name,
                starttls=spec.starttls,
                timeout=timeout,
                log=log,
                read_hsts=target.protocol == "https",
            )
            try:
                chain = parse_chain(observation.chain_der)
            except ValueError as exc:
                raise ProbeError(str(exc), Outcome.NO_CERTIFICATE) from None
            profile = config.profile(target.profile)
            report = leaf_report(
                chain,
                server_name=target.server_name,
                expect=target.expect,
                profile=profile,
                owner_rules=config.certificate_owners,
                fallback_owner=target.owner,
            )
            if self.assess is not None:

                async def reopen() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
                    return await open_for_hello(
                        ip, target.port, starttls=spec.starttls, server_name=target.server_name, timeout=timeout
                    )

                report = await self.assess(
                    report, observation=observation, target=target, config=config, reopen=reopen, log=log
                )
            leaf = report.leaf
            expires = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(leaf.not_after))
            log(f"leaf {leaf.subject} serial {leaf.serial} expires {expires} UTC")
            return ProbeResult(
                address=address,
                outcome=Outcome.CERTIFICATE_FOUND,
                started_at=started,
                duration=time.monotonic() - t0,
                version=observation.version,
                cipher=observation.cipher,
                report=report,
                log=(*(prefix or []), *log.lines),
            )
        except ProbeError as exc:
            log(f"{exc.outcome}: {exc.detail}")
            return ProbeResult(
                address=address,
                outcome=exc.outcome,
                detail=exc.detail,
                started_at=started,
                duration=time.monotonic() - t0,
                log=(*(prefix or []), *log.lines),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must cost one probe, never the exporter
            log.lines.append(f"internal error: {exc!r}")
            logging.getLogger(__name__).exception("probe of %s %s failed unexpectedly", target.target, address)
            return ProbeResult(
                address=address,
                outcome=Outcome.NETWORK_ERROR,
                detail=f"internal error: {exc!r}",
                started_at=started,
                duration=time.monotonic() - t0,
                log=(*(prefix or []), *log.lines),
            )
