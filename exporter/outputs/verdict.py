"""The verdict on one location: its findings by the table of ``exporter.certs.findings`` and the
worst severity among them. Made once here for every output: `check`, the inventory, `/probe?debug`
(the reports judge Prometheus series by the same table). One verdict for every source: the
certificates a result follows (a served leaf, every certificate of a file) are judged by the same
rules, and a served chain adds what only a handshake shows (host name, chain, revocation, versions)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum

from exporter.certs.findings import (
    OUTCOME_CODES,
    Finding,
    Severity,
    Verdict,
    finding,
    ordered,
    problems_of,
    verdict_of,
)
from exporter.certs.policy import below_minimum, validity_too_long
from exporter.certs.tiers import Tier, days_left, tier_of
from exporter.config.model import Job, Profile
from exporter.judge.scan import ScanResult
from exporter.results import CertFacts, DnsFacts, OcspStatus, Result


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Status(IntEnum):
    """The exit code: the verdict, or UNKNOWN when nothing could be judged."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


_STATUS = {Verdict.OK: Status.OK, Verdict.WARNING: Status.WARNING, Verdict.CRITICAL: Status.CRITICAL}


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """The verdict on one location and the findings it rests on (worst first)."""

    verdict: Verdict
    findings: tuple[Finding, ...]

    @property
    def status(self) -> Status:
        return _STATUS.get(self.verdict, Status.UNKNOWN)

    @property
    def problems(self) -> tuple[str, ...]:
        return problems_of(self.findings)


def _certificate(cert: CertFacts, profile: Profile, now: float, where: str, out: list[Finding]) -> None:
    """Not yet valid, expired and the expiry tiers of one certificate."""
    left = days_left(cert.not_after, now)
    tier = tier_of(cert.not_before, cert.not_after, now, profile.expiry_tiers)
    if now < cert.not_before:
        out.append(finding("not_yet_valid", f"{where} not valid before {_iso(cert.not_before)}"))
    if tier is Tier.EXPIRED:
        out.append(finding("expired", f"{where} expired {-left:.1f} days ago"))
    elif tier is Tier.CRITICAL:
        out.append(finding("expiry_critical", f"{where} expires in {left:.1f} days (critical tier)"))
    elif tier is Tier.WARNING:
        out.append(finding("expiry_warning", f"{where} expires in {left:.1f} days (warning tier)"))
    elif tier is Tier.INFO:
        out.append(finding("expiry_info", f"{where} expires in {left:.1f} days (info tier)"))


