"""The inventory: one entry per address and per file, with the verdict `check` gives it and the
facts behind it. `GET /api/v1/inventory` serves it as JSON and the `/` page renders it, so the
two (and `check`) cannot disagree.

A file is one entry: its certificates are listed in ``certificates`` and its headline facts
(days left, not after, tier, serial, subject, issuer, owner) are those of the certificate that
expires first, the one that needs attention first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from exporter.certs.findings import Finding, Verdict
from exporter.certs.tiers import days_left, tier_of
from exporter.config.model import Config, ExpiryTiers, Job, Profile
from exporter.judge.scan import ScanResult
from exporter.outputs.verdict import verdict
from exporter.results import CertFacts, PathInfo, Result, Step, StepResult, steps_json

if TYPE_CHECKING:  # the scheduler's store: `check --json` builds entries without it, and starts faster
    from exporter.schedule.store import Entry

Snapshot: TypeAlias = "Sequence[tuple[Job, Mapping[str, Entry]]]"
ScanOf = Callable[[Job, str], ScanResult | None]  # the latest version scan of a location
DueOf = Callable[[Job], float | None]  # when the job's next probe is due (unix time); None: running now


@dataclass(frozen=True, slots=True, kw_only=True)
class Cert:
    position: int
    subject: str
    issuer: str
    serial: str
    fingerprint_sha256: str
    not_before: float
    not_after: float
    days_left: float
    tier: str
    owner: str

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256,
            "not_before": iso(self.not_before),
            "not_after": iso(self.not_after),
            "days_left": round(self.days_left, 3),
            "tier": self.tier,
            "owner": self.owner,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryEntry:
    kind: str  # the source's word for one location: "address", "file" ...
    served: bool  # a live endpoint (its location is an address), or stored certificates (a path)
    target: str  # the address as configured, or the path/glob of `files:`
    location: str  # the address probed, or the file's path; "" when none (not probed, name not resolved)
    protocol: str  # "file" for files
    server_name: str | None
    name: str
    owner: str
    profile: str
    labels: tuple[tuple[str, str], ...]
    verdict: Verdict
    problems: tuple[str, ...]
    findings: tuple[Finding, ...]
    outcome: str | None  # None: not probed yet
    detail: str
    last_probe: float | None  # unix time the probe started
    last_probe_age: float | None  # seconds before `now`
    certificates: tuple[Cert, ...]  # a served chain in order, or every certificate of the file
    headline: Cert | None  # the leaf of an address, the first to expire of a file
    grade: str | None = None
    grading: bool = False  # no grade yet: the version scan it depends on has not run
    score: float | None = None
    chain_valid: bool | None = None
    chain_issues: tuple[str, ...] = ()
    chain_path: PathInfo | None = None  # the path to a trust anchor the verifier built
    ocsp_status: str | None = None
    hostname_match: bool | None = None
    tls_version: str | None = None
    steps: tuple[tuple[Step, StepResult], ...] = ()  # each judgement step with its own status
    next_probe: float | None = None  # unix time the next (for `pending`: the first) probe is due

    def as_json(self) -> dict[str, Any]:
        h = self.headline
        return {
            "kind": self.kind,
            "target": self.target,
            "address": (self.location or None) if self.served else None,
            "path": (self.location or None) if not self.served else None,
            "protocol": self.protocol,
            "server_name": self.server_name,
            "name": self.name,
            "owner": self.owner,
            "profile": self.profile,
            "labels": dict(self.labels),
            "verdict": self.verdict.value,
            "problems": list(self.problems),
            "findings": [f.as_json() for f in self.findings],
            "outcome": self.outcome,
            "detail": self.detail,
            "days_left": round(h.days_left, 3) if h else None,
            "not_before": iso(h.not_before) if h else None,
            "not_after": iso(h.not_after) if h else None,
            "tier": h.tier if h else None,
            "serial": h.serial if h else None,
            "subject": h.subject if h else None,
            "issuer": h.issuer if h else None,
            "fingerprint_sha256": h.fingerprint_sha256 if h else None,
            "grade": self.grade,
            "grading": self.grading,
            "score": self.score,
            "chain_valid": self.chain_valid,
            "chain_issues": list(self.chain_issues),
            "chain_path": self.chain_path.as_json() if self.chain_path is not None else None,
            "ocsp_status": self.ocsp_status,
            "hostname_match": self.hostname_match,
            "tls_version": self.tls_version,
            "steps": steps_json(self.steps),
            "last_probe": iso(self.last_probe) if self.last_probe is not None else None,
            "last_probe_age_seconds": round(self.last_probe_age, 1) if self.last_probe_age is not None else None,
            "next_probe": iso(self.next_probe) if self.next_probe is not None else None,
            "certificates": [c.as_json() for c in self.certificates],
        }


def iso(ts: float) -> str:
    """ISO 8601 UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _cert(position: int, c: CertFacts, owner: str, tiers: ExpiryTiers, now: float) -> Cert:
    return Cert(
        position=position,
        subject=c.subject,
        issuer=c.issuer,
        serial=c.serial,
        fingerprint_sha256=c.fingerprint_sha256,
        not_before=c.not_before,
        not_after=c.not_after,
        days_left=days_left(c.not_after, now),
        tier=tier_of(c.not_before, c.not_after, now, tiers).value,
        owner=owner,
    )


