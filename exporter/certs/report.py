"""The leaf judgement of one served chain (or one file's certificates) under a profile."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from exporter.certs.facts import cert_facts
from exporter.certs.identity import expected_checks, hostname_matches
from exporter.certs.owners import owner_for
from exporter.certs.strength import key_weak, signature_weak
from exporter.config.model import Expect, OwnerRule, Profile
from exporter.results import CertReport


def parse_chain(chain_der: Sequence[bytes]) -> list[x509.Certificate]:
    """Parse each DER certificate; one that cannot be parsed raises ValueError naming its position."""
    certs = []
    for position, der in enumerate(chain_der):
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise ValueError(f"certificate {position} of the served chain cannot be parsed: {exc}") from None
    return certs


def leaf_report(
    chain: Sequence[x509.Certificate],
    *,
    server_name: str,
    expect: Expect | None,
    profile: Profile,
    owner_rules: Sequence[OwnerRule],
    fallback_owner: str,
) -> CertReport:
    facts = tuple(cert_facts(c) for c in chain)
    leaf = facts[0]
    return CertReport(
        chain=facts,
        hostname_match=hostname_matches(leaf, server_name),
        expected=expected_checks(leaf, expect),
        key_weak=key_weak(leaf, profile),
        signature_weak=signature_weak(facts, profile),
        owner=owner_for(leaf, owner_rules, fallback_owner),
    )
