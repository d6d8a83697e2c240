"""Certificates with one defect each, for the chain-cause tests: built with cryptography's builder
(the fixture PKI's ``issue`` always adds a sane basicConstraints and EKU)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pki import NOW, PKI, Issued

DAY = dt.timedelta(days=1)
Ext = tuple[x509.ExtensionType, bool]


def key_usage(*, digital_signature: bool = True, key_cert_sign: bool = False, crl_sign: bool = False) -> Ext:
    return (
        x509.KeyUsage(
            digital_signature=digital_signature,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=key_cert_sign,
            crl_sign=crl_sign,
            encipher_only=False,
            decipher_only=False,
        ),
        True,
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tls-exporter tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def build(
    pki: PKI,
    label: str,
    *,
    issuer: Issued,
    extensions: Iterable[Ext],
    sans: tuple[str, ...] | None = ("localhost",),
    sign_with: ec.EllipticCurvePrivateKey | None = None,
) -> Issued:
    """A certificate with exactly ``extensions`` (plus SANs and the AKI), issued by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(label))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 30 * DAY)
        .not_valid_after(NOW + 300 * DAY)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    cert = b.sign(sign_with or issuer.key, hashes.SHA256())  # type: ignore[arg-type]
    chain = [c for c in issuer.chain if c != pki.root.cert]
    return pki._write(label.lower().replace(" ", "-"), cert, key, chain)


def server_leaf(
    pki: PKI, label: str, *, issuer: Issued | None = None, extensions: Iterable[Ext] | None = None
) -> Issued:
    """A well-formed TLS server leaf unless ``extensions`` says otherwise."""
    default = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
    ]
    return build(
        pki, label, issuer=issuer or pki.intermediate, extensions=default if extensions is None else extensions
    )


def intermediate(pki: PKI, label: str, extensions: Iterable[Ext]) -> Issued:
    return build(pki, label, issuer=pki.root, extensions=extensions, sans=None)


def with_bad_signature(pki: PKI, leaf: Issued) -> Issued:
    """The same leaf with its signature bytes damaged (the last byte of the DER flipped)."""
    der = bytearray(leaf.cert.public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    cert = x509.load_der_x509_certificate(bytes(der))
    return pki._write(leaf.name + "-tampered", cert, leaf.key, leaf.chain[1:])


def ca_under_root(
    pki: PKI, label: str, *, not_after: dt.datetime, extensions: Iterable[x509.ExtensionType] = ()
) -> Issued:
    """An intermediate CA issued by the test root, valid until ``not_after`` (in the past: expired),
    with ``extensions`` added as critical."""
    key = ec.generate_private_key(ec.SECP256R1())
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, label)]))
        .issuer_name(pki.root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 400 * DAY)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root.key.public_key()), critical=False)  # type: ignore[arg-type]
    )
    for ext in extensions:
        b = b.add_extension(ext, critical=True)
    return pki._write(label, b.sign(pki.root.key, hashes.SHA256()), key, [])  # type: ignore[arg-type]


def malformed_name_constraints_ca(pki: PKI, label: str) -> Issued:
    """A CA whose IP name constraint has a mask that is not a prefix (255.0.255.0): its extensions
    cannot be parsed. Its signature no longer verifies either (the DER was edited after signing)."""
    nc = x509.NameConstraints(
        permitted_subtrees=[x509.IPAddress(ipaddress.ip_network("127.0.0.0/24"))], excluded_subtrees=None
    )
    ca = ca_under_root(pki, label, not_after=NOW + 900 * DAY, extensions=(nc,))
    der = ca.cert.public_bytes(Encoding.DER)
    mask = bytes([0x87, 8, 127, 0, 0, 0, 255, 255, 255, 0])
    assert der.count(mask) == 1
    broken = der.replace(mask, bytes([0x87, 8, 127, 0, 0, 0, 255, 0, 255, 0]))
    return pki._write(label, x509.load_der_x509_certificate(broken), ca.key, [])
