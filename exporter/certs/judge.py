"""The judge: an ``Observation`` and a profile in, a ``Result`` out. Pure; no I/O, no clock.

One judge for every source: the same facts, owners, strength and identity checks apply to a
served chain and to a file's certificates. What differs is data, not code: a served chain
is judged as a leaf with its chain (host name, expectation, the chain's signatures weaken the
leaf), a file as independent certificates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography import x509

from exporter.certs.facts import cert_facts
from exporter.certs.identity import expected_checks, hostname_matches
from exporter.certs.owners import owner_for
from exporter.certs.strength import key_weak, signature_weak
from exporter.config.model import Job, OwnerRule, Profile
from exporter.results import CertFacts, CertReport, Observation, Result
from exporter.support.errors import FileOutcome, Outcome
from exporter.support.lru import BytesLRU

FACTS_CACHE_BYTES = 64 * 1024 * 1024  # facts of certificates; a 10,000-name certificate is ~0.5 MB
FACTS = BytesLRU[bytes, CertFacts](FACTS_CACHE_BYTES)


def facts_from_der(der: bytes) -> CertFacts:
    """Facts of one DER certificate. Cached: most probes and reads see what they saw last time.

    Keyed by the DER's SHA-256, not the DER: the key would keep a copy of every certificate's
    bytes (1-2 KB each, 10,000 distinct leaves 10-20 MB) that nothing else needs."""
    key = hashlib.sha256(der).digest()
    hit = FACTS.get(key)
    if hit is None:
        hit = cert_facts(x509.load_der_x509_certificate(der))
        # The facts hold the certificate's names (at most about its DER's size), and some overhead.
        FACTS.put(key, hit, len(der) + sum(map(len, hit.sans)) + 1024)
    return hit


def chain_facts(ders: Sequence[bytes]) -> tuple[CertFacts, ...]:
    """Facts of each certificate; one that cannot be described raises ValueError naming its position."""
    facts = []
    for position, der in enumerate(ders):
        try:
            facts.append(facts_from_der(der))
        except Exception as exc:  # parse errors, and certificates cryptography loads but cannot describe
            raise ValueError(f"certificate {position} cannot be parsed: {type(exc).__name__}: {exc}") from None
    return tuple(facts)


def judge(obs: Observation, job: Job, profile: Profile, owner_rules: Sequence[OwnerRule]) -> Result:
    """The report on what ``obs`` saw; an observation without certificates passes through unjudged.

    Certificates seen before a failure (a handshake refused for want of a client certificate) are
    judged too: the outcome still says the probe failed, and the certificate series show."""
    if not obs.certificates:
        return _result(obs, obs.outcome, obs.detail, None)
    try:
        chain = chain_facts(obs.certificates)
    except ValueError as exc:
        if obs.outcome.value != "certificate_found":
            return _result(obs, obs.outcome, obs.detail, None)
        return _result(obs, job.unparsable, str(exc), None)
    owners = tuple(owner_for(c, owner_rules, job.owner) for c in chain)
    weak_keys = tuple(key_weak(c, profile) for c in chain)
    weak_signatures = [signature_weak([c], profile) for c in chain]
    if job.served:
        weak_signatures[0] = signature_weak(chain, profile)  # a weak link anywhere weakens what the leaf proves
        report = CertReport(
            chain=chain,
            owners=owners,
            key_weak=weak_keys,
            signature_weak=tuple(weak_signatures),
            hostname_match=hostname_matches(chain[0], job.server_name) if job.server_name else None,
            expected=expected_checks(chain[0], job.expect),
        )
    else:
        report = CertReport(chain=chain, owners=owners, key_weak=weak_keys, signature_weak=tuple(weak_signatures))
    return _result(obs, obs.outcome, obs.detail, report)


def _result(obs: Observation, outcome: Outcome | FileOutcome, detail: str, report: CertReport | None) -> Result:
    return Result(
        location=obs.location,
        outcome=outcome,
        detail=detail,
        started_at=obs.started_at,
        duration=obs.duration,
        session=obs.session,
        report=report,
        log=obs.log,
    )
