"""Turn results into exposition lines: pure functions from values to text.

An address's lines split in two: those that only change with a new probe result (cached until
then) and the three that move with the clock (days left, chain days left, tier), filled in at
every scrape from cached label prefixes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.certs.tiers import Tier, days_left, tier_of
from exporter.config.model import Profile
from exporter.errors import FileOutcome, Outcome
from exporter.metrics import names as n
from exporter.metrics.text import Exposition, label_text, number
from exporter.results import CertFacts, FileResult, ProbeResult

MAX_SANS_LABEL = 1024
TIERS = tuple(Tier)
Labels = Mapping[str, str]


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

    def render(self, ex: Exposition, profile: Profile, now: float) -> None:
        ex.add_text(n.CERT_DAYS_LEFT, self.labels, round(days_left(self.not_after, now), 4))
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
            ex.add_text(n.CHAIN_DAYS_LEFT, self.labels, round(days_left(self.chain_not_after, now), 4))


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
        },
        1,
    )
    ex.add(n.CERT_KEY_BITS, {**labels, "key_type": cert.key_type}, cert.key_bits)
    ex.add(n.CERT_SIGNATURE_INFO, {**labels, "algorithm": cert.signature_algorithm, "hash": cert.signature_hash}, 1)


def address_static(ex: Exposition, labels: Labels, result: ProbeResult, last_change: float | None) -> ClockLines | None:
    """Every series of one probed address that does not move with the clock; returns the ones that do."""
    ex.add(n.PROBE_SUCCESS, labels, 1 if result.success else 0)
    _state_set(ex, n.HANDSHAKE_OUTCOME, labels, "outcome", OUTCOMES, result.outcome.value)
    ex.add(n.PROBE_DURATION, labels, round(result.duration, 6))
    ex.add(n.PROBE_TIMESTAMP, labels, round(result.started_at, 3))
    report = result.report
    if report is None or result.outcome is not Outcome.CERTIFICATE_FOUND:
        return None  # no certificate, no certificate series: the outcome says why
    leaf = report.leaf
    _cert_static(ex, labels, leaf)
    ex.add(n.CERT_HOSTNAME_MATCH, labels, 1 if report.hostname_match else 0)
    for check, match in report.expected:
        ex.add(n.CERT_EXPECTED_MATCH, {**labels, "check": check}, 1 if match else 0)
    ex.add(n.CERT_KEY_WEAK, labels, 1 if report.key_weak else 0)
    ex.add(n.CERT_SIGNATURE_WEAK, labels, 1 if report.signature_weak else 0)
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
    if result.version:
        ex.add(n.CONNECTION_INFO, {**labels, "version": result.version, "cipher": result.cipher or ""}, 1)
    if last_change is not None:
        ex.add(n.CERT_LAST_CHANGE, labels, round(last_change, 3))
    if report.chain_valid is not None:
        ex.add(n.CHAIN_VALID, labels, 1 if report.chain_valid else 0)
        for issue in sorted(report.chain_issues):
            ex.add(n.CHAIN_ISSUE, {**labels, "issue": issue}, 1)
        ex.add(n.OCSP_STATUS, {**labels, "status": report.ocsp_status}, 1)
        ex.add(n.OCSP_STAPLED, labels, 1 if report.ocsp_stapled else 0)
    for version, accepted in report.protocols_accepted:
        ex.add(n.PROTOCOL_ACCEPTED, {**labels, "version": version}, 1 if accepted else 0)
    if report.grade is not None:
        ex.add(n.SECURITY_GRADE, {**labels, "grade": report.grade}, 1)
    if report.score is not None:
        ex.add(n.SECURITY_SCORE, labels, report.score)
    return ClockLines(label_text(labels), leaf.not_before, leaf.not_after, min(c.not_after for c in report.chain))


def address_lines(
    ex: Exposition, labels: Labels, result: ProbeResult, profile: Profile, now: float, last_change: float | None
) -> None:
    """Static and clock lines of one address, uncached (for /probe)."""
    clock = address_static(ex, labels, result, last_change)
    if clock is not None:
        clock.render(ex, profile, now)


def file_lines(
    ex: Exposition,
    labels: Labels,
    result: FileResult,
    profile: Profile,
    now: float,
    last_change: Mapping[tuple[str, int], float],
) -> None:
    _state_set(ex, n.FILE_OUTCOME, labels, "outcome", FILE_OUTCOMES, result.outcome.value)
    for position, cert in enumerate(result.certificates):
        owner = result.owners[position] if position < len(result.owners) else labels.get("owner", "")
        cl = {**labels, "owner": owner, "position": str(position)}
        _cert_static(ex, cl, cert)
        ClockLines(label_text(cl), cert.not_before, cert.not_after, None).render(ex, profile, now)
        if position < len(result.key_weak):
            ex.add(n.CERT_KEY_WEAK, cl, 1 if result.key_weak[position] else 0)
        if position < len(result.signature_weak):
            ex.add(n.CERT_SIGNATURE_WEAK, cl, 1 if result.signature_weak[position] else 0)
        changed = last_change.get((result.path, position))
        if changed is not None:
            ex.add(n.CERT_LAST_CHANGE, cl, round(changed, 3))


__all__ = ["ClockLines", "address_lines", "address_static", "file_lines", "number", "sans_label"]
