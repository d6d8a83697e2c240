"""After a successful handshake: chain validity, revocation, DNS facts (DANE and CAA, in profiles
that ask) and the grade, each a step of its own.

I/O happens here (AIA, OCSP and CRL fetches through ``exporter.judge.fetch``, TLSA and CAA lookups
through ``exporter.judge.dns``, trust bundles read in a worker thread); the judgements are the pure
functions of ``exporter.certs``. The version scan is not here: it runs on its own clock
(``exporter.judge.scan``) and its latest result is handed in.

Every step succeeds or fails on its own. A failure on our side (an exception, a fetch that did
not answer, the probe's deadline running out) puts the step in ``Assessment.errors`` and leaves
its facts unset, so it is reported as "could not judge", never as a finding about the server;
the other steps' results still stand. ``assess`` never raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Store

from exporter.certs.chain import (
    ChainIssue,
    ChainVerdict,
    Rules,
    Vouched,
    ca_issuer_urls,
    issuer_of,
    ocsp_urls,
    self_issued,
    vouched_by,
)
from exporter.certs.facts import key_of, signature_of
from exporter.certs.grade import Grade, GradeInput, grade
from exporter.certs.judge import facts_from_der
from exporter.certs.strength import key_weak
from exporter.certs.trust import load_trust
from exporter.certs.verdicts import VerdictCache
from exporter.config.model import DnsSettings, Profile, RevocationMode
from exporter.judge.fetch import Fetcher, FetchError
from exporter.results import (
    Assessment,
    DnsFacts,
    OcspStatus,
    PathInfo,
    Session,
    Step,
    StepResult,
    StepStatus,
    normalize_version,
)
from exporter.support.deadline import Deadline
from exporter.support.fileio import in_file_thread
from exporter.tls import hello

if TYPE_CHECKING:
    from exporter.judge.dns import DnsLookup

log = logging.getLogger(__name__)
MAX_AIA_HOPS = 3
TRUST_RECHECK = 60.0  # seconds between checks that a trust bundle file did not change


class _FetchFailed(Exception):
    """Every source of a revocation answer failed to answer: the step could not be judged."""


class Assessor:
    def __init__(
        self,
        *,
        fetcher: Fetcher | None = None,
        dns: DnsLookup | None = None,
        store_loader: Callable[[str], tuple[Store, tuple[x509.Certificate, ...]]] = load_trust,
        on_error: Callable[[Step], None] | None = None,
    ) -> None:
        self.fetcher = fetcher or Fetcher()
        self._dns = dns  # made on first use: dnspython is imported only when a profile asks for DANE or CAA
        self._load_store = store_loader
        self._stores: dict[str, tuple[float, tuple[Store, tuple[x509.Certificate, ...]]]] = {}
        self._on_error = on_error  # counts tls_exporter_errors_total{step}
        self.verdicts = VerdictCache()  # an unchanged chain is not verified again on every probe

    @property
    def dns(self) -> DnsLookup:
        if self._dns is None:
            from exporter.judge.dns import DnsLookup  # dnspython: 80 ms of imports

            self._dns = DnsLookup()
        return self._dns

    async def close(self) -> None:
        await self.fetcher.close()
        if self._dns is not None:
            await self._dns.close()

    async def assess(
        self,
        *,
        certificates: Sequence[bytes],
        session: Session,
        server_name: str,
        profile: Profile,
        scan: Sequence[hello.HelloResult] = (),
        graded: bool = True,
        deadline: Deadline | None = None,
        now: float | None = None,
        port: int | None = None,
        dns: DnsSettings | None = None,
        caa_issuers: Mapping[str, str] | None = None,
    ) -> Assessment:
        """``graded``: False until the version scan the grade depends on has run (no grade then).
        ``port``, ``dns`` and ``caa_issuers``: the TLSA name's port, the resolver and the issuer table
        of the ``dns`` step (DANE and CAA, when the profile asks for them)."""
        now = time.time() if now is None else now
        w = _Work(
            session=session,
            server_name=server_name,
            profile=profile,
            scan=scan,
            graded=graded,
            deadline=deadline or Deadline(30.0),
            at=dt.datetime.fromtimestamp(now, dt.UTC),
            now=now,
            port=port,
            dns=dns or DnsSettings(),
            caa_issuers=caa_issuers or {},
        )
        steps = self.steps_for(profile)
        w.certs, w.ders = _parse(certificates, w.log)
        if not w.certs:
            w.log.append("chain: no parsable certificate")
            failed = StepResult(StepStatus.ERROR, "no parsable certificate")
            return Assessment(
                errors=frozenset(step for step, _ in steps),
                steps=tuple((step, failed) for step, _ in steps),
                log=tuple(w.log),
            )
        for step, run in steps:  # in order: each step reads what the earlier ones found
            w.statuses.append((step, await self._run(step, run, w)))
        revoked = w.revoked
        chain_valid = None if w.verdict is None else (w.verdict.valid and not revoked)
        reasons = w.verdict.reasons if w.verdict is not None else ()
        if revoked:
            reasons = (*reasons, "revoked: a certificate of the chain is revoked (OCSP or CRL)")
        g = w.grade
        return Assessment(
            chain_valid=chain_valid,
            chain_issues=frozenset(w.issues),
            chain_reasons=reasons,
            path=path_info(w.verdict) if w.verdict is not None else None,
            ocsp_status=w.ocsp_status,
            ocsp_stapled=w.stapled,
            grade=None if g is None else g.grade,
            score=None if g is None else g.score,
            reasons=() if g is None else g.reasons,
            dns=w.dns_facts,
            errors=frozenset(step for step, r in w.statuses if r.status is StepStatus.ERROR),
            steps=tuple(w.statuses),
            log=tuple(w.log),
        )

    @property
    def steps(self) -> tuple[tuple[Step, Callable[[_Work], Awaitable[StepResult]]], ...]:
        """The steps of an assessment, in the order they run; each returns its own status."""
        return (
            (Step.CHAIN, self._chain_step),
            (Step.REVOCATION, self._revocation_step),
            (Step.DNS, self._dns_step),
            (Step.GRADE, _grade_step),
        )

    def steps_for(self, profile: Profile) -> tuple[tuple[Step, Callable[[_Work], Awaitable[StepResult]]], ...]:
        """The steps a profile asks for: ``dns`` only with ``dane`` or ``caa`` (a step nobody asked
        for is not listed, so profiles without them keep their steps as they were)."""
        if profile.dane or profile.caa:
            return self.steps
        return tuple((step, run) for step, run in self.steps if step is not Step.DNS)

    async def _run(self, step: Step, run: Callable[[_Work], Awaitable[StepResult]], w: _Work) -> StepResult:
        """Run one step within the deadline; a failure on our side is its status, never raised."""
        try:
            return await w.deadline.run(run(w))
        except TimeoutError:
            return self._failed(
                step, w.log, None, f"not finished within the probe's deadline ({w.deadline.seconds:g}s)"
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._failed(step, w.log, exc)

    def _failed(self, step: Step, log_lines: list[str], exc: BaseException | None, why: str = "") -> StepResult:
        reason = why or f"{type(exc).__name__}: {exc}"
        log_lines.append(f"{step}: could not be judged: {reason}")
        log.debug("assessment step %s failed: %s", step, reason, exc_info=exc)
        if self._on_error is not None:
            self._on_error(step)
        return StepResult(StepStatus.ERROR, reason)

    async def _chain_step(self, w: _Work) -> StepResult:
        """The chain, completed from AIA when the served chain lacks an issuer."""
        w.verdict, w.extras = await self._chain(w.certs, w.ders, w.server_name, w.profile, w.at, w.now, w.log)
        w.issues = set(w.verdict.issues)
        return StepResult(StepStatus.COMPLETED)

    async def _revocation_step(self, w: _Work) -> StepResult:
        """OCSP or CRL of the path; the staple is the one the probe's own handshake carried."""
        path = w.verdict.path if w.verdict and w.verdict.path else ()
        pairs = _pairs(path) if path else _pairs_served(w.certs, w.extras)
        staple = w.session.ocsp_staple
        w.stapled = _valid_staple(staple, w.certs[0], pairs, w.at)
        if w.profile.revocation == RevocationMode.NONE:
            w.log.append("revocation: not checked (profile says none)")
            return StepResult(StepStatus.SKIPPED, "the profile says revocation: none")
        w.ocsp_status = None  # unknown until the step completes
        w.ocsp_status, w.revoked = await self._revocation(w.certs[0], pairs, staple, w.profile, w.at, w.now, w.log)
        if w.revoked:
            w.issues.add(ChainIssue.REVOKED)
        return StepResult(StepStatus.COMPLETED)

    async def _dns_step(self, w: _Work) -> StepResult:
        """DANE (TLSA at ``_port._tcp.name``) and CAA (the closest set of the name), as the profile asks."""
        name = w.server_name.rstrip(".")
        if not name or _is_ip(name):
            w.log.append("dns: no DANE or CAA for an IP address")
            return StepResult(StepStatus.SKIPPED, "the target is an IP address: no name to look up")
        # Imported here: only profiles that ask for DANE or CAA come this far.
        from exporter.certs import caa as caa_rules
        from exporter.certs import dane as dane_rules

        servers = w.dns.resolvers
        facts = DnsFacts()
        w.dns_facts = facts
        if w.profile.dane:
            if w.port is None:
                w.log.append("dns: no port at this location: no TLSA name")
            else:
                facts = dataclasses.replace(facts, tlsa_name=dane_rules.tlsa_name(name, w.port))
                w.dns_facts = facts
                answer = await self.dns.tlsa_for(name, w.port, servers, w.deadline)  # DnsError: the step fails
                qname = answer.qname
                facts = dataclasses.replace(facts, tlsa_name=qname)
                tlsa = [r for r in answer.records if isinstance(r, dane_rules.TLSA)]
                at = f" (via CNAME {answer.name})" if answer.cnames else ""
                if qname != dane_rules.tlsa_name(name, w.port):
                    w.log.append(f"dane: {name} is a CNAME (validated): TLSA base name {qname}")
                secure = "validated (AD)" if answer.secure else "not validated (no AD bit)"
                if not tlsa:
                    w.log.append(f"dane: no TLSA record at {qname}{at} ({answer.rcode}, {secure})")
                    facts = dataclasses.replace(facts, tlsa_records=0, dane_validated=answer.secure)
                else:
                    path = w.verdict.path if w.verdict is not None else ()
                    chain_valid = None if w.verdict is None else (w.verdict.valid and not w.revoked)
                    v = dane_rules.match(tlsa, w.certs, chain_valid=chain_valid, path=path)
                    w.log.append(f"dane: {len(tlsa)} TLSA record(s) at {qname}{at}, {secure}: {v.detail}")
                    facts = dataclasses.replace(
                        facts,
                        tlsa_records=len(tlsa),
                        dane_match=v.matched,
                        dane_validated=answer.secure,
                        dane_detail=v.detail,
                    )
                w.dns_facts = facts
        if w.profile.caa:
            closest = await self.dns.caa(name, servers, w.deadline)
            records = [r for r in closest.records if isinstance(r, caa_rules.CAA)] if closest else []
            where = closest.qname.rstrip(".") if closest else ""
            c = caa_rules.permits(records, w.certs[0], w.caa_issuers, where=where)
            w.log.append(f"caa: {c.detail}")
            info = caa_rules.info(records) if records else {}
            facts = dataclasses.replace(
                facts,
                caa_checked=True,
                caa_name=where,
                caa=tuple(info.items()),
                caa_permits=c.permitted,
                caa_detail=c.detail,
            )
            w.dns_facts = facts
        return StepResult(StepStatus.COMPLETED)

    async def _trust(self, trust: str) -> tuple[Store, tuple[x509.Certificate, ...]]:
        """The trust store, read in a worker thread, re-checked for changes now and then."""
        hit = self._stores.get(trust)
        now = time.monotonic()
        if hit is not None and now - hit[0] < TRUST_RECHECK:
            return hit[1]
        loaded = await in_file_thread(self._load_store, trust)
        self._stores[trust] = (now, loaded)
        return loaded

    async def _chain(
        self,
        certs: list[x509.Certificate],
        ders: list[bytes],
        server_name: str,
        profile: Profile,
        at: dt.datetime,
        now: float,
        steps: list[str],
    ) -> tuple[ChainVerdict, tuple[x509.Certificate, ...]]:
        store, anchors = await self._trust(profile.trust)  # TrustError: the chain cannot be judged
        rules = Rules(profile.policy, curated=profile.trust == "system")
        verdict = self.verdicts.verify(certs, store, server_name, at, anchors=anchors, ders=ders, rules=rules)
        extras: tuple[x509.Certificate, ...] = ()
        if verdict.completable:
            extras = await self._complete(certs[-1], now, steps)
            if extras:
                verdict = self.verdicts.verify(
                    certs, store, server_name, at, extra=extras, anchors=anchors, ders=ders, rules=rules
                )
        _log_chain(verdict, steps)
        return verdict, extras

    # -- steps --------------------------------------------------------------------------------------

    async def _complete(self, last: x509.Certificate, now: float, steps: list[str]) -> tuple[x509.Certificate, ...]:
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
                    steps.append(f"aia: {e}")
                    continue
                found.extend(c for c in fetched if c not in found)
                nxt = issuer_of(current, fetched)
                steps.append(
                    f"aia: {url}: {len(fetched)} certificate(s)"
                    + (f", issuer {nxt.subject.rfc4514_string()}" if nxt else ", none issued it")
                )
                if nxt is not None:
                    break
            if nxt is None or self_issued(nxt):
                break
            current = nxt
        return tuple(found)

    async def _revocation(
        self,
        leaf: x509.Certificate,
        pairs: Sequence[tuple[x509.Certificate, x509.Certificate]],
        staple: bytes | None,
        profile: Profile,
        at: dt.datetime,
        now: float,
        steps: list[str],
    ) -> tuple[OcspStatus, bool]:
        """The leaf's OCSP status and whether any certificate of the path is revoked.

        Raises ``_FetchFailed`` when no responder or CRL answered at all: revocation unknown.
        """
        mode, max_age = profile.revocation, profile.revocation_interval
        issuer = pairs[0][1] if pairs and pairs[0][0] is leaf else None
        status, revoked = OcspStatus.NOT_CHECKED, False
        if staple is not None:
            if issuer is None:
                steps.append("ocsp: staple received, but the leaf's issuer is unknown")
            else:
                from exporter.certs.revocation import judge_ocsp  # (imported at first use: `check` starts faster)

                v = judge_ocsp(staple, leaf, issuer, at)
                steps.append(
                    f"ocsp: staple {v.status}" + (f" ({v.detail})" if v.detail and v.status == "error" else "")
                )
                if v.status != "error" or mode != RevocationMode.OCSP:
                    status = OcspStatus(v.status)
        if mode == RevocationMode.OCSP:
            if status is OcspStatus.NOT_CHECKED:
                if issuer is None:
                    steps.append("ocsp: not checked (issuer of the leaf unknown)")
                else:
                    status = await self._ocsp(leaf, issuer, at, now, max_age, steps, label="leaf")
            revoked = status is OcspStatus.REVOKED
            for cert, parent in pairs[1:]:
                if not ocsp_urls(cert):
                    continue
                if await self._ocsp(cert, parent, at, now, max_age, steps, label="intermediate") is OcspStatus.REVOKED:
                    revoked = True
        elif mode == RevocationMode.CRL:
            for cert, parent in pairs:
                if await self._crl(cert, parent, at, now, max_age, steps):
                    revoked = True
            revoked = revoked or status is OcspStatus.REVOKED
        return status, revoked

    async def _ocsp(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        now: float,
        max_age: float,
        steps: list[str],
        *,
        label: str,
    ) -> OcspStatus:
        urls = ocsp_urls(cert)
        if not urls:
            steps.append(f"ocsp: {label} names no responder: not checked")
            return OcspStatus.NOT_CHECKED
        from exporter.certs.revocation import judge_ocsp, ocsp_request

        request = ocsp_request(cert, issuer)
        failures = []
        for url in urls[:2]:
            try:
                body = await self.fetcher.ocsp(url, request, now=now, max_age=max_age)
            except FetchError as e:
                failures.append(str(e))
                steps.append(f"ocsp: {label}: {e}")
                continue
            v = judge_ocsp(body, cert, issuer, at)
            steps.append(f"ocsp: {label}: {url}: {v.status}" + (f" ({v.detail})" if v.detail else ""))
            return OcspStatus(v.status)
        raise _FetchFailed(f"no OCSP responder of the {label} answered: " + "; ".join(failures))

    async def _crl(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        now: float,
        max_age: float,
        steps: list[str],
    ) -> bool:
        from exporter.certs.revocation import crl_urls, judge_crl_list

        name = cert.subject.rfc4514_string()
        urls = crl_urls(cert)
        if not urls:
            steps.append(f"crl: {name}: no distribution point")
            return False
        failures = []
        for url in urls[:2]:
            try:
                crl = await self.fetcher.crl(url, now=now, max_age=max_age)
            except FetchError as e:
                failures.append(str(e))
                steps.append(f"crl: {name}: {e}")
                continue
            v = judge_crl_list(crl, cert, issuer, at)
            steps.append(f"crl: {name}: {url}: {v.status}" + (f" ({v.detail})" if v.detail else ""))
            if v.status != "error":
                return v.status == "revoked"
        if failures:
            raise _FetchFailed(f"no CRL of {name} could be fetched: " + "; ".join(failures))
        return False