def _pending(job: Job) -> InventoryEntry:
    return InventoryEntry(
        kind=job.kind,
        served=job.served,
        target=job.target,
        location="",
        protocol=job.protocol,
        server_name=job.server_name,
        name=job.name,
        owner=job.owner,
        profile=job.profile,
        labels=job.labels,
        verdict=Verdict.PENDING,
        problems=(),
        findings=(),
        outcome=None,
        detail="not probed yet",
        last_probe=None,
        last_probe_age=None,
        certificates=(),
        headline=None,
    )


def location_entry(job: Job, result: Result, profile: Profile, scan: ScanResult | None, now: float) -> InventoryEntry:
    """One location as every output shows it: its verdict, its findings and its facts."""
    v = verdict(result, job, profile, now, scan)
    report = result.report
    certs: tuple[Cert, ...] = ()
    headline = None
    if report is not None:
        certs = tuple(
            _cert(i, c, report.owners[i] if i < len(report.owners) else job.owner, profile.expiry_tiers, now)
            for i, c in enumerate(report.chain)
        )
        # A served chain is headed by its leaf; stored certificates by the one that expires first.
        headline = certs[0] if job.served else min(certs, key=lambda c: c.not_after, default=None)
    a = report.assessment if report is not None else None
    return InventoryEntry(
        kind=job.kind,
        served=job.served,
        target=job.target,
        location=result.location,
        protocol=job.protocol,
        server_name=job.server_name,
        name=job.name,
        owner=(headline.owner if headline is not None else "") or job.owner,
        profile=job.profile,
        labels=job.labels,
        verdict=v.verdict,
        problems=v.problems,
        findings=v.findings,
        outcome=result.outcome.value,
        detail=result.detail,
        last_probe=result.started_at or None,
        last_probe_age=max(0.0, now - result.started_at) if result.started_at else None,
        certificates=certs,
        headline=headline,
        grade=a.grade if a else None,
        grading=a is not None and a.grade is None and Step.GRADE not in a.errors and profile.scan_protocol_versions,
        score=a.score if a else None,
        chain_valid=a.chain_valid if a else None,
        chain_issues=tuple(sorted(a.chain_issues)) if a else (),
        chain_path=a.path if a else None,
        ocsp_status=a.ocsp_status.value if a and a.ocsp_status else None,
        hostname_match=report.hostname_match if report is not None else None,
        tls_version=result.session.version if result.session else None,
        steps=a.steps if a else (),
    )


def build_inventory(
    snapshot: Snapshot,
    config: Config,
    scan_of: ScanOf | None = None,
    now: float | None = None,
    due_of: DueOf | None = None,
) -> list[InventoryEntry]:
    """Every location of every job in configuration order (locations sorted); a job without
    results yet is one `pending` entry."""
    now = time.time() if now is None else now
    out: list[InventoryEntry] = []
    for job, entries in snapshot:
        due = due_of(job) if due_of is not None else None
        if not entries:
            out.append(replace(_pending(job), next_probe=due))
            continue
        for location in sorted(entries):
            result = entries[location].result
            scan = scan_of(job, location) if scan_of is not None else None
            entry = location_entry(job, result, config.profile(job.profile), scan, now)
            out.append(replace(entry, next_probe=due) if due is not None else entry)
    return out
