"""`tls-exporter check`: probe once, print a report, exit Nagios-style (0 OK, 1 warning, 2 critical, 3 unknown)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from exporter.certs.tiers import Tier, days_left, tier_of
from exporter.config.model import Config, Profile, Target
from exporter.errors import FileOutcome
from exporter.results import CertFacts, FileResult, ProbeResult

LEGACY_VERSIONS = frozenset({"SSLv3", "TLSv1.0", "TLSv1.1"})


class Status(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    status: Status
    problems: tuple[str, ...]


def _judge_expiry(
    cert: CertFacts, profile: Profile, now: float, where: str, critical: list[str], warning: list[str]
) -> None:
    """Expired and critical tiers are critical; the warning tier is a warning."""
    left = days_left(cert.not_after, now)
    tier = tier_of(cert.not_before, cert.not_after, now, profile.expiry_tiers)
    if tier is Tier.EXPIRED:
        critical.append(f"{where} expired {-left:.1f} days ago")
    elif tier is Tier.CRITICAL:
        critical.append(f"{where} expires in {left:.1f} days (critical tier)")
    elif tier is Tier.WARNING:
        warning.append(f"{where} expires in {left:.1f} days (warning tier)")


def judge(result: ProbeResult, target: Target, config: Config, now: float) -> Verdict:
    """The contract's rules for the exit status of one probed address."""
    report = result.report
    if report is None:
        return Verdict(status=Status.CRITICAL, problems=(f"probe failed: {result.outcome}: {result.detail}",))
    critical: list[str] = []
    warning: list[str] = []
    leaf = report.leaf
    _judge_expiry(leaf, config.profile(target.profile), now, "certificate", critical, warning)
    if not report.hostname_match:
        critical.append(f"certificate does not cover {target.server_name}")
    if report.chain_valid is False:
        critical.append("chain invalid: " + (", ".join(sorted(report.chain_issues)) or "does not verify"))
    if report.ocsp_status == "revoked" or "revoked" in report.chain_issues:
        critical.append("certificate revoked")
    if report.key_weak:
        warning.append(f"weak key: {leaf.key_type} {leaf.key_bits} bits")
    if report.signature_weak:
        warning.append("weak signature hash in the chain")
    for check, match in report.expected:
        if not match:
            warning.append(f"expected {check} does not match (served serial {leaf.serial})")
    legacy = [v for v, accepted in report.protocols_accepted if accepted and v in LEGACY_VERSIONS]
    if legacy:
        warning.append("legacy protocol accepted: " + ", ".join(legacy))
    if critical:
        return Verdict(status=Status.CRITICAL, problems=tuple(critical + warning))
    if warning:
        return Verdict(status=Status.WARNING, problems=tuple(warning))
    return Verdict(status=Status.OK, problems=())


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def result_json(result: ProbeResult, target: Target, config: Config, now: float) -> dict[str, Any]:
    verdict = judge(result, target, config, now)
    out: dict[str, Any] = {
        "address": result.address,
        "outcome": result.outcome.value,
        "detail": result.detail,
        "status": verdict.status.name.lower(),
        "problems": list(verdict.problems),
        "duration_seconds": round(result.duration, 4),
    }
    report = result.report
    if report is not None:
        leaf = report.leaf
        profile = config.profile(target.profile)
        out.update(
            {
                "tls_version": result.version,
                "cipher": result.cipher,
                "leaf": {
                    "subject": leaf.subject,
                    "issuer": leaf.issuer,
                    "serial": leaf.serial,
                    "fingerprint_sha256": leaf.fingerprint_sha256,
                    "sans": list(leaf.sans),
                    "not_before": _iso(leaf.not_before),
                    "not_after": _iso(leaf.not_after),
                    "days_until_expiry": round(days_left(leaf.not_after, now), 3),
                    "tier": tier_of(leaf.not_before, leaf.not_after, now, profile.expiry_tiers).value,
                    "key_type": leaf.key_type,
                    "key_bits": leaf.key_bits,
                    "signature_algorithm": leaf.signature_algorithm,
                },
                "hostname_match": report.hostname_match,
                "key_weak": report.key_weak,
                "signature_weak": report.signature_weak,
                "owner": report.owner,
                "expected": dict(report.expected),
                "chain_valid": report.chain_valid,
                "chain_issues": sorted(report.chain_issues),
                "ocsp_status": report.ocsp_status,
                "protocols_accepted": dict(report.protocols_accepted),
                "grade": report.grade,
                "score": report.score,
                "chain": [
                    {"position": i, "subject": c.subject, "serial": c.serial, "not_after": _iso(c.not_after)}
                    for i, c in enumerate(report.chain)
                ],
            }
        )
    return out