@dataclass(kw_only=True)
class _Work:
    """What the steps of one assessment share: the inputs, and what each step found for the next."""

    session: Session
    server_name: str
    profile: Profile
    scan: Sequence[hello.HelloResult]
    graded: bool
    deadline: Deadline
    at: dt.datetime
    now: float
    certs: list[x509.Certificate] = field(default_factory=list)
    ders: list[bytes] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    statuses: list[tuple[Step, StepResult]] = field(default_factory=list)
    verdict: ChainVerdict | None = None
    extras: tuple[x509.Certificate, ...] = ()
    issues: set[str] = field(default_factory=set)
    ocsp_status: OcspStatus | None = OcspStatus.NOT_CHECKED
    revoked: bool = False
    stapled: bool = False
    grade: Grade | None = None
    port: int | None = None
    dns: DnsSettings = field(default_factory=DnsSettings)
    caa_issuers: Mapping[str, str] = field(default_factory=dict)
    dns_facts: DnsFacts | None = None


async def _grade_step(w: _Work) -> StepResult:
    """The grade, from what the other steps found and the version scan (never guessed without it)."""
    if not w.graded:
        w.log.append("grade: none until the version scan has run")
        return StepResult(StepStatus.SKIPPED, "no version scan yet")
    verdict = w.verdict
    signed = (verdict.path if verdict and verdict.path else ()) or (
        w.certs[0],
        *[c for c in w.certs[1:] if not self_issued(c)],
    )
    vouched = vouched_by(verdict.path) if verdict and verdict.path else None
    g = grade(_grade_input(w.session, w.certs[0], w.ders[0], signed, w.scan, w.issues, w.profile, vouched))
    w.grade = g
    w.log.append(
        f"grade: {g.grade} (score {g.score:g}, if trusted {g.if_trusted})"
        + (": " + "; ".join(g.reasons) if g.reasons else "")
    )
    return StepResult(StepStatus.COMPLETED)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _parse(chain_der: Sequence[bytes], steps: list[str]) -> tuple[list[x509.Certificate], list[bytes]]:
    """The certificates that parse, and their DER bytes as received (verdict keys, leaf facts)."""
    out: list[x509.Certificate] = []
    ders: list[bytes] = []
    for i, der in enumerate(chain_der):
        try:
            out.append(x509.load_der_x509_certificate(der))
            ders.append(der)
        except ValueError as e:
            if i == 0:
                steps.append(f"chain: the leaf does not parse: {e}")
                return [], []
            steps.append(f"chain: certificate {i} does not parse and is ignored: {e}")
    return out, ders


