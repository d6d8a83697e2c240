"""What sources observe and what the judge concludes: immutable values passed one way.

``Observation`` comes out of a source (``exporter.sources``): where, the outcome, the
certificates as DER, and the session facts when there was a TLS session; no judgement.
``exporter.certs.judge`` turns it into a ``Result`` carrying a ``CertReport``; the store keeps
results, and every output (metrics, the status page, ``check``, logs) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from exporter.support.errors import FileOutcome, Outcome


class Step(StrEnum):
    """A judgement step that can fail on our side without saying anything about the server."""

    CHAIN = "chain"
    REVOCATION = "revocation"
    PROTOCOL_SCAN = "protocol_scan"
    DNS = "dns"  # TLSA (DANE) and CAA lookups, when the profile asks for them
    GRADE = "grade"
    RENDER = "render"  # a job's series could not be rendered: dropped from that scrape


class StepStatus(StrEnum):
    """How one step of the judgement went (sslyze's scan-command status): each step has its own."""

    COMPLETED = "completed"
    SKIPPED = "skipped"  # does not apply here, or not yet (the grade before the first version scan)
    ERROR = "error"  # failed on our side: could not judge; never a finding about the server


@dataclass(frozen=True, slots=True)
class StepResult:
    status: StepStatus
    reason: str = ""  # why it was skipped or failed

    def __str__(self) -> str:
        return f"{self.status} ({self.reason})" if self.reason else str(self.status)


class OcspStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    ERROR = "error"  # the responder answered, but not with a usable response
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """What a TLS handshake negotiated (network sources only)."""

    version: str  # "TLSv1.3"
    cipher: str  # OpenSSL name, e.g. "TLS_AES_256_GCM_SHA384"
    cipher_bits: int = 0
    ocsp_staple: bytes | None = None
    hsts: str | None = None  # Strict-Transport-Security header, https only


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one source saw at one location (an address, or a file path), before any judgement."""

    location: str  # "127.0.0.1:443", "[::1]:443", a file path; "" when a name did not resolve
    outcome: Outcome | FileOutcome
    detail: str = ""
    certificates: tuple[bytes, ...] = ()  # DER, as served (leaf first) or as stored in the file
    session: Session | None = None
    started_at: float = 0.0  # unix seconds
    duration: float = 0.0
    log: tuple[str, ...] = field(default=(), compare=False)  # step log for /probe?debug=true


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
    key_usage: str = ""  # comma-separated RFC 5280 names, e.g. "digitalSignature,keyEncipherment"
    extended_key_usage: str = ""  # e.g. "serverAuth,clientAuth"


@dataclass(frozen=True, slots=True, kw_only=True)
class PathInfo:
    """The path the verifier built from the leaf to a trust anchor (``tls_chain_path_info``)."""

    root: str  # the anchor's commonName, else its RFC 4514 subject
    length: int  # certificates on the path, the anchor included
    cross_signed: bool  # it goes through a cross-signed certificate (see ``chain.cross_signed``)
    subjects: tuple[str, ...]  # leaf first, anchor last

    def as_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "length": self.length,
            "cross_signed": self.cross_signed,
            "certificates": list(self.subjects),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsFacts:
    """What DNS says about a served chain: DANE (TLSA) and CAA, each only when the profile asks."""

    tlsa_name: str = ""  # where the TLSA records were asked for ("" when DANE is not checked)
    tlsa_records: int | None = None  # None: not looked up (DANE off, or the lookup failed)
    dane_match: bool | None = None  # None: no TLSA record (or not looked up)
    dane_validated: bool | None = None  # the AD bit of the TLSA answer
    dane_detail: str = ""
    caa_checked: bool = False
    caa_name: str = ""  # the name of the closest CAA set, "" when there is none
    caa: tuple[tuple[str, str], ...] = ()  # (issue, ...), (issuewild, ...), (iodef, ...) of the closest set
    caa_permits: bool | None = None  # None: not judged
    caa_detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """Chain, revocation and grade of a served chain; each step stands on its own.

    A step that failed on our side is in ``errors`` and its fields stay ``None``: it could not be
    judged, which is not a finding about the server.
    """

    chain_valid: bool | None = None
    chain_issues: frozenset[str] = frozenset()
    chain_reasons: tuple[str, ...] = ()  # one line per issue: the cause, the certificate (position, subject), why
    path: PathInfo | None = None  # the path to a trust anchor, when one was built
    ocsp_status: OcspStatus | None = None
    ocsp_stapled: bool = False
    grade: str | None = None
    score: float | None = None
    reasons: tuple[str, ...] = ()  # why the grade is what it is (caps, deductions)
    dns: DnsFacts | None = None  # None: the profile asks for neither DANE nor CAA
    errors: frozenset[Step] = frozenset()
    # Every step in the order it ran, with its own status: chain, revocation, (dns,) protocol_scan, grade.
    steps: tuple[tuple[Step, StepResult], ...] = ()
    log: tuple[str, ...] = field(default=(), compare=False)

    def step(self, step: Step) -> StepResult | None:
        return next((r for s, r in self.steps if s is step), None)


def steps_json(steps: tuple[tuple[Step, StepResult], ...]) -> dict[str, dict[str, str]]:
    """The steps as JSON: ``{"chain": {"status": "completed", "reason": ""}, ...}``."""
    return {str(s): {"status": str(r.status), "reason": r.reason} for s, r in steps}


@dataclass(frozen=True, slots=True, kw_only=True)
class CertReport:
    """The judgement on a served chain or a file's certificates under a profile.

    Per-certificate tuples are indexed by position. For a served chain, ``signature_weak[0]``
    covers the whole chain (a weak hash signing the leaf or an intermediate weakens the leaf).
    """

    chain: tuple[CertFacts, ...]  # position = index
    owners: tuple[str, ...]
    key_weak: tuple[bool, ...]
    signature_weak: tuple[bool, ...]
    hostname_match: bool | None = None  # None: no name to verify (files)
    expected: tuple[tuple[str, bool], ...] = ()  # ("serial", True), ("fingerprint", False)
    assessment: Assessment | None = None  # None: not assessed (files, or assessment off)

    @property
    def leaf(self) -> CertFacts:
        return self.chain[0]

    @property
    def owner(self) -> str:
        return self.owners[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """A judged observation: what the store keeps and every output renders."""

    location: str
    outcome: Outcome | FileOutcome
    detail: str = ""
    started_at: float = 0.0
    duration: float = 0.0
    session: Session | None = None
    report: CertReport | None = None  # set when certificates were seen (also before a failed handshake)
    log: tuple[str, ...] = field(default=(), compare=False)

    @property
    def success(self) -> bool:
        return self.report is not None and self.outcome.value == "certificate_found"


def normalize_version(version: str) -> str:
    """The stdlib says "TLSv1" for TLS 1.0; metrics say "TLSv1.0"."""
    return {"TLSv1": "TLSv1.0", "SSLv3.0": "SSLv3"}.get(version, version)