def render_text(result: ProbeResult, target: Target, config: Config, now: float) -> str:
    verdict = judge(result, target, config, now)
    head = f"{verdict.status.name} {target.protocol}://{target.target} {result.address or '(unresolved)'}"
    lines = [head]
    report = result.report
    if report is None:
        lines.append(f"  outcome:   {result.outcome.value} ({result.detail})")
    else:
        leaf = report.leaf
        tier = tier_of(leaf.not_before, leaf.not_after, now, config.profile(target.profile).expiry_tiers)
        lines += [
            f"  subject:   {leaf.subject}",
            f"  issuer:    {leaf.issuer}",
            f"  serial:    {leaf.serial}",
            f"  sha256:    {leaf.fingerprint_sha256}",
            f"  names:     {', '.join(leaf.sans) or '(none)'}",
            f"  expires:   {_iso(leaf.not_after)} ({days_left(leaf.not_after, now):.1f} days, tier {tier.value})",
            f"  key:       {leaf.key_type} {leaf.key_bits} bits; signature {leaf.signature_algorithm}",
            f"  session:   {result.version} {result.cipher}",
            f"  host name: {'matches' if report.hostname_match else 'DOES NOT MATCH'} {target.server_name}",
        ]
        if report.chain_valid is not None:
            lines.append(
                f"  chain:     {'valid' if report.chain_valid else 'INVALID'} "
                f"{', '.join(sorted(report.chain_issues))}".rstrip()
            )
        if report.grade is not None:
            lines.append(f"  grade:     {report.grade} (score {report.score:g})")
        lines.append(f"  owner:     {report.owner or '(none)'}")
    lines += [f"  problem:   {p}" for p in verdict.problems]
    return "\n".join(lines)


def worst(statuses: list[Status]) -> Status:
    return max(statuses, default=Status.UNKNOWN)


def judge_file(result: FileResult, profile: Profile, now: float) -> Verdict:
    """The same rules for a certificate file: each certificate of it counts."""
    if result.outcome is not FileOutcome.CERTIFICATE_FOUND:
        return Verdict(status=Status.CRITICAL, problems=(f"{result.outcome.value}: {result.detail}",))
    critical: list[str] = []
    warning: list[str] = []
    for position, cert in enumerate(result.certificates):
        where = f"certificate {position} ({cert.subject_cn or cert.subject})"
        _judge_expiry(cert, profile, now, where, critical, warning)
        if position < len(result.key_weak) and result.key_weak[position]:
            warning.append(f"{where}: weak key {cert.key_type} {cert.key_bits} bits")
        if position < len(result.signature_weak) and result.signature_weak[position]:
            warning.append(f"{where}: weak signature {cert.signature_algorithm}")
    if critical:
        return Verdict(status=Status.CRITICAL, problems=tuple(critical + warning))
    return Verdict(status=Status.WARNING if warning else Status.OK, problems=tuple(warning))


def file_json(result: FileResult, profile: Profile, now: float) -> dict[str, Any]:
    verdict = judge_file(result, profile, now)
    return {
        "path": result.path,
        "outcome": result.outcome.value,
        "detail": result.detail,
        "status": verdict.status.name.lower(),
        "problems": list(verdict.problems),
        "certificates": [
            {
                "position": i,
                "subject": c.subject,
                "issuer": c.issuer,
                "serial": c.serial,
                "fingerprint_sha256": c.fingerprint_sha256,
                "not_after": _iso(c.not_after),
                "days_until_expiry": round(days_left(c.not_after, now), 3),
                "tier": tier_of(c.not_before, c.not_after, now, profile.expiry_tiers).value,
            }
            for i, c in enumerate(result.certificates)
        ],
    }


def file_text(result: FileResult, profile: Profile, now: float) -> str:
    verdict = judge_file(result, profile, now)
    lines = [f"{verdict.status.name} file {result.path}: {result.outcome.value} {result.detail}".rstrip()]
    for i, c in enumerate(result.certificates):
        tier = tier_of(c.not_before, c.not_after, now, profile.expiry_tiers)
        lines.append(
            f"  [{i}] {c.subject}  serial {c.serial}  expires {_iso(c.not_after)} "
            f"({days_left(c.not_after, now):.1f} days, tier {tier.value})"
        )
    lines += [f"  problem:   {p}" for p in verdict.problems]
    return "\n".join(lines)