def path_info(verdict: ChainVerdict) -> PathInfo | None:
    """The path the verifier built to a trust anchor, if it built one."""
    if not verdict.path:
        return None
    anchor = verdict.path[-1]
    cns = anchor.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    root = str(cns[0].value) if cns else anchor.subject.rfc4514_string()
    return PathInfo(
        root=root,
        length=len(verdict.path),
        cross_signed=verdict.cross_signed,
        subjects=tuple(c.subject.rfc4514_string() for c in verdict.path),
    )


def _log_chain(v: ChainVerdict, steps: list[str]) -> None:
    if v.valid and not v.issues:
        steps.append(f"chain: valid, {len(v.path)} certificates up to {v.path[-1].subject.rfc4514_string()}")
        return
    state = "valid" if v.valid else "invalid"
    steps.append(f"chain: {state} ({', '.join(sorted(v.issues)) or 'no issue'})")
    steps.extend(f"chain: {reason}" for reason in v.reasons)
    if v.detail:
        log.debug("chain verifier said: %s", v.detail)


def _valid_staple(
    staple: bytes | None,
    leaf: x509.Certificate,
    pairs: Sequence[tuple[x509.Certificate, x509.Certificate]],
    at: dt.datetime,
) -> bool:
    """A staple counts only when it is a valid, current answer about the leaf, signed for its issuer."""
    if not staple or not pairs or pairs[0][0] is not leaf:
        return False
    from exporter.certs.revocation import judge_ocsp

    return judge_ocsp(staple, leaf, pairs[0][1], at).status != "error"


