"""The closed set of probe outcomes and the one failure path that carries them.

Probers raise ``ProbeError`` (or a subclass) with the outcome that explains the failure;
the runner maps it onto the result, and the metrics render it. Nothing else decides outcomes.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """Why a network probe ended the way it did (``tls_handshake_outcome``)."""

    CERTIFICATE_FOUND = "certificate_found"
    DNS_ERROR = "dns_error"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECTION_REFUSED = "connection_refused"
    NETWORK_ERROR = "network_error"
    STARTTLS_UNSUPPORTED = "starttls_unsupported"
    NOT_TLS = "not_tls"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HANDSHAKE_FAILED = "handshake_failed"
    NO_CERTIFICATE = "no_certificate"


class FileOutcome(StrEnum):
    """What reading a certificate file gave (``tls_file_outcome``)."""

    CERTIFICATE_FOUND = "certificate_found"
    MISSING = "missing"
    UNREADABLE = "unreadable"
    PARSE_ERROR = "parse_error"


class ProbeError(Exception):
    """A probe failed for a reason the outcome names; ``detail`` says what was seen."""

    outcome: Outcome = Outcome.NETWORK_ERROR

    def __init__(self, detail: str, outcome: Outcome | None = None, *, certificates: tuple[bytes, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        # What the server sent before the failure (a TLS 1.2 server that wants a client certificate
        # sends its own first): judged and shown even though the handshake failed.
        self.certificates = certificates
        if outcome is not None:
            self.outcome = outcome


class StartTLSUnsupported(ProbeError):
    """The server speaks the protocol but does not offer (or refuses) the TLS upgrade."""

    outcome = Outcome.STARTTLS_UNSUPPORTED


class NotTLS(ProbeError):
    """The server answered with something that is not the expected protocol or not TLS."""

    outcome = Outcome.NOT_TLS


class ConfigError(Exception):
    """A configuration was rejected; ``errors`` holds every problem found, one per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
