"""What probes observe and what analysis concludes: immutable values passed one way.

``Observation`` comes out of a prober (bytes and negotiated facts, no judgement);
``CertFacts`` and ``CertReport`` come out of ``exporter.certs`` (pure judgement);
``ProbeResult`` is what the store keeps and the collector renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.errors import FileOutcome, Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one TLS handshake showed, before any judgement."""

    address: str  # "127.0.0.1:443" or "[::1]:443"
    version: str  # "TLSv1.3"
    cipher: str  # OpenSSL name, e.g. "TLS_AES_256_GCM_SHA384"
    cipher_bits: int
    chain_der: tuple[bytes, ...]  # as served, leaf first
    ocsp_staple: bytes | None = None
    hsts: str | None = None  # Strict-Transport-Security header, https only


@dataclass(frozen=True, slots=True, kw_only=True)
class CertFacts:
    """The facts of one certificate that metrics and rules need."""

    subject: str  # RFC 4514
    issuer: str
    subject_cn: str
    issuer_cn: str
    serial: str  # lowercase hex, no colons, no 0x
    fingerprint_sha256: str  # lowercase hex, no colons
    sans: tuple[str, ...]  # DNS names then IPs
    not_before: float  # unix seconds
    not_after: float
    key_type: str  # rsa | ec | dsa | ed25519 | ed448
    key_bits: int
    signature_algorithm: str  # e.g. "sha256WithRSAEncryption"
    signature_hash: str  # e.g. "sha256"; "" when the algorithm has no separate hash (Ed25519)
    self_signed: bool
    is_ca: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CertReport:
    """The judgement on a served chain (or a file's certificates) under a profile."""

    chain: tuple[CertFacts, ...]  # leaf first, as served
    hostname_match: bool
    expected: tuple[tuple[str, bool], ...] = ()  # ("serial", True), ("fingerprint", False)
    key_weak: bool = False
    signature_weak: bool = False
    owner: str = ""
    # Chain, revocation, posture and grade (filled where the profile asks for them).
    chain_valid: bool | None = None
    chain_issues: frozenset[str] = frozenset()
    ocsp_status: str = "not_checked"
    ocsp_stapled: bool = False
    protocols_accepted: tuple[tuple[str, bool], ...] = ()
    grade: str | None = None
    score: float | None = None

    @property
    def leaf(self) -> CertFacts:
        return self.chain[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """The outcome of probing one address of one target."""

    address: str  # "" when the name did not resolve
    outcome: Outcome
    detail: str = ""
    started_at: float = 0.0  # unix seconds
    duration: float = 0.0
    version: str | None = None
    cipher: str | None = None
    report: CertReport | None = None  # set only when outcome is certificate_found
    log: tuple[str, ...] = field(default=(), compare=False)  # step log for /probe?debug=true

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.CERTIFICATE_FOUND and self.report is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class FileResult:
    """The outcome of reading one certificate file (one path of a `files:` entry)."""

    path: str
    outcome: FileOutcome
    detail: str = ""
    read_at: float = 0.0
    certificates: tuple[CertFacts, ...] = ()  # position = index
    owners: tuple[str, ...] = ()  # owner resolved per certificate, same order
    key_weak: tuple[bool, ...] = ()
    signature_weak: tuple[bool, ...] = ()
