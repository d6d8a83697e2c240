"""Turn an X.509 certificate into the plain facts metrics and rules need (``CertFacts``)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from exporter.certs.names import _names_der, name_texts
from exporter.results import CertFacts

# OpenSSL-style names for the common signature algorithm OIDs (the `algorithm` label).
_SIG_NAMES = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
    "1.2.840.10040.4.3": "dsa-with-SHA1",
    "2.16.840.1.101.3.4.3.2": "dsa-with-SHA256",
}


def sans_of(cert: x509.Certificate) -> tuple[str, ...]:
    """DNS names, then IP addresses, in the order the certificate lists them."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    except ValueError:  # a malformed extension must not cost the whole probe
        return ()
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return (*dns, *ips)


def key_of(cert: x509.Certificate) -> tuple[str, int]:
    """Key type (rsa, ec, dsa, ed25519, ed448) and size in bits."""
    try:
        key = cert.public_key()
    except (ValueError, TypeError):
        return "unknown", 0
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456
    return "unknown", 0


def signature_of(cert: x509.Certificate) -> tuple[str, str]:
    """Signature algorithm name and its hash ("" for algorithms without a separate hash)."""
    oid = cert.signature_algorithm_oid.dotted_string
    name = _SIG_NAMES.get(oid) or str(getattr(cert.signature_algorithm_oid, "_name", oid))
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # unsupported hash: name it from the OID
        algorithm = None
    if isinstance(algorithm, hashes.HashAlgorithm):
        return name, algorithm.name
    lowered = name.lower()
    for candidate in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
        if candidate in lowered:
            return name, candidate
    return name, ""


def is_self_signed(cert: x509.Certificate) -> bool:
    try:
        if cert.issuer != cert.subject:
            return False
    except ValueError:  # a name cryptography cannot decode: compare the encoded names
        issuer, subject = _names_der(cert)
        if issuer != subject:
            return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    except Exception:  # unsupported key types: judge by name only
        return True
    return True


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


_KEY_USAGES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "2.5.29.37.0": "anyExtendedKeyUsage",
}


def key_usage_of(cert: x509.Certificate) -> str:
    """keyUsage as comma-separated RFC 5280 names ("" when absent)."""
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return ""
    names = [name for attr, name in _KEY_USAGES if getattr(ku, attr)]
    if ku.key_agreement:
        names += [n for flag, n in ((ku.encipher_only, "encipherOnly"), (ku.decipher_only, "decipherOnly")) if flag]
    return ",".join(names)


def extended_key_usage_of(cert: x509.Certificate) -> str:
    """extendedKeyUsage as comma-separated RFC 5280 names (dotted OIDs for others; "" when absent)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return ""
    return ",".join(_EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in eku)


def cert_facts(cert: x509.Certificate) -> CertFacts:
    key_type, key_bits = key_of(cert)
    sig_name, sig_hash = signature_of(cert)
    subject, issuer, subject_cn, issuer_cn = name_texts(cert)  # legacy string types read too
    return CertFacts(
        subject=subject,
        issuer=issuer,
        subject_cn=subject_cn,
        issuer_cn=issuer_cn,
        serial=format(cert.serial_number, "x") if cert.serial_number >= 0 else "-" + format(-cert.serial_number, "x"),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        sans=sans_of(cert),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        key_type=key_type,
        key_bits=key_bits,
        signature_algorithm=sig_name,
        signature_hash=sig_hash,
        self_signed=is_self_signed(cert),
        is_ca=is_ca(cert),
        key_usage=key_usage_of(cert),
        extended_key_usage=extended_key_usage_of(cert),
    )
