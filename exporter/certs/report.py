"""The leaf judgement of one served chain (or one file's certificates) under a profile."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from cryptography import x509

from exporter.certs.facts import cert_facts
from exporter.certs.identity import expected_checks, hostname_matches
from exporter.certs.owners import owner_for
from exporter.certs.strength import key_weak, signature_weak
from exporter.config.model import Expect, OwnerRule, Profile
from exporter.results import CertFacts, CertReport


@lru_cache(maxsize=16384)
def facts_from_der(der: bytes) -> CertFacts:
    """Facts of one DER certificate. Cached: most probes see the certificate they saw last time."""
    return cert_facts(x509.load_der_x509_certificate(der))


def chain_facts(chain_der: Sequence[bytes]) -> tuple[CertFacts, ...]:
    """Facts of each served certificate; one that cannot be parsed raises ValueError naming its position."""
    facts = []
    for position, der in enumerate(chain_der):
        try:
            facts.append(facts_from_der(der))
        except ValueError as exc:
            raise ValueError(f"certificate {position} of the served chain cannot be parsed: {exc}") from None
    return tuple(facts)


def leaf_report(
    facts: tuple[CertFacts, ...],
    *,
    server_name: str,
    expect: Expect | None,
    profile: Profile,
    owner_rules: Sequence[OwnerRule],
    fallback_owner: str,
) -> CertReport:
    leaf = facts[0]
    return CertReport(
        chain=facts,
        hostname_match=hostname_matches(leaf, server_name),
        expected=expected_checks(leaf, expect),
        key_weak=key_weak(leaf, profile),
        signature_weak=signature_weak(facts, profile),
        owner=owner_for(leaf, owner_rules, fallback_owner),
    )
