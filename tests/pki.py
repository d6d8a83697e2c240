"""A fixture PKI made with cryptography (and the openssl CLI where cryptography refuses: SHA-1).

``make_pki(dir)`` writes a root, an intermediate and every leaf the tests need, each with its
key, its certificate and the chain a server serves (leaf + intermediate), and returns them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
NOW = dt.datetime.now(dt.UTC)
DEFAULT_SANS = ("localhost", "good.test", "127.0.0.1", "::1")


@dataclass
class Issued:
    name: str
    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path
    chain_path: Path  # what a server serves: the certificate, then its issuers (not the root)
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def serial_hex(self) -> str:
        return format(self.cert.serial_number, "x")

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so RSA-1024 and SHA-1 fixtures can be served
        ctx.load_cert_chain(self.chain_path, self.key_path)
        return ctx


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tls-exporter tests"),
        ]
    )


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for n in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            general.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(general)


class PKI:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.root = self._ca("Test Root CA", None)
        self.intermediate = self._ca("Test Intermediate CA", self.root)
        self.leaves: dict[str, Issued] = {}

    def __getitem__(self, name: str) -> Issued:
        return self.leaves[name]

    # -- building blocks ---------------------------------------------------------------
    def _write(self, name: str, cert: x509.Certificate, key: PrivateKey, chain: list[x509.Certificate]) -> Issued:
        cert_path, key_path, chain_path = (
            self.dir / f"{name}.crt",
            self.dir / f"{name}.key",
            self.dir / f"{name}.chain.pem",
        )
        cert_path.write_bytes(_pem(cert))
        key_path.write_bytes(_pem_key(key))
        chain_path.write_bytes(b"".join(_pem(c) for c in [cert, *chain]))
        return Issued(name, cert, key, cert_path, key_path, chain_path, [cert, *chain])

    def _ca(self, cn: str, parent: Issued | None) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer_name = parent.cert.subject if parent else _name(cn)
        signing_key = parent.key if parent else key
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=365))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if parent:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
            )
        cert = b.sign(signing_key, hashes.SHA256())
        return self._write(cn.lower().replace(" ", "-"), cert, key, [])

    def issue(
        self,
        name: str,
        *,
        sans: tuple[str, ...] = DEFAULT_SANS,
        cn: str | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: PrivateKey | None = None,
        issuer: Issued | None = None,
        self_signed: bool = False,
        extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
    ) -> Issued:
        """Issue a leaf (by the intermediate unless told otherwise) and write its files."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        issuer = None if self_signed else (issuer or self.intermediate)
        subject = _name(cn or (sans[0] if sans else name))
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if issuer is None else issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - dt.timedelta(days=30))
            .not_valid_after(not_after or NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if sans:
            b = b.add_extension(_san(sans), critical=False)
        if issuer is not None:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
            )
        for ext, critical in extensions or []:
            b = b.add_extension(ext, critical=critical)
        cert = b.sign(key if issuer is None else issuer.key, hashes.SHA256())
        chain = [] if issuer is None else [c for c in issuer.chain if c != self.root.cert]
        issued = self._write(name, cert, key, chain)
        self.leaves[name] = issued
        return issued

    def issue_sha1(self, name: str, *, sans: tuple[str, ...] = DEFAULT_SANS) -> Issued:
        """A SHA-1 signed leaf: cryptography refuses to sign with SHA-1, so the openssl CLI signs it."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_path = self.dir / f"{name}.key"
        key_path.write_bytes(_pem_key(key))
        csr = x509.CertificateSigningRequestBuilder().subject_name(_name(sans[0])).sign(key, hashes.SHA256())
        csr_path, ext_path, cert_path = self.dir / f"{name}.csr", self.dir / f"{name}.ext", self.dir / f"{name}.crt"
        csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        alt = ",".join(("IP:" if _is_ip(n) else "DNS:") + n for n in sans)
        ext_path.write_text(f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName={alt}\n")
        subprocess.run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr_path),
                "-CA",
                str(self.intermediate.cert_path),
                "-CAkey",
                str(self.intermediate.key_path),
                "-CAcreateserial",
                "-sha1",
                "-days",
                "200",
                "-extfile",
                str(ext_path),
                "-out",
                str(cert_path),
            ],
            check=True,
            capture_output=True,
        )
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        issued = self._write(name, cert, key, [self.intermediate.cert])
        self.leaves[name] = issued
        return issued


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def make_pki(directory: Path) -> PKI:
    """The standard fixture set every test suite uses."""
    pki = PKI(directory)
    days = dt.timedelta(days=1)
    pki.issue("good")
    pki.issue("good-rsa", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    pki.issue("expired", not_before=NOW - 400 * days, not_after=NOW - 10 * days)
    pki.issue("not-yet-valid", not_before=NOW + 10 * days, not_after=NOW + 400 * days)
    pki.issue("expiring-5d", not_before=NOW - 85 * days, not_after=NOW + 5 * days)
    pki.issue("expiring-20d", not_before=NOW - 70 * days, not_after=NOW + 20 * days)
    pki.issue("expiring-60d", not_before=NOW - 30 * days, not_after=NOW + 60 * days)
    pki.issue("wrong-host", sans=("wrong.example.test",))
    pki.issue("self-signed", self_signed=True)
    pki.issue("rsa-1024", key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    pki.issue_sha1("sha1")
    pki.issue("ec-p256")
    return pki
