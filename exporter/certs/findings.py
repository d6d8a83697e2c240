"""The findings table: every problem the exporter can find at a location (an address or a file),
with its severity, the alert that pages for it and what to do. One table, so that ``check``, the
inventory, ``/``, ``/probe?debug=true``, the reports and the alert rules cannot disagree: a
location's verdict is the worst severity among its findings (``info`` leaves it ``ok``).

``docs/problems.md`` is rendered from this table (``render_markdown``); a test fails when the two
differ, and another when an alert named here is missing from the rules or has another severity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Verdict(StrEnum):
    """A location's verdict; ``pending`` before its first probe."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    PENDING = "pending"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A row of the table."""

    code: str
    severity: Severity
    alert: str  # the alert rule that fires for it (alerting-rules/)
    title: str
    remedy: str


def _rows(*rows: tuple[str, Severity, str, str, str]) -> dict[str, Problem]:
    return {r[0]: Problem(code=r[0], severity=r[1], alert=r[2], title=r[3], remedy=r[4]) for r in rows}


C, W, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO

# fmt: off
PROBLEMS: dict[str, Problem] = _rows(
    # The probe: why no certificate was seen (the handshake outcome).
    ("unresponsive", C, "TLSEndpointUnresponsive", "The endpoint does not answer (name, connect or handshake)",
     "Check that the name resolves and the service runs and is reachable from the exporter (firewall, routing)."),
    ("connection_refused", C, "TLSEndpointConnectionRefused", "The connection is refused",
     "Start the service, or fix the port in the target; a firewall may reject the exporter's address."),
    ("not_tls", C, "TLSEndpointNotTLS", "The endpoint does not speak TLS",
     "The port serves plaintext or another protocol: fix the port or the target's protocol."),
    ("starttls_unsupported", C, "TLSEndpointStartTLSUnsupported", "The server does not offer the TLS upgrade",
     "Enable STARTTLS in the server's configuration, or probe its implicit-TLS port."),
    ("handshake_failed", C, "TLSEndpointHandshakeFailed", "The TLS handshake fails",
     "Read the detail: no shared version or cipher, a client certificate required (set client_cert), SNI."),
    ("no_certificate", C, "TLSEndpointNoCertificate", "The server presents no usable certificate",
     "Install a certificate on the server (an anonymous or PSK-only endpoint gives none)."),
    # Files.
    ("file_missing", W, "TLSFileMissing", "The certificate file is missing",
     "Restore the file, or fix the path or glob under files:; the exporter keeps watching the path."),
    ("file_unreadable", W, "TLSFileUnreadable", "The certificate file cannot be read",
     "Give the exporter's user read access to the file (and search access to its directories)."),
    ("file_parse_error", W, "TLSFileParseError", "The file holds no certificate the exporter can read",
     "Store PEM, DER, PKCS#7 or an unencrypted PKCS#12; a damaged file must be replaced."),
    # Validity.
    ("expired", C, "TLSCertificateExpired", "The certificate has expired",
     "Renew the certificate and install it on every node that serves it; reload the service."),
    ("not_yet_valid", C, "TLSCertificateNotYetValid", "The certificate is not valid yet",
     "Install the previous certificate until notBefore, or check the clocks of the issuing CA and the server."),
    ("expiry_critical", C, "TLSCertificateExpiryCritical", "The certificate expires within the critical tier",
     "Renew now, and install the new certificate everywhere it is served."),
    ("expiry_warning", W, "TLSCertificateExpiryWarning", "The certificate expires within the warning tier",
     "Plan the renewal this week; check why automatic renewal has not happened."),
    ("expiry_info", INFO, "TLSCertificateExpiryInfo", "The certificate expires within the info tier",
     "Nothing yet: renewal is due within the info tier."),
    ("validity_too_long", W, "TLSCertificateValidityTooLong", "The certificate is valid longer than max_validity",
     "Reissue with a lifetime within the profile's max_validity (public CAs: 398 days at most)."),
    # Identity.
    ("hostname_mismatch", C, "TLSCertificateHostnameMismatch", "The certificate does not cover the server name",
     "Reissue the certificate with the name in its subjectAltName, or fix the target's server_name."),
    ("expected_mismatch", W, "TLSCertificateExpectedMismatch", "Not the expected certificate",
     "Install the expected certificate, or update expect: after a planned replacement."),
    # Chain and revocation.
    ("chain_invalid", C, "TLSChainInvalid", "The chain does not verify",
     "Serve the leaf with every intermediate, in order, from a CA the clients trust; the text names the cause."),
    ("revoked", C, "TLSCertificateRevoked", "A certificate of the chain is revoked",
     "Replace the revoked certificate now; find out why it was revoked (key compromise?)."),
    # Strength and policy.
    ("weak_key", W, "TLSCertificateWeakKey", "The key is weaker than the profile allows",
     "Reissue with a stronger key (RSA 2048 bits or more, EC P-256 or more)."),
    ("weak_signature", W, "TLSCertificateWeakSignature", "A weak hash signs the certificate or its chain",
     "Reissue with SHA-256 or better, and serve intermediates signed with it."),
    ("legacy_protocol", W, "TLSLegacyProtocolAccepted", "The server accepts protocol versions below the minimum",
     "Disable the listed versions in the server's TLS configuration."),
    # What DNS says about the certificate (profile keys dane and caa).
    ("dane_mismatch", C, "TLSDANEMismatch", "The served chain matches none of the TLSA records (DANE)",
     "Publish a TLSA record of the key now served (or serve the key the records name); in a rollover, "
     "publish the new key's record a few TTLs before the switch and remove the old one after it."),
    ("dane_not_validated", W, "TLSDANENotValidated", "The TLSA records are not DNSSEC-validated",
     "Sign the zone with DNSSEC (a DS record in the parent), or point dns.resolver at a validating "
     "resolver; senders ignore TLSA records that do not validate."),
    ("caa_not_permitted", W, "TLSCAANotPermitted", "The name's CAA records do not authorise the certificate's issuer",
     "Add an issue (issuewild for wildcards) record naming the CA that renews the certificate, or renew "
     "from a CA the CAA set names; a private or unlisted CA: map it in caa_issuer_domains."),
)
# fmt: on
del C, W, INFO

