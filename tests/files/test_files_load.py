"""load_certificates: every accepted format, and the reason given for what is refused."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from certfiles import DER, PEM, der, key_pem, p7, p12, pem
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pki import PKI

from exporter.certs.load import CertificateParseError, load_certificates


def _reason(data: bytes, password: bytes | None = None) -> str:
    with pytest.raises(CertificateParseError) as info:
        load_certificates(data, password=password)
    assert str(info.value) == info.value.reason
    return info.value.reason


def test_pem_single(pki: PKI) -> None:
    assert load_certificates(pem(pki["good"].cert)) == [pki["good"].cert]


def test_pem_bundle_keeps_file_order(pki: PKI) -> None:
    certs = [pki["good"].cert, pki.intermediate.cert, pki.root.cert]
    assert load_certificates(pem(*certs)) == certs
    assert load_certificates(pem(*reversed(certs))) == certs[::-1]


def test_pem_with_key_block_before_the_certificate(pki: PKI) -> None:
    data = key_pem(pki["good"].key) + b"\n# comment between blocks\n" + pem(pki["good"].cert)
    assert load_certificates(data) == [pki["good"].cert]


def test_pem_with_crlf_line_ends_and_leading_text(pki: PKI) -> None:
    data = b"subject=CN = good.test\r\n" + pem(pki["good"].cert).replace(b"\n", b"\r\n")
    assert load_certificates(data) == [pki["good"].cert]


def test_key_only_pem_names_what_the_file_holds(pki: PKI) -> None:
    assert _reason(key_pem(pki["good"].key)) == "no certificate found (PEM file holds: PRIVATE KEY)"


def test_pem_with_two_kinds_of_non_certificate_blocks(pki: PKI) -> None:
    public = pki["good"].key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    reason = _reason(key_pem(pki["good"].key) + public + key_pem(pki["good-rsa"].key))
    assert reason == "no certificate found (PEM file holds: PRIVATE KEY, PUBLIC KEY)"


def test_truncated_pem_block(pki: PKI) -> None:
    data = pem(pki["good"].cert)
    assert _reason(data[: len(data) // 2]) == "truncated PEM: BEGIN CERTIFICATE without END"


def test_pem_certificate_block_with_bad_base64(pki: PKI) -> None:
    data = b"-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n"
    assert _reason(data) == "PEM block 0 (CERTIFICATE): invalid base64"


def test_pem_certificate_block_that_is_not_a_certificate(pki: PKI) -> None:
    body = base64.encodebytes(b"\x30\x03\x02\x01\x05")
    data = pem(pki["good"].cert) + b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"
    assert _reason(data).startswith("PEM block 1 (CERTIFICATE): invalid certificate: ")


def test_openssl_trusted_certificate_block(pki: PKI, tmp_path: Path) -> None:
    out = subprocess.run(
        ["openssl", "x509", "-in", str(pki["good"].cert_path), "-trustout", "-addtrust", "serverAuth"],
        check=True,
        capture_output=True,
    ).stdout
    assert b"BEGIN TRUSTED CERTIFICATE" in out
    assert load_certificates(out) == [pki["good"].cert]


def test_der(pki: PKI) -> None:
    assert load_certificates(der(pki["good"].cert)) == [pki["good"].cert]


def test_der_with_a_trailing_newline(pki: PKI) -> None:
    assert load_certificates(der(pki["good"].cert) + b"\n") == [pki["good"].cert]


def test_truncated_der(pki: PKI) -> None:
    data = der(pki["good"].cert)
    assert _reason(data[:-20]) == "truncated or invalid DER"
    assert _reason(data[:1]) == "truncated or invalid DER"


def test_der_with_garbage_after_it(pki: PKI) -> None:
    assert _reason(der(pki["good"].cert) + b"junk") == "invalid DER: data after the end of the structure"


def test_empty_and_unrecognised_files() -> None:
    assert _reason(b"") == "empty file"
    assert _reason(b"  \n") == "empty file"
    assert _reason(b"hello, I am not a certificate\n") == "not a certificate file (neither PEM nor DER)"


@pytest.mark.parametrize("encoding", [PEM, DER], ids=["pem", "der"])
def test_pkcs7_bundle_comes_back_leaf_first(pki: PKI, encoding: serialization.Encoding) -> None:
    chain = [pki["good"].cert, pki.intermediate.cert, pki.root.cert]
    for stored in (chain, chain[::-1], [chain[1], chain[2], chain[0]]):
        assert load_certificates(p7(stored, encoding)) == chain


def test_pkcs7_of_unrelated_certificates_keeps_them_all(pki: PKI) -> None:
    certs = [pki["good"].cert, pki["self-signed"].cert, pki["expired"].cert]
    loaded = load_certificates(p7(certs, DER))
    assert sorted(c.serial_number for c in loaded) == sorted(c.serial_number for c in certs)


def test_pkcs7_pem_block_beside_a_certificate_block(pki: PKI) -> None:
    data = pem(pki["expired"].cert) + p7([pki["good"].cert], PEM)
    assert load_certificates(data) == [pki["expired"].cert, pki["good"].cert]


def test_pkcs12_without_password_key_certificate_first(pki: PKI) -> None:
    good = pki["good"]
    data = p12(good.key, good.cert, [pki.intermediate.cert, pki.root.cert])
    assert load_certificates(data) == [good.cert, pki.intermediate.cert, pki.root.cert]


def test_pkcs12_with_password(pki: PKI) -> None:
    good = pki["good"]
    data = p12(good.key, good.cert, [pki.intermediate.cert], password=b"s3cret")
    assert load_certificates(data, password=b"s3cret") == [good.cert, pki.intermediate.cert]
    assert _reason(data) == "PKCS#12 needs a password (or is not valid PKCS#12)"
    assert _reason(data, password=b"wrong") == "PKCS#12: wrong password (or not valid PKCS#12)"


def test_pkcs12_of_certificates_only(pki: PKI) -> None:
    assert load_certificates(p12(None, None, [pki["good"].cert])) == [pki["good"].cert]


def test_pkcs12_holding_only_a_key() -> None:
    data = p12(ec.generate_private_key(ec.SECP256R1()), None)
    assert _reason(data) == "no certificate found (PKCS#12 holds a private key only)"


def test_truncated_pkcs12(pki: PKI) -> None:
    data = p12(pki["good"].key, pki["good"].cert)
    assert _reason(data[:-30]) == "truncated or invalid DER"
