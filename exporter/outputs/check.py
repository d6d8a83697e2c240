"""`tls-exporter check`: the verdict on a result (``exporter.outputs.verdict``), as text or JSON;
exit Nagios-style (0 OK, 1 warning, 2 critical, 3 unknown)."""

from __future__ import annotations

import time
from typing import Any

from exporter.certs.findings import (
    Severity,
)
from exporter.certs.tiers import days_left, tier_of
from exporter.config.model import Job, Profile
from exporter.judge.scan import ScanResult
from exporter.outputs.inventory import location_entry
from exporter.outputs.verdict import Judgement, verdict
from exporter.results import DnsFacts, Result
from exporter.support.textsafe import terminal_safe


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def perfdata(days: float | None, profile: Profile) -> str:
    """Nagios performance data: days left with the profile's warning and critical thresholds."""
    if days is None:
        return ""
    tiers = profile.expiry_tiers
    warn = "" if tiers.warning is None or tiers.warning.days is None else f"{tiers.warning.days:g}"
    crit = "" if tiers.critical is None or tiers.critical.days is None else f"{tiers.critical.days:g}"
    return f"days={days:.1f};{warn};{crit}"


def result_json(
    result: Result, job: Job, profile: Profile, now: float, scan: ScanResult | None = None
) -> dict[str, Any]:
    """One location: the inventory's entry for it (the very object `GET /api/v1/inventory` gives),
    with what only `check` adds: its Nagios status and, for a served chain, the leaf's details,
    the chain, the versions accepted."""
    v = verdict(result, job, profile, now, scan)
    entry = location_entry(job, result, profile, scan, now).as_json()
    entry["status"] = v.status.name.lower()
    if not job.served:
        return entry
    report = result.report
    out: dict[str, Any] = {"duration_seconds": round(result.duration, 4)}
    if report is not None:
        leaf = report.leaf
        a = report.assessment
        out.update(
            {
                "tls_version": result.session.version if result.session else None,
                "cipher": result.session.cipher if result.session else None,
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
                "key_weak": report.key_weak[0],
                "signature_weak": report.signature_weak[0],
                "owner": report.owner,
                "expected": dict(report.expected),
                "chain_valid": a.chain_valid if a else None,
                "chain_issues": sorted(a.chain_issues) if a else [],
                "ocsp_status": a.ocsp_status.value if a and a.ocsp_status else None,
                "protocols_accepted": dict(scan.accepted) if scan else {},
                "grade": a.grade if a else None,
                "score": a.score if a else None,
                "assessment_errors": sorted(a.errors) if a else [],
                "dns": _dns_json(a.dns) if a and a.dns else None,
                "chain": [
                    {"position": i, "subject": c.subject, "serial": c.serial, "not_after": _iso(c.not_after)}
                    for i, c in enumerate(report.chain)
                ],
            }
        )
    for key, value in out.items():
        entry.setdefault(key, value)  # the inventory's facts win: one object
    return entry


