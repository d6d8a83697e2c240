"""Turn results into exposition lines: pure functions from values to text, one writer for every source.

A location's lines split in two: those that only change with a new result (cached until then)
and the three that move with the clock (days left, chain days left, tier), filled in at every
scrape from cached label prefixes. A served chain is written as its leaf plus chain series; a
file as each of its certificates with a ``position`` label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.certs.policy import below_minimum, validity_too_long
from exporter.certs.tiers import Tier, days_left, tier_of
from exporter.config.model import Job, Profile
from exporter.judge.scan import ScanResult
from exporter.metrics import names as n
from exporter.metrics.text import Exposition, label_text, line, number
from exporter.results import Assessment, CertFacts, CertReport, DnsFacts, Result
from exporter.support.errors import FileOutcome, Outcome

MAX_SANS_LABEL = 1024
TIERS = tuple(Tier)
Labels = Mapping[str, str]
LabelsFor = Callable[[str], dict[str, str]]  # owner -> the location's labels


def sans_label(sans: tuple[str, ...]) -> str:
    return ",".join(sans)[:MAX_SANS_LABEL]


def role_of(position: int, cert: CertFacts) -> str:
    if position == 0:
        return "leaf"
    return "root" if cert.self_signed and cert.is_ca else "intermediate"


@dataclass(slots=True)
class ClockLines:
    """The label prefixes of the series that move with time, for one certificate."""

    labels: str
    not_before: float
    not_after: float
    chain_not_after: float | None  # earliest expiry of the served chain, network targets only
    _tier: Tier | None = None  # the tier lines change a few times in a certificate's life: cache them
    _tier_text: str = ""
    _days: str = ""  # `name{labels} ` of the days-left lines, made once (every scrape writes them)
    _chain_days: str = ""

    def __post_init__(self) -> None:
        self._days = line(n.CERT_DAYS_LEFT, self.labels, 0.0).rpartition(" ")[0] + " "
        self._chain_days = line(n.CHAIN_DAYS_LEFT, self.labels, 0.0).rpartition(" ")[0] + " "

    def render(self, ex: Exposition, profile: Profile, now: float) -> None:
        lines = ex.lines
        lines[n.CERT_DAYS_LEFT].append(f"{self._days}{number(round(days_left(self.not_after, now), 4))}\n")
        current = tier_of(self.not_before, self.not_after, now, profile.expiry_tiers)
        if current is not self._tier:
            sep = "," if self.labels else ""
            self._tier_text = "".join(
                f'{n.CERT_TIER}{{{self.labels}{sep}tier="{tier.value}"}} {"1.0" if tier is current else "0.0"}\n'
                for tier in TIERS
            )
            self._tier = current
        ex.lines.setdefault(n.CERT_TIER, []).append(self._tier_text)
        if self.chain_not_after is not None:
            days = number(round(days_left(self.chain_not_after, now), 4))
            lines[n.CHAIN_DAYS_LEFT].append(f"{self._chain_days}{days}\n")


def _state_set(ex: Exposition, name: str, labels: Labels, label: str, states: tuple[str, ...], current: str) -> None:
    for state in states:
        ex.add(name, {**labels, label: state}, 1.0 if state == current else 0.0)


OUTCOMES = tuple(o.value for o in Outcome)
FILE_OUTCOMES = tuple(o.value for o in FileOutcome)


def _cert_static(ex: Exposition, labels: Labels, cert: CertFacts) -> None:
    ex.add(n.CERT_NOT_AFTER, labels, cert.not_after)
    ex.add(n.CERT_NOT_BEFORE, labels, cert.not_before)
    ex.add(
        n.CERT_INFO,
        {
            **labels,
            "subject": cert.subject,
            "issuer": cert.issuer,
            "serial": cert.serial,
            "fingerprint_sha256": cert.fingerprint_sha256,
            "sans": sans_label(cert.sans),
            "key_usage": cert.key_usage,
            "extended_key_usage": cert.extended_key_usage,
        },
        1,
    )
    ex.add(n.CERT_KEY_BITS, {**labels, "key_type": cert.key_type}, cert.key_bits)
    ex.add(n.CERT_SIGNATURE_INFO, {**labels, "algorithm": cert.signature_algorithm, "hash": cert.signature_hash}, 1)


def _assessment(ex: Exposition, labels: Labels, a: Assessment) -> None:
    for step in sorted(a.errors):
        ex.add(n.ASSESSMENT_ERROR, {**labels, "step": step.value}, 1)
    if a.chain_valid is not None:  # absent, never 0, when the chain could not be judged
        ex.add(n.CHAIN_VALID, labels, 1 if a.chain_valid else 0)
        for issue in sorted(a.chain_issues):
            ex.add(n.CHAIN_ISSUE, {**labels, "issue": issue}, 1)
    if a.path is not None:
        path = {"root": a.path.root, "length": str(a.path.length), "cross_signed": str(a.path.cross_signed).lower()}
        ex.add(n.CHAIN_PATH_INFO, {**labels, **path}, 1)
    if a.ocsp_status is not None:
        ex.add(n.OCSP_STATUS, {**labels, "status": a.ocsp_status.value}, 1)
        ex.add(n.OCSP_STAPLED, labels, 1 if a.ocsp_stapled else 0)
    if a.grade is not None:
        ex.add(n.SECURITY_GRADE, {**labels, "grade": a.grade}, 1)
    if a.score is not None:
        ex.add(n.SECURITY_SCORE, labels, a.score)
    if a.dns is not None:
        _dns(ex, labels, a.dns)


def _dns(ex: Exposition, labels: Labels, d: DnsFacts) -> None:
    """DANE and CAA; a fact that was not looked up (or whose lookup failed) has no series."""
    if d.tlsa_records is not None:
        ex.add(n.DANE_TLSA_RECORDS, labels, d.tlsa_records)
        if d.dane_validated is not None:
            ex.add(n.DANE_DNSSEC_VALIDATED, labels, 1 if d.dane_validated else 0)
        if d.dane_match is not None:
            ex.add(n.DANE_MATCH, labels, 1 if d.dane_match else 0)
    if d.caa:
        ex.add(n.CAA_INFO, {**labels, **dict(d.caa)}, 1)
    if d.caa_permits is not None:
        ex.add(n.CAA_PERMITS_ISSUER, labels, 1 if d.caa_permits else 0)


def scan_lines(ex: Exposition, labels: Labels, scan: ScanResult, profile: Profile) -> None:
    """The latest version scan of an address, merged in when rendering, judged by the profile's minimum."""
    if not scan.answered:
        ex.add(n.ASSESSMENT_ERROR, {**labels, "step": "protocol_scan"}, 1)
        return
    for version, accepted in scan.accepted:
        ex.add(n.PROTOCOL_ACCEPTED, {**labels, "version": version}, 1 if accepted else 0)
    below = 1 if below_minimum(scan.accepted, profile.min_tls_version) else 0
    ex.add(n.PROTOCOL_BELOW_MINIMUM, {**labels, "minimum": profile.min_tls_version}, below)
    ex.add(n.PROTOCOL_SCAN_TIMESTAMP, labels, round(scan.at, 3))


