"""Ownership: a certificate-based rule wins over the target's owner, which wins over the default."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from exporter.config.model import OwnerRule
from exporter.results import CertFacts


def _values(facts: CertFacts, field: str) -> tuple[str, ...]:
    if field == "subject_cn":
        return (facts.subject_cn,)
    if field == "issuer_cn":
        return (facts.issuer_cn,)
    if field == "san":
        return facts.sans
    if field == "fingerprint_sha256":
        return (facts.fingerprint_sha256,)
    return ()


def owner_for(facts: CertFacts | None, rules: Sequence[OwnerRule], fallback: str) -> str:
    """The owner of the first rule that matches (case-insensitive glob), else ``fallback``."""
    if facts is not None:
        for rule in rules:
            pattern = rule.pattern.lower()
            if any(fnmatchcase(v.lower(), pattern) for v in _values(facts, rule.field)):
                return rule.owner
    return fallback