def verdict(result: Result, job: Job, profile: Profile, now: float, scan: ScanResult | None = None) -> Judgement:
    """The findings on one location (an address or a file) and the verdict they make."""
    out: list[Finding] = []
    report = result.report
    outcome = result.outcome.value
    if report is None or outcome != "certificate_found":
        # No certificate judged, or certificates seen before the probe failed (a client certificate wanted).
        prefix = "probe failed: " if job.served else ""
        code = OUTCOME_CODES.get(outcome, "handshake_failed")
        out.append(finding(code, f"{prefix}{outcome}: {result.detail}"))
    if report is None:
        return Judgement(verdict=verdict_of(out), findings=ordered(out))
    served = job.served
    followed = report.chain[:1] if served else report.chain
    for position, cert in enumerate(followed):
        where = "certificate" if served else f"certificate {position} ({cert.subject_cn or cert.subject})"
        _certificate(cert, profile, now, where, out)
        if validity_too_long(cert, profile.max_validity):
            days = (cert.not_after - cert.not_before) / 86400
            limit = (profile.max_validity or 0) / 86400
            out.append(
                finding(
                    "validity_too_long",
                    f"{where} is valid for {days:.0f} days, longer than max_validity ({limit:g} days)",
                )
            )
        if report.key_weak[position]:
            key = f"{cert.key_type} {cert.key_bits} bits"
            out.append(finding("weak_key", f"weak key: {key}" if served else f"{where}: weak key {key}"))
        if report.signature_weak[position]:
            text = (
                "weak signature hash in the chain" if served else f"{where}: weak signature {cert.signature_algorithm}"
            )
            out.append(finding("weak_signature", text))
    if served:
        leaf = report.leaf
        if report.hostname_match is False:
            out.append(finding("hostname_mismatch", f"certificate does not cover {job.server_name}"))
        a = report.assessment
        if a is not None:
            revoked = a.ocsp_status is OcspStatus.REVOKED or "revoked" in a.chain_issues
            if a.chain_valid is False:
                chain = _chain_problems(a.chain_issues, a.chain_reasons)
                out.extend(finding("chain_invalid", line) for line in chain)
                if not chain and not revoked and not any(f.severity is Severity.CRITICAL for f in out):
                    # Every issue was to have a finding of its own and none came: never a valid-looking chain.
                    issues = ", ".join(sorted(a.chain_issues)) or "does not verify"
                    out.append(finding("chain_invalid", f"chain invalid: {issues}"))
            if revoked:
                out.append(finding("revoked", "certificate revoked"))
            if a.dns is not None:
                _dns(a.dns, out)
        for check, match in report.expected:
            if not match:
                out.append(
                    finding("expected_mismatch", f"expected {check} does not match (served serial {leaf.serial})")
                )
        if scan is not None:
            legacy = below_minimum(scan.accepted, profile.min_tls_version)
            if legacy:
                versions = ", ".join(legacy)
                text = f"legacy protocol accepted: {versions} (below min_tls_version {profile.min_tls_version})"
                out.append(finding("legacy_protocol", text))
    return Judgement(verdict=verdict_of(out), findings=ordered(out))


def _dns(facts: DnsFacts, out: list[Finding]) -> None:
    """DANE and CAA: what the ``dns`` step found (nothing when it could not look)."""
    if facts.tlsa_records:
        if facts.dane_match is False:
            out.append(
                finding("dane_mismatch", f"DANE: no TLSA record at {facts.tlsa_name} matches: {facts.dane_detail}")
            )
        if facts.dane_validated is False:
            out.append(
                finding(
                    "dane_not_validated",
                    f"DANE: the {facts.tlsa_records} TLSA record(s) at {facts.tlsa_name} are not DNSSEC-validated "
                    "(no AD bit from the resolver)",
                )
            )
    if facts.caa_permits is False:
        out.append(finding("caa_not_permitted", facts.caa_detail))


# Issues that have a finding of their own (host name, revocation): not repeated as chain findings.
_OWN_FINDING = frozenset({"hostname_mismatch", "revoked", "wrong_order"})

# Validity issues of the leaf have their own finding too; an intermediate's or a root's do not.
_LEAF_VALIDITY = ("expired: certificate 0 (", "not_yet_valid: certificate 0 (")

PRIVATE_CA_HINT = (
    "if this is a private CA, trust it: `check --ca-file CA.pem`, or the profile's `trust:` in the configuration"
)


def _chain_problems(issues: frozenset[str], reasons: tuple[str, ...]) -> list[str]:
    """One line per cause, naming the certificate; a hint when only a private CA is missing."""
    rest = set(issues) - _OWN_FINDING
    lines = [f"chain invalid: {r}" for r in reasons if r.split(":", 1)[0] in rest and not r.startswith(_LEAF_VALIDITY)]
    if not lines and rest - {"expired", "not_yet_valid"}:
        lines = ["chain invalid: " + ", ".join(sorted(rest))]
    if lines and set(issues) == {"untrusted_root"}:
        lines[-1] += f" ({PRIVATE_CA_HINT})"
    return lines


def days_of(result: Result, job: Job, now: float) -> float | None:
    """Days left of the soonest-expiring certificate the result follows."""
    report = result.report
    if report is None:
        return None
    followed = report.chain[:1] if job.served else report.chain
    return min(days_left(c.not_after, now) for c in followed)


def worst(statuses: list[Status]) -> Status:
    return max(statuses, default=Status.UNKNOWN)