def render_text(result: Result, job: Job, profile: Profile, now: float, scan: ScanResult | None = None) -> str:
    v = verdict(result, job, profile, now, scan)
    report = result.report
    if not job.served:
        lines = [f"{v.status.name} {job.kind} {result.location}: {result.outcome.value} {result.detail}".rstrip()]
        for i, c in enumerate(report.chain if report else ()):
            tier = tier_of(c.not_before, c.not_after, now, profile.expiry_tiers)
            lines.append(
                f"  [{i}] {c.subject}  serial {c.serial}  expires {_iso(c.not_after)} "
                f"({days_left(c.not_after, now):.1f} days, tier {tier.value})"
            )
        lines += _finding_lines(v)
        return "\n".join(map(terminal_safe, lines))  # subjects, details: no raw control bytes
    lines = [f"{v.status.name} {job.protocol}://{job.target} {result.location or '(unresolved)'}"]
    if report is None:
        lines.append(f"  outcome:   {result.outcome.value} ({result.detail})")
    else:
        leaf = report.leaf
        tier = tier_of(leaf.not_before, leaf.not_after, now, profile.expiry_tiers)
        session = f"{result.session.version} {result.session.cipher}" if result.session else ""
        lines += [
            f"  subject:   {leaf.subject}",
            f"  issuer:    {leaf.issuer}",
            f"  serial:    {leaf.serial}",
            f"  sha256:    {leaf.fingerprint_sha256}",
            f"  names:     {', '.join(leaf.sans) or '(none)'}",
            f"  expires:   {_iso(leaf.not_after)} ({days_left(leaf.not_after, now):.1f} days, tier {tier.value})",
            f"  key:       {leaf.key_type} {leaf.key_bits} bits; signature {leaf.signature_algorithm}",
            f"  session:   {session}",
            f"  host name: {_host_name(report.hostname_match)} {job.server_name or ''}".rstrip(),
        ]
        a = report.assessment
        if a is not None and a.chain_valid is not None:
            lines.append(
                f"  chain:     {'valid' if a.chain_valid else 'INVALID'} {', '.join(sorted(a.chain_issues))}".rstrip()
            )
        if a is not None and a.path is not None:
            via = " via a cross-signed certificate" if a.path.cross_signed else ""
            lines.append(f"  path:      {a.path.length} certificates to {a.path.root}{via}")
        for i, c in enumerate(report.chain):
            role = "leaf" if i == 0 else ("root" if c.self_signed and c.is_ca else "intermediate")
            lines.append(f"    [{i}] {role}: {c.subject}  expires {_iso(c.not_after)}")
        if a is not None:
            ocsp = a.ocsp_status.value if a.ocsp_status else "not judged"
            lines.append(f"  OCSP:      {ocsp}{' (stapled)' if a.ocsp_stapled else ''}")
        if a is not None and a.dns is not None:
            lines += _dns_lines(a.dns)
        if scan is not None and scan.answered:
            versions = ", ".join(f"{v} {'yes' if ok else 'no'}" for v, ok in scan.accepted)
            lines.append(f"  versions:  {versions}")
        if a is not None and a.grade is not None:
            lines.append(f"  grade:     {a.grade} (score {a.score:g})")
        if a is not None and a.errors:
            lines.append(f"  not judged: {', '.join(sorted(a.errors))} (an error on the exporter's side)")
        lines.append(f"  owner:     {report.owner or '(none)'}")
    lines += _finding_lines(v)
    return "\n".join(map(terminal_safe, lines))  # subjects, details: no raw control bytes


def _dns_json(d: DnsFacts) -> dict[str, Any]:
    """DANE and CAA as ``check --json`` shows them (null: not looked up, or the lookup failed)."""
    return {
        "tlsa_name": d.tlsa_name or None,
        "tlsa_records": d.tlsa_records,
        "dane_match": d.dane_match,
        "dnssec_validated": d.dane_validated,
        "caa_name": d.caa_name or None,
        "caa": dict(d.caa) if d.caa else None,
        "caa_permits_issuer": d.caa_permits,
    }


def _dns_lines(d: DnsFacts) -> list[str]:
    lines = []
    if d.tlsa_records is not None:
        secure = "DNSSEC-validated" if d.dane_validated else "NOT DNSSEC-validated"
        if d.tlsa_records == 0:
            lines.append(f"  DANE:      no TLSA record at {d.tlsa_name} ({secure})")
        else:
            matched = "matches" if d.dane_match else "DOES NOT MATCH"
            lines.append(
                f"  DANE:      {d.tlsa_records} TLSA record(s) at {d.tlsa_name}, {secure}; the chain {matched}"
            )
    if d.caa_checked and d.caa_permits is not None:
        if not d.caa:
            lines.append("  CAA:       no CAA set on the name or its parents (every CA may issue)")
        else:
            tags = "; ".join(f"{tag} {value}" for tag, value in d.caa if value)
            permits = "permits" if d.caa_permits else "DOES NOT PERMIT"
            lines.append(f"  CAA:       at {d.caa_name}: {tags}; {permits} the issuer")
    return lines


def _finding_lines(v: Judgement) -> list[str]:
    """Each finding (worst first); the remedy once per code."""
    lines: list[str] = []
    told: set[str] = set()
    for f in v.findings:
        lines.append(f"  {'info:' if f.severity is Severity.INFO else 'problem:':<10} {f.text} [{f.code}]")
        if f.severity is not Severity.INFO and f.code not in told:
            told.add(f.code)
            lines.append(f"  {'remedy:':<10} {f.remedy}")
    return lines


def verdict_section(judgements: list[tuple[str, Judgement]]) -> str:
    """`/probe?debug=true`'s verdict: per location, the verdict and its findings with their remedies."""
    lines = []
    for where, v in judgements:
        lines.append(f"{where}: {v.verdict.value}")
        lines += [f"  {f.severity.value:<9}{f.text} [{f.code}]\n  {'':<9}remedy: {f.remedy}" for f in v.findings]
    return "\n".join(lines)


def _host_name(match: bool | None) -> str:
    return "not verified (no name)" if match is None else "matches" if match else "DOES NOT MATCH"
