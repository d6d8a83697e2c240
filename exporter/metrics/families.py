"""Turn results into metric families: pure functions from values to samples.

Label sets differ between targets (extra labels), so samples are appended with their own
label dicts rather than through a fixed label-name list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

from exporter.certs.tiers import Tier, days_left, tier_of
from exporter.config.model import Profile
from exporter.errors import FileOutcome, Outcome
from exporter.metrics import names as n
from exporter.results import CertFacts, FileResult, ProbeResult

MAX_SANS_LABEL = 1024
Labels = Mapping[str, str]


class Families:
    """Collects samples by metric name, in first-use order, and yields prometheus_client Metrics."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def add(self, name: str, labels: Labels, value: float, kind: Literal["gauge", "counter"] = "gauge") -> None:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = Metric(name, n.HELP[name], kind)
        metric.samples.append(Sample(name, dict(labels), float(value), None, None))

    def state_set(self, name: str, labels: Labels, label: str, states: Iterator[str] | list[str], current: str) -> None:
        for state in states:
            self.add(name, {**labels, label: state}, 1.0 if state == current else 0.0)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._metrics.values())


def sans_label(sans: tuple[str, ...]) -> str:
    return ",".join(sans)[:MAX_SANS_LABEL]


def role_of(position: int, cert: CertFacts) -> str:
    if position == 0:
        return "leaf"
    return "root" if cert.self_signed and cert.is_ca else "intermediate"


def cert_samples(f: Families, labels: Labels, cert: CertFacts, profile: Profile, now: float) -> None:
    """Series every certificate with a known identity gets (leaf of an address, or a file's certificate)."""
    f.add(n.CERT_NOT_AFTER, labels, cert.not_after)
    f.add(n.CERT_NOT_BEFORE, labels, cert.not_before)
    f.add(n.CERT_DAYS_LEFT, labels, round(days_left(cert.not_after, now), 4))
    f.state_set(n.CERT_TIER, labels, "tier", list(Tier), tier_of(cert.not_before, cert.not_after, now,
                                                                   profile.expiry_tiers))
    f.add(n.CERT_INFO, {**labels, "subject": cert.subject, "issuer": cert.issuer, "serial": cert.serial,
                        "fingerprint_sha256": cert.fingerprint_sha256, "sans": sans_label(cert.sans)}, 1)
    f.add(n.CERT_KEY_BITS, {**labels, "key_type": cert.key_type}, cert.key_bits)
    f.add(n.CERT_SIGNATURE_INFO, {**labels, "algorithm": cert.signature_algorithm, "hash": cert.signature_hash}, 1)


def address_samples(f: Families, labels: Labels, result: ProbeResult, profile: Profile, now: float,
                    last_change: float | None) -> None:
    """Every series of one probed address (``labels`` already carry target, address, owner ...)."""
    f.add(n.PROBE_SUCCESS, labels, 1 if result.success else 0)
    f.state_set(n.HANDSHAKE_OUTCOME, labels, "outcome", list(Outcome), result.outcome)
    f.add(n.PROBE_DURATION, labels, round(result.duration, 6))
    f.add(n.PROBE_TIMESTAMP, labels, round(result.started_at, 3))
    report = result.report
    if report is None or result.outcome is not Outcome.CERTIFICATE_FOUND:
        return  # no certificate, no certificate series: the outcome says why
    leaf = report.leaf
    cert_samples(f, labels, leaf, profile, now)
    f.add(n.CERT_HOSTNAME_MATCH, labels, 1 if report.hostname_match else 0)
    for check, match in report.expected:
        f.add(n.CERT_EXPECTED_MATCH, {**labels, "check": check}, 1 if match else 0)
    f.add(n.CERT_KEY_WEAK, labels, 1 if report.key_weak else 0)
    f.add(n.CERT_SIGNATURE_WEAK, labels, 1 if report.signature_weak else 0)
    for position, cert in enumerate(report.chain):
        f.add(n.CHAIN_CERT_NOT_AFTER, {**labels, "position": str(position), "role": role_of(position, cert),
                                       "subject": cert.subject, "serial": cert.serial}, cert.not_after)
    f.add(n.CHAIN_DAYS_LEFT, labels, round(days_left(min(c.not_after for c in report.chain), now), 4))
    if result.version:
        f.add(n.CONNECTION_INFO, {**labels, "version": result.version, "cipher": result.cipher or ""}, 1)
    if last_change is not None:
        f.add(n.CERT_LAST_CHANGE, labels, round(last_change, 3))
    if report.chain_valid is not None:
        f.add(n.CHAIN_VALID, labels, 1 if report.chain_valid else 0)
        for issue in sorted(report.chain_issues):
            f.add(n.CHAIN_ISSUE, {**labels, "issue": issue}, 1)
        f.add(n.OCSP_STATUS, {**labels, "status": report.ocsp_status}, 1)
        f.add(n.OCSP_STAPLED, labels, 1 if report.ocsp_stapled else 0)
    for version, accepted in report.protocols_accepted:
        f.add(n.PROTOCOL_ACCEPTED, {**labels, "version": version}, 1 if accepted else 0)
    if report.grade is not None:
        f.add(n.SECURITY_GRADE, {**labels, "grade": report.grade}, 1)
    if report.score is not None:
        f.add(n.SECURITY_SCORE, labels, report.score)


def file_samples(f: Families, labels: Labels, result: FileResult, profile: Profile, now: float,
                 last_change: Mapping[tuple[str, int], float]) -> None:
    f.state_set(n.FILE_OUTCOME, labels, "outcome", list(FileOutcome), result.outcome)
    for position, cert in enumerate(result.certificates):
        owner = result.owners[position] if position < len(result.owners) else labels.get("owner", "")
        cl = {**labels, "owner": owner, "position": str(position)}
        cert_samples(f, cl, cert, profile, now)
        if position < len(result.key_weak):
            f.add(n.CERT_KEY_WEAK, cl, 1 if result.key_weak[position] else 0)
        if position < len(result.signature_weak):
            f.add(n.CERT_SIGNATURE_WEAK, cl, 1 if result.signature_weak[position] else 0)
        changed = last_change.get((result.path, position))
        if changed is not None:
            f.add(n.CERT_LAST_CHANGE, cl, round(changed, 3))
