"""Probe one target: resolve it, probe every address, judge what each served.

This is the one path from a ``Target`` to ``ProbeResult``s: the scheduler, ``/probe`` and the
``check`` command all call it, so they cannot disagree.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from exporter.assess import Assessor, Reopen
from exporter.certs.report import chain_facts, leaf_report
from exporter.config.model import Config, Profile, Target
from exporter.errors import Outcome, ProbeError
from exporter.protocols import PROTOCOLS
from exporter.resolve import resolve
from exporter.results import CertReport, Observation, ProbeResult
from exporter.steplog import StepLog
from exporter.tls.session import format_address, handshake, open_for_hello

log = logging.getLogger(__name__)


class Prober:
    """Probes targets; with an ``Assessor`` it also judges chain, revocation, posture and grade."""

    def __init__(self, assessor: Assessor | None = None) -> None:
        self.assessor = assessor  # chain, revocation, posture and grade; None: leaf analysis only

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
                chain = chain_facts(observation.chain_der)
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
            if self.assessor is not None:

                async def reopen() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
                    return await open_for_hello(
                        ip, target.port, starttls=spec.starttls, server_name=target.server_name, timeout=timeout
                    )

                report = await self._assess(report, observation, target, profile, reopen, timeout, log)
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

    async def _assess(
        self,
        report: CertReport,
        observation: Observation,
        target: Target,
        profile: Profile,
        reopen: Reopen,
        timeout: float,
        log: StepLog,
    ) -> CertReport:
        assert self.assessor is not None
        try:
            # Bounded like the handshake: a slow OCSP responder or posture scan costs this probe, not more.
            a = await asyncio.wait_for(
                self.assessor.assess(
                    observation=observation,
                    server_name=target.server_name,
                    profile=profile,
                    reopen=reopen,
                    now=time.time(),
                ),
                max(timeout, 1.0),
            )
        except TimeoutError:
            log(f"chain, revocation and posture checks did not finish within {max(timeout, 1.0):g}s")
            return report
        log.extend(a.log)
        log(
            f"chain {'valid' if a.chain_valid else 'invalid'} {', '.join(sorted(a.chain_issues))}; "
            f"OCSP {a.ocsp_status}; grade {a.grade} ({a.score})"
        )
        return dataclasses.replace(
            report,
            chain_valid=a.chain_valid,
            chain_issues=a.chain_issues,
            ocsp_status=a.ocsp_status,
            ocsp_stapled=a.ocsp_stapled,
            protocols_accepted=a.protocols_accepted,
            grade=a.grade,
            score=a.score,
        )