def _pairs(path: Sequence[x509.Certificate]) -> list[tuple[x509.Certificate, x509.Certificate]]:
    return [(path[i], path[i + 1]) for i in range(len(path) - 1)]


def _pairs_served(
    certs: Sequence[x509.Certificate], extras: Sequence[x509.Certificate]
) -> list[tuple[x509.Certificate, x509.Certificate]]:
    """Without a verified path: the leaf and whichever served or fetched certificate signed it."""
    issuer = issuer_of(certs[0], [*certs[1:], *extras])
    return [(certs[0], issuer)] if issuer is not None else []


def _grade_input(
    session: Session,
    leaf: x509.Certificate,
    leaf_der: bytes,
    signed: Sequence[x509.Certificate],
    scan: Sequence[hello.HelloResult],
    issues: set[str],
    profile: Profile,
    vouched: Vouched | None = None,
) -> GradeInput:
    accepted = [r for r in scan if r.accepted]
    protocols = {normalize_version(r.version) for r in accepted} or {normalize_version(session.version)}
    infos = [r.suite_info for r in accepted]
    key_type, key_bits = key_of(leaf)
    hashes = tuple(signature_of(c)[1] for c in signed if not self_issued(c, vouched))
    return GradeInput(
        protocols=frozenset(protocols),
        cipher=session.cipher,
        cipher_bits=(session.cipher_bits, *(i.bits for i in infos if i is not None)),
        suites=tuple(i.name for i in infos if i is not None),
        key_type=key_type,
        key_bits=key_bits,
        ephemeral=tuple(r.key_exchange for r in accepted if r.key_exchange is not None),
        signature_hashes=hashes,
        weak_hashes=profile.weak_signature_hashes,
        key_weak=key_weak(facts_from_der(leaf_der), profile),  # cached by DER, as received
        chain_issues=frozenset(issues),
        hsts=session.hsts,
    )
