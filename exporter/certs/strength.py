"""Key and signature strength under a profile."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.config.model import Profile
from exporter.results import CertFacts


def key_weak(facts: CertFacts, profile: Profile) -> bool:
    """Below the profile's minimum for its key type (types without a minimum are never weak)."""
    minimum = profile.min_key_bits.get(facts.key_type)
    return minimum is not None and facts.key_bits < minimum


def signature_weak(chain: Sequence[CertFacts], profile: Profile) -> bool:
    """A weak hash signs the leaf or an intermediate. A self-signed root's own signature is
    never checked by clients, so it does not count."""
    weak = set(profile.weak_signature_hashes)
    return any(c.signature_hash in weak for c in chain if not (c.self_signed and c.is_ca))
