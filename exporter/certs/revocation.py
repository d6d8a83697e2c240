"""Revocation judged from bytes: OCSP requests and responses, CRLs. No I/O here.

An OCSP response counts only when it is successful, names our certificate (serial, issuer name
hash and issuer key hash), is signed by the issuer or by a responder the issuer delegated
(EKU OCSPSigning, issued directly by the issuer), and is current (thisUpdate not in the future
beyond a small skew, nextUpdate not past). Anything else is ``error``. CRLs likewise must come
from the issuer (name and signature) and be current.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class OcspVerdict:
    status: str  # good | revoked | unknown | error
    detail: str = ""
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CrlVerdict:
    status: str  # good | revoked | error
    detail: str = ""
    next_update: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


def crl_urls(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSP request with a SHA-1 CertID (what every responder understands)."""
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return req.public_bytes(serialization.Encoding.DER)


def verify_signature(key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> None:
    """Raise InvalidSignature unless ``key`` signed ``data``."""
    if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
        key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, data)
    elif isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
        key.verify(signature, data, algorithm)
    else:
        raise InvalidSignature("unsupported key type")


def _eku_ocsp(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    name_hash = _hash(algorithm, issuer.subject.public_bytes())
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # the key hash covers the BIT STRING contents of subjectPublicKey, not the whole SPKI
    key_bits = _spki_key_bits(spki)
    return name_hash, _hash(algorithm, key_bits)


def _spki_key_bits(spki: bytes) -> bytes:
    def tlv(data: bytes, pos: int) -> tuple[int, int, int]:  # (tag, start of value, end of value)
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        return tag, pos, pos + length

    _, start, _ = tlv(spki, 0)  # SEQUENCE
    _, _, alg_end = tlv(spki, start)  # AlgorithmIdentifier
    _, bits_start, bits_end = tlv(spki, alg_end)  # BIT STRING
    return spki[bits_start + 1 : bits_end]  # skip the unused-bits byte


def judge_ocsp(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> OcspVerdict:
    """The OCSP answer for ``cert`` in ``data`` (DER), as of ``at`` (tz-aware)."""
    try:
        resp = ocsp.load_der_ocsp_response(data)
    except ValueError as e:
        return OcspVerdict(status="error", detail=f"unparsable OCSP response: {e}")
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return OcspVerdict(status="error", detail=f"responder said {resp.response_status.name.lower()}")
    try:
        single = next(
            (r for r in resp.responses if r.serial_number == cert.serial_number),
            None,
        )
        if single is None:
            return OcspVerdict(status="error", detail="response is not about this certificate (serial)")
        name_hash, key_hash = _issuer_hashes(issuer, single.hash_algorithm)
        if (single.issuer_name_hash, single.issuer_key_hash) != (name_hash, key_hash):
            return OcspVerdict(status="error", detail="response is not about this certificate (issuer)")
        signer = issuer
        for candidate in resp.certificates:
            if _eku_ocsp(candidate) and _issued_by(candidate, issuer):
                signer = candidate
                break
        try:
            verify_signature(
                signer.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm
            )
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            return OcspVerdict(status="error", detail="bad OCSP signature (not the issuer nor a delegated responder)")
        if signer is not issuer and not (signer.not_valid_before_utc <= at <= signer.not_valid_after_utc):
            return OcspVerdict(status="error", detail="OCSP responder certificate not valid now")
        this_update, next_update = single.this_update_utc, single.next_update_utc
        if this_update > at + SKEW:
            return OcspVerdict(status="error", detail="OCSP response from the future (thisUpdate)")
        if next_update is not None and next_update < at:
            stale = "stale OCSP response (nextUpdate passed)"
            return OcspVerdict(status="error", detail=stale, next_update=next_update)
        status = single.certificate_status.name.lower()  # good | revoked | unknown
        return OcspVerdict(
            status=status,
            detail="" if status == "good" else f"responder says {status}",
            this_update=this_update,
            next_update=next_update,
            revoked_at=single.revocation_time_utc if status == "revoked" else None,
        )
    except (ValueError, UnsupportedAlgorithm) as e:
        return OcspVerdict(status="error", detail=f"malformed OCSP response: {e}")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(data) if data[:1] == b"\x30" else x509.load_pem_x509_crl(data)


def judge_crl(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> CrlVerdict:
    """Is ``cert`` on the CRL in ``data`` (DER or PEM), signed by ``issuer`` and current at ``at``?"""
    try:
        crl = load_crl(data)
    except ValueError as e:
        return CrlVerdict(status="error", detail=f"unparsable CRL: {e}")
    return judge_crl_list(crl, cert, issuer, at)


def judge_crl_list(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
) -> CrlVerdict:
    """``judge_crl`` for a CRL already parsed (the fetcher parses each download once)."""
    if crl.issuer != issuer.subject:
        return CrlVerdict(status="error", detail="CRL issued by another name")
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        return CrlVerdict(status="error", detail="bad CRL signature")
    next_update = crl.next_update_utc
    if next_update is not None and next_update < at:
        return CrlVerdict(status="error", detail="stale CRL (nextUpdate passed)", next_update=next_update)
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        return CrlVerdict(
            status="revoked", detail="listed in the CRL", next_update=next_update, revoked_at=entry.revocation_date_utc
        )
    return CrlVerdict(status="good", next_update=next_update)
