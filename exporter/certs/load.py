"""Read the certificates out of the bytes of a certificate file (pure: no I/O).

Accepted: PEM with one or many ``CERTIFICATE`` blocks (other blocks, such as keys, are
skipped), PEM ``PKCS7`` bundles, DER certificates, DER PKCS#7 bundles, and PKCS#12 (without a
password, or with the one given). Certificates come back in file order, except where the
format has none: PKCS#7 holds a SET (DER sorts it), so its certificates are put in chain order,
leaf first; for PKCS#12 the certificate that goes with the key comes first, then the others.

Anything else raises ``CertificateParseError`` whose ``reason`` says what was wrong, in words a
person can act on ("no certificate found (PEM file holds: PRIVATE KEY)").
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

__all__ = ["CertificateParseError", "load_certificates"]


class CertificateParseError(ValueError):
    """The bytes hold no certificate we can read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 #]+)-----\r?\n?(.*?)-----END ([A-Z0-9 #]+)-----",
    re.DOTALL,
)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----")
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_PKCS7_LABELS = frozenset({b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"})

# DER tags of the first element inside the outer SEQUENCE, which tell the formats apart.
_TAG_SEQUENCE = 0x30  # Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, ... }
_TAG_OID = 0x06  # ContentInfo ::= SEQUENCE { contentType OID, ... }      (PKCS#7)
_TAG_INTEGER = 0x02  # PFX ::= SEQUENCE { version INTEGER (3), ... }      (PKCS#12)


def load_certificates(data: bytes, *, password: bytes | None = None) -> list[x509.Certificate]:
    """Every certificate in ``data``, in order; raises ``CertificateParseError``."""
    if not data.strip():
        raise CertificateParseError("empty file")
    if b"-----BEGIN " in data:
        return _load_pem(data)
    return _load_der(data, password)


# -- PEM ----------------------------------------------------------------------------------


def _load_pem(data: bytes) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    others: list[str] = []
    end = 0
    for index, match in enumerate(_PEM_BLOCK.finditer(data)):
        begin, body, end_label = match.group(1), match.group(2), match.group(3)
        label = begin.decode("ascii")
        if begin != end_label:
            raise CertificateParseError(f"PEM block {index}: BEGIN {label} ends with END {end_label.decode('ascii')}")
        end = match.end()
        if begin in _CERT_LABELS:
            der = _pem_body(body, index, label)
            if begin == b"TRUSTED CERTIFICATE":  # OpenSSL's: the certificate, then trust settings
                der = der[: _der_element_length(der) or len(der)]
            try:
                certs.append(x509.load_der_x509_certificate(der))
            except ValueError as exc:
                reason = f"PEM block {index} ({label}): invalid certificate: {_short(exc)}"
                raise CertificateParseError(reason) from None
        elif begin in _PKCS7_LABELS:
            der = _pem_body(body, index, label)
            try:
                certs.extend(_chain_order(pkcs7.load_der_pkcs7_certificates(der)))
            except ValueError as exc:
                raise CertificateParseError(f"PEM block {index} ({label}): invalid PKCS#7: {_short(exc)}") from None
        elif label not in others:
            others.append(label)
    dangling = _PEM_BEGIN.search(data, end)
    if dangling is not None:
        raise CertificateParseError(f"truncated PEM: BEGIN {dangling.group(1).decode('ascii')} without END")
    if not certs:
        holds = ", ".join(others) if others else "no complete PEM block"
        raise CertificateParseError(f"no certificate found (PEM file holds: {holds})")
    return certs


def _pem_body(body: bytes, index: int, label: str) -> bytes:
    # RFC 7468 allows explanatory header lines ("Key: value") before the base64 text.
    lines = [line.strip() for line in body.splitlines()]
    text = b"".join(line for line in lines if line and b":" not in line)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateParseError(f"PEM block {index} ({label}): invalid base64") from None
    if not der:
        raise CertificateParseError(f"PEM block {index} ({label}): empty")
    return der


# -- DER, PKCS#7, PKCS#12 -----------------------------------------------------------------


def _load_der(data: bytes, password: bytes | None) -> list[x509.Certificate]:
    if data[0] != _TAG_SEQUENCE:
        raise CertificateParseError("not a certificate file (neither PEM nor DER)")
    length = _der_element_length(data)
    if length is None or length > len(data):
        raise CertificateParseError("truncated or invalid DER")
    if data[length:].strip(b"\r\n\t \x00"):
        raise CertificateParseError("invalid DER: data after the end of the structure")
    data = data[:length]
    inner = _first_inner_tag(data)
    if inner == _TAG_INTEGER:
        return _load_pkcs12(data, password)
    if inner == _TAG_OID:
        try:
            return _chain_order(pkcs7.load_der_pkcs7_certificates(data))
        except ValueError as exc:
            raise CertificateParseError(f"invalid PKCS#7 (DER): {_short(exc)}") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertificateParseError(f"truncated or invalid DER certificate: {_short(exc)}") from None


def _load_pkcs12(data: bytes, password: bytes | None) -> list[x509.Certificate]:
    try:
        bundle = pkcs12.load_pkcs12(data, password)
    except ValueError:
        if password is None:
            raise CertificateParseError("PKCS#12 needs a password (or is not valid PKCS#12)") from None
        raise CertificateParseError("PKCS#12: wrong password (or not valid PKCS#12)") from None
    certs = [bundle.cert.certificate] if bundle.cert is not None else []
    certs.extend(c.certificate for c in bundle.additional_certs)
    if not certs:
        held = "a private key only" if bundle.key is not None else "nothing"
        raise CertificateParseError(f"no certificate found (PKCS#12 holds {held})")
    return certs


def _chain_order(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf first, then its issuer, and so on (by name); certificates left over keep their order."""
    pending = list(certs)
    ordered: list[x509.Certificate] = []
    while pending:
        issuers = {c.issuer for c in pending if c.issuer != c.subject}
        start = next((c for c in pending if c.subject not in issuers), pending[0])
        current: x509.Certificate | None = start
        while current is not None and current in pending:
            pending.remove(current)
            ordered.append(current)
            if current.issuer == current.subject:
                break
            current = next((c for c in pending if c.subject == current.issuer), None)
    return ordered


def _der_element_length(data: bytes) -> int | None:
    """Total length (header + content) of the DER SEQUENCE at the start, None if malformed."""
    if len(data) < 2 or data[0] != _TAG_SEQUENCE:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:  # indefinite length or absurd size
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _first_inner_tag(data: bytes) -> int | None:
    first = data[1]
    offset = 2 if first < 0x80 else 2 + (first & 0x7F)
    return data[offset] if offset < len(data) else None


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
