"""What the discovery scans found, kept across reloads: per scan, the endpoints whose connection
was accepted (first and last seen, last outcome, the leaf's facts) and its last run.

The discovery source's results, as ``exporter.results`` holds the probes': the scans write it
(``exporter.schedule.discovery``), the discovery source reads its jobs from it, and the outputs
(metrics, the JSON API, the discovery e-mail) read its snapshots. It is replaced whole at each
change, so readers in other threads always see one consistent snapshot.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from cryptography import x509

from exporter.config.discovery import DISCOVERY_LABEL, DiscoveredEndpoint, Scan, format_address
from exporter.config.model import Config
from exporter.support.errors import Outcome


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """One run of a scan: the outcome of every pair it tried, and the pairs that were accepted."""

    scope: int  # pairs tried (this replica's share of the scope)
    outcomes: Mapping[str, int]  # handshake outcome -> pairs
    accepted: tuple[PairResult, ...]


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
