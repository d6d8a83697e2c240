"""After a successful handshake: chain validity, revocation, protocol posture and the grade.

The probe runner calls ``Assessor.assess`` with what the handshake observed. I/O happens here
(AIA, OCSP and CRL fetches through ``exporter.fetch``; ClientHello probes through
``exporter.tls.hello``); the judgements are the pure functions of ``exporter.certs``.

Cost bounds: a posture scan is at most five ClientHellos (one per version, one at a time, each
with ``hello_timeout``) and runs at most once per ``profile.scan_interval`` per (address,
server_name); fetches are cached (OCSP and CRLs until nextUpdate, AIA for a day). ``assess``
never raises: a failed step becomes ``error`` / ``not_checked`` and a log line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.verification import Store

from exporter.certs.chain import ChainVerdict, ca_issuer_urls, issuer_of, ocsp_urls, self_issued, verify_chain
from exporter.certs.facts import cert_facts, key_of, signature_of
from exporter.certs.grade import GradeInput, grade, normalize_version
from exporter.certs.revocation import crl_urls, judge_crl, judge_ocsp, ocsp_request
from exporter.certs.strength import key_weak
from exporter.certs.trust import TrustError, load_store
from exporter.config.model import Profile
from exporter.fetch import Fetcher, FetchError
from exporter.results import Observation
from exporter.tls import hello

Reopen = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
MAX_AIA_HOPS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    chain_valid: bool
    chain_issues: frozenset[str]
    ocsp_status: str  # good | revoked | unknown | error | not_checked
    ocsp_stapled: bool
    protocols_accepted: tuple[tuple[str, bool], ...]  # empty when not scanned
    grade: str | None
    score: float | None
    reasons: tuple[str, ...]
    log: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Posture:
    expires: float
    results: tuple[hello.HelloResult, ...]


def _unassessed(ocsp_status: str, log: list[str]) -> Assessment:
    """What a probe reports when the chain could not be judged at all: invalid, nothing scanned."""
    return Assessment(
        chain_valid=False,
        chain_issues=frozenset(),
        ocsp_status=ocsp_status,
        ocsp_stapled=False,
        protocols_accepted=(),
        grade=None,
        score=None,
        reasons=(),
        log=tuple(log),
    )


class Assessor:
    def __init__(
        self,
        *,
        fetcher: Fetcher | None = None,
        hello_timeout: float = 3.0,
        store_loader: Callable[[str], Store] = load_store,
    ) -> None:
        self.fetcher = fetcher or Fetcher()
        self.hello_timeout = hello_timeout
        self._load_store = store_loader
        self._posture: dict[tuple[str, str], _Posture] = {}
        self.scans = 0  # posture scans run (not served from the cache)

    async def close(self) -> None:
        await self.fetcher.close()

    async def assess(
        self,
        *,
        observation: Observation,
        server_name: str,
        profile: Profile,
        reopen: Reopen | None,
        now: float,
    ) -> Assessment:
        log: list[str] = []
        try:
            return await self._assess(observation, server_name, profile, reopen, now, log)
        except Exception as e:  # the contract: never raise out of assess
            log.append(f"assess: internal error: {type(e).__name__}: {e}")
            return _unassessed("error", log)

    async def _assess(
        self,
        obs: Observation,
        server_name: str,
        profile: Profile,
        reopen: Reopen | None,
        now: float,
        log: list[str],
    ) -> Assessment:
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        certs = _parse(obs.chain_der, log)
        if not certs:
            log.append("chain: no parsable certificate")
            return _unassessed("not_checked", log)
        leaf = certs[0]

        # 1. chain, completed from AIA when the served chain lacks an issuer
        verdict: ChainVerdict | None = None
        extras: tuple[x509.Certificate, ...] = ()
        try:
            store = self._load_store(profile.trust)
        except TrustError as e:
            log.append(f"chain: trust store unusable: {e}")
            store = None
        if store is not None:
            verdict = verify_chain(certs, store, server_name, at)
            if verdict.completable:
                extras = await self._complete(certs[-1], now, log)
                if extras:
                    verdict = verify_chain(certs, store, server_name, at, extra=extras)
            _log_chain(verdict, log)
        issues = set(verdict.issues) if verdict else set()

        # 2. posture (the TLS 1.2 hello also asks for a staple)
        results: tuple[hello.HelloResult, ...] = ()
        if reopen is not None and profile.scan_protocol_versions:
            results = await self._scan(obs.address, server_name, reopen, profile.scan_interval, now, log)
        protocols = tuple((r.version, r.accepted) for r in results if r.accepted is not None)

        # 3. revocation
        path = verdict.path if verdict and verdict.path else ()
        pairs = _pairs(path) if path else _pairs_served(certs, extras)
        staple = obs.ocsp_staple or next((r.staple for r in results if r.staple and r.accepted), None)
        ocsp_status, revoked = "not_checked", False
        if profile.revocation == "none":
            log.append("revocation: not checked (profile says none)")
        else:
            ocsp_status, revoked = await self._revocation(leaf, pairs, staple, profile.revocation, at, now, log)
        if revoked:
            issues.add("revoked")

        # 4. grade
        g = grade(
            _grade_input(
                obs, leaf, path or (leaf, *[c for c in certs[1:] if not self_issued(c)]), results, issues, profile
            )
        )
        log.append(
            f"grade: {g.grade} (score {g.score:g}, if trusted {g.if_trusted})"
            + (": " + "; ".join(g.reasons) if g.reasons else "")
        )
        return Assessment(
            chain_valid=bool(verdict and verdict.valid) and not revoked,
            chain_issues=frozenset(issues),
            ocsp_status=ocsp_status,
            ocsp_stapled=staple is not None,
            protocols_accepted=protocols,
            grade=g.grade,
            score=g.score,
            reasons=g.reasons,
            log=tuple(log),
        )

    # -- steps --------------------------------------------------------------------------------------

    async def _complete(self, last: x509.Certificate, now: float, log: list[str]) -> tuple[x509.Certificate, ...]:
        """Follow AIA caIssuers from the last served certificate, a few hops at most."""
        found: list[x509.Certificate] = []
        current = last
        for _ in range(MAX_AIA_HOPS):
            urls = ca_issuer_urls(current)
            nxt: x509.Certificate | None = None
            for url in urls:
                try:
                    fetched = await self.fetcher.ca_issuers(url, now=now)
                except FetchError as e:
                    log.append(f"aia: {e}")
                    continue
                found.extend(c for c in fetched if c not in found)
                nxt = issuer_of(current, fetched)
                log.append(
                    f"aia: {url}: {len(fetched)} certificate(s)"
                    + (f", issuer {nxt.subject.rfc4514_string()}" if nxt else ", none issued it")
                )
                if nxt is not None:
                    break
            if nxt is None or self_issued(nxt):
                break
            current = nxt
        return tuple(found)

    async def _scan(
        self, address: str, server_name: str, reopen: Reopen, interval: float, now: float, log: list[str]
    ) -> tuple[hello.HelloResult, ...]:
        key = (address, server_name)
        cached = self._posture.get(key)
        if cached is not None and cached.expires > now:
            log.append(f"posture: from the scan of {interval - (cached.expires - now):.0f}s ago")
            return cached.results
        self.scans += 1
        results = await hello.scan(reopen, server_name, timeout=self.hello_timeout)
        for r in results:
            state = {True: "accepted", False: "refused", None: "unknown"}[r.accepted]
            info = r.suite_info
            extra = f" {info.name}" if r.accepted and info else ""
            log.append(f"hello {r.version}: {state}{extra}" + (f" ({r.detail})" if r.detail else ""))
        if any(r.accepted is not None for r in results):
            self._posture[key] = _Posture(now + interval, results)
            if len(self._posture) > 100_000:
                self._posture = {k: v for k, v in self._posture.items() if v.expires > now}
        return results

    async def _revocation(
        self,
        leaf: x509.Certificate,
        pairs: Sequence[tuple[x509.Certificate, x509.Certificate]],
        staple: bytes | None,
        mode: str,
        at: dt.datetime,
        now: float,
        log: list[str],
    ) -> tuple[str, bool]:
        issuer = pairs[0][1] if pairs and pairs[0][0] is leaf else None
        status, revoked = "not_checked", False
        if staple is not None:
            if issuer is None:
                log.append("ocsp: staple received, but the leaf's issuer is unknown")
            else:
                v = judge_ocsp(staple, leaf, issuer, at)
                log.append(f"ocsp: staple {v.status}" + (f" ({v.detail})" if v.detail and v.status == "error" else ""))
                if v.status != "error" or mode != "ocsp":
                    status = v.status
        if mode == "ocsp":
            if status == "not_checked":
                if issuer is None:
                    log.append("ocsp: not checked (issuer of the leaf unknown)")
                else:
                    status = await self._ocsp(leaf, issuer, at, now, log, label="leaf")
            revoked = status == "revoked"
            for cert, parent in pairs[1:]:
                if ocsp_urls(cert) and await self._ocsp(cert, parent, at, now, log, label="intermediate") == "revoked":
                    revoked = True
        elif mode == "crl":
            for cert, parent in pairs:
                if await self._crl(cert, parent, at, now, log):
                    revoked = True
            revoked = revoked or status == "revoked"
        return status, revoked

    async def _ocsp(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        now: float,
        log: list[str],
        *,
        label: str,
    ) -> str:
        urls = ocsp_urls(cert)
        if not urls:
            log.append(f"ocsp: {label} names no responder: not checked")
            return "not_checked"
        request = ocsp_request(cert, issuer)
        detail = ""
        for url in urls[:2]:
            try:
                body = await self.fetcher.ocsp(url, request, now=now)
            except FetchError as e:
                detail = str(e)
                log.append(f"ocsp: {label}: {e}")
                continue
            v = judge_ocsp(body, cert, issuer, at)
            log.append(f"ocsp: {label}: {url}: {v.status}" + (f" ({v.detail})" if v.detail else ""))
            return v.status
        log.append(f"ocsp: {label}: error" + (f" ({detail})" if detail else ""))
        return "error"

    async def _crl(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime, now: float, log: list[str]
    ) -> bool:
        name = cert.subject.rfc4514_string()
        urls = crl_urls(cert)
        if not urls:
            log.append(f"crl: {name}: no distribution point")
            return False
        for url in urls[:2]:
            try:
                body = await self.fetcher.crl(url, now=now)
            except FetchError as e:
                log.append(f"crl: {name}: {e}")
                continue
            v = judge_crl(body, cert, issuer, at)
            log.append(f"crl: {name}: {url}: {v.status}" + (f" ({v.detail})" if v.detail else ""))
            if v.status != "error":
                return v.status == "revoked"
        return False


def _parse(chain_der: Sequence[bytes], log: list[str]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for i, der in enumerate(chain_der):
        try:
            out.append(x509.load_der_x509_certificate(der))
        except ValueError as e:
            if i == 0:
                log.append(f"chain: the leaf does not parse: {e}")
                return []
            log.append(f"chain: certificate {i} does not parse and is ignored: {e}")
    return out


def _log_chain(v: ChainVerdict, log: list[str]) -> None:
    if v.valid and not v.issues:
        log.append(f"chain: valid, {len(v.path)} certificates up to {v.path[-1].subject.rfc4514_string()}")
        return
    state = "valid" if v.valid else "invalid"
    log.append(f"chain: {state} ({', '.join(sorted(v.issues)) or 'no issue'})" + (f": {v.detail}" if v.detail else ""))


def _pairs(path: Sequence[x509.Certificate]) -> list[tuple[x509.Certificate, x509.Certificate]]:
    return [(path[i], path[i + 1]) for i in range(len(path) - 1)]


def _pairs_served(
    certs: Sequence[x509.Certificate], extras: Sequence[x509.Certificate]
) -> list[tuple[x509.Certificate, x509.Certificate]]:
    """Without a verified path: the leaf and whichever served or fetched certificate signed it."""
    issuer = issuer_of(certs[0], [*certs[1:], *extras])
    return [(certs[0], issuer)] if issuer is not None else []


def _grade_input(
    obs: Observation,
    leaf: x509.Certificate,
    signed: Sequence[x509.Certificate],
    results: Sequence[hello.HelloResult],
    issues: set[str],
    profile: Profile,
) -> GradeInput:
    accepted = [r for r in results if r.accepted]
    protocols = {normalize_version(r.version) for r in accepted} or {normalize_version(obs.version)}
    infos = [r.suite_info for r in accepted]
    key_type, key_bits = key_of(leaf)
    hashes = tuple(signature_of(c)[1] for c in signed if not self_issued(c))
    return GradeInput(
        protocols=frozenset(protocols),
        cipher=obs.cipher,
        cipher_bits=(obs.cipher_bits, *(i.bits for i in infos if i is not None)),
        suites=tuple(i.name for i in infos if i is not None),
        key_type=key_type,
        key_bits=key_bits,
        ephemeral=tuple(r.key_exchange for r in accepted if r.key_exchange is not None),
        signature_hashes=hashes,
        weak_hashes=profile.weak_signature_hashes,
        key_weak=key_weak(cert_facts(leaf), profile),
        chain_issues=frozenset(issues),
        hsts=obs.hsts,
    )
