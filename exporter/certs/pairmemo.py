"""Answers about a (certificate, issuer) pair remembered by the pair's fingerprints.

Signature checks outside the verifier (pairing a leaf with its issuer when no path was built,
telling roots, diagnosing a failed chain) ran on every probe of every endpoint serving the same
chain: 50-100 µs each. The memo keys on SHA-256 fingerprints, so it holds no certificate, and
is bounded in bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from exporter.support.lru import BytesLRU

T = TypeVar("T")
_SHA256 = hashes.SHA256()
_ENTRY_BYTES = 128  # two 32-byte digests, the tuples and the answer


class PairMemo(Generic[T]):
    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self._lru = BytesLRU[tuple[bytes, bytes], tuple[T]](max_bytes=max_bytes)

    def __call__(
        self, check: Callable[[x509.Certificate, x509.Certificate], T], cert: x509.Certificate, issuer: x509.Certificate
    ) -> T:
        """``check(cert, issuer)``, computed once per pair (a ``None`` answer is remembered too)."""
        key = (cert.fingerprint(_SHA256), issuer.fingerprint(_SHA256))
        known = self._lru.get(key)
        if known is None:
            known = (check(cert, issuer),)
            self._lru.put(key, known, _ENTRY_BYTES)
        return known[0]

    def clear(self) -> None:
        self._lru.clear()