def _certificate(
    ex: Exposition, labels: Labels, report: CertReport, position: int, last_change: tuple[float, ...], profile: Profile
) -> None:
    """The series of one judged certificate: identity, validity, strength, last change."""
    cert = report.chain[position]
    _cert_static(ex, labels, cert)
    too_long = validity_too_long(cert, profile.max_validity)
    if too_long is not None:
        ex.add(n.CERT_VALIDITY_TOO_LONG, labels, 1 if too_long else 0)
    ex.add(n.CERT_KEY_WEAK, labels, 1 if report.key_weak[position] else 0)
    ex.add(n.CERT_SIGNATURE_WEAK, labels, 1 if report.signature_weak[position] else 0)
    if position < len(last_change):
        ex.add(n.CERT_LAST_CHANGE, labels, round(last_change[position], 3))


def served_static(
    ex: Exposition,
    labels_for: LabelsFor,
    owner: str,
    result: Result,
    last_change: tuple[float, ...],
    profile: Profile,
) -> list[ClockLines]:
    """Every series of one probed address that does not move with the clock; returns the ones that do."""
    report = result.report
    labels = labels_for(report.owner if report is not None else owner)
    ex.add(n.PROBE_SUCCESS, labels, 1 if result.success else 0)
    _state_set(ex, n.HANDSHAKE_OUTCOME, labels, "outcome", OUTCOMES, result.outcome.value)
    ex.add(n.PROBE_DURATION, labels, round(result.duration, 6))
    ex.add(n.PROBE_TIMESTAMP, labels, round(result.started_at, 3))
    if report is None:
        return []  # no certificate, no certificate series: the outcome says why
    leaf = report.leaf
    _certificate(ex, labels, report, 0, last_change, profile)
    if report.hostname_match is not None:  # None: no name to verify (an endpoint found by its address)
        ex.add(n.CERT_HOSTNAME_MATCH, labels, 1 if report.hostname_match else 0)
    for check, match in report.expected:
        ex.add(n.CERT_EXPECTED_MATCH, {**labels, "check": check}, 1 if match else 0)
    for position, cert in enumerate(report.chain):
        ex.add(
            n.CHAIN_CERT_NOT_AFTER,
            {
                **labels,
                "position": str(position),
                "role": role_of(position, cert),
                "subject": cert.subject,
                "serial": cert.serial,
            },
            cert.not_after,
        )
    if result.session is not None and result.session.version:
        ex.add(n.CONNECTION_INFO, {**labels, "version": result.session.version, "cipher": result.session.cipher}, 1)
    if report.assessment is not None:
        _assessment(ex, labels, report.assessment)
    return [ClockLines(label_text(labels), leaf.not_before, leaf.not_after, min(c.not_after for c in report.chain))]


def stored_static(
    ex: Exposition,
    labels_for: LabelsFor,
    owner: str,
    result: Result,
    last_change: tuple[float, ...],
    profile: Profile,
) -> list[ClockLines]:
    """Every series of one certificate file that does not move with the clock; returns the ones that do."""
    labels = labels_for(owner)
    _state_set(ex, n.FILE_OUTCOME, labels, "outcome", FILE_OUTCOMES, result.outcome.value)
    report = result.report
    if report is None:
        return []
    clocks = []
    for position, cert in enumerate(report.chain):
        cl = {**labels_for(report.owners[position]), "position": str(position)}
        _certificate(ex, cl, report, position, last_change, profile)
        clocks.append(ClockLines(label_text(cl), cert.not_before, cert.not_after, None))
    return clocks


def location_static(
    ex: Exposition,
    labels_for: LabelsFor,
    job: Job,
    result: Result,
    last_change: tuple[float, ...],
    profile: Profile,
    scan: ScanResult | None = None,
) -> list[ClockLines]:
    """The static lines of one location of any source, and its clock lines: a served chain's
    (leaf, chain, session, scan), or every stored certificate's with its position."""
    owner = job.owner
    if not job.served:
        return stored_static(ex, labels_for, owner, result, last_change, profile)
    clocks = served_static(ex, labels_for, owner, result, last_change, profile)
    if scan is not None and result.report is not None:
        scan_lines(ex, labels_for(result.report.owner if result.report else owner), scan, profile)
    return clocks


__all__ = ["ClockLines", "location_static", "number", "sans_label", "scan_lines"]