# The handshake or file outcome (its value) -> the finding that says why no certificate was judged.
OUTCOME_CODES: dict[str, str] = {
    "dns_error": "unresponsive",
    "connect_timeout": "unresponsive",
    "handshake_timeout": "unresponsive",
    "network_error": "unresponsive",
    "connection_refused": "connection_refused",
    "not_tls": "not_tls",
    "starttls_unsupported": "starttls_unsupported",
    "handshake_failed": "handshake_failed",
    "no_certificate": "no_certificate",
    "missing": "file_missing",
    "unreadable": "file_unreadable",
    "parse_error": "file_parse_error",
}

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    code: str
    severity: Severity
    text: str
    remedy: str

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity.value, "text": self.text, "remedy": self.remedy}


def finding(code: str, text: str) -> Finding:
    """A finding of the table's ``code`` (KeyError for a code not in the table: a bug)."""
    row = PROBLEMS[code]
    return Finding(code=code, severity=row.severity, text=text, remedy=row.remedy)


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    worst = max((_RANK[f.severity] for f in findings), default=0)
    return (Verdict.OK, Verdict.WARNING, Verdict.CRITICAL)[worst]


def ordered(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Worst first; equal severities keep their order."""
    return tuple(sorted(findings, key=lambda f: -_RANK[f.severity]))


def problems_of(findings: Iterable[Finding]) -> tuple[str, ...]:
    """The texts to act on: warning and critical findings (info ones are for the record)."""
    return tuple(f.text for f in findings if f.severity is not Severity.INFO)


def render_markdown() -> str:
    """docs/problems.md."""
    lines = [
        "# Problems: what the exporter finds, how bad it is, what to do",
        "",
        "Every location (an address of a target, or a certificate file) gets one verdict: `ok`,",
        "`warning` or `critical` (`pending` before its first probe), the worst severity among its",
        "findings; an `info` finding leaves it `ok`. `tls-exporter check` (text and `--json`),",
        "`/probe?debug=true`, `GET /api/v1/inventory`, the `/` page and the reports show the same",
        "verdict and the same findings; each finding is `{code, severity, text, remedy}`, and the",
        "alert of its row fires with the same `severity` label. `check` exits 0, 1 or 2 for `ok`,",
        "`warning` or `critical`, and 3 only when it could not judge.",
        "",
        "This page is generated from the table in `exporter/certs/findings.py` (a test keeps them equal).",
        "",
        "| code | severity | alert | what it means | what to do |",
        "|---|---|---|---|---|",
    ]
    for p in PROBLEMS.values():
        lines.append(f"| `{p.code}` | {p.severity.value} | {p.alert} | {p.title} | {p.remedy} |")
    lines += [
        "",
        "Outcomes and their finding: "
        + "; ".join(f"`{outcome}` → `{code}`" for outcome, code in OUTCOME_CODES.items())
        + ".",
        "",
    ]
    return "\n".join(lines)
