"""Write certificates from the fixture PKI in every file format the file reader accepts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from pki import PrivateKey

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(DER)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def p7(certs: Sequence[x509.Certificate], encoding: serialization.Encoding) -> bytes:
    return pkcs7.serialize_certificates(list(certs), encoding)


def p12(
    key: PrivateKey | None,
    cert: x509.Certificate | None,
    extra: Sequence[x509.Certificate] = (),
    password: bytes | None = None,
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption() if password is None else serialization.BestAvailableEncryption(password)
    )
    return pkcs12.serialize_key_and_certificates(b"test", key, cert, list(extra) or None, encryption)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
