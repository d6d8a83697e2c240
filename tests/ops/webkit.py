"""Certificates and clients for the web-config tests: a server certificate from the fixture PKI,
a separate client CA with a client certificate (clientAuth), and an HTTPS client on http.client
that reports status, headers and body, whatever the status."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pki import PKI

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class WebPKI:
    dir: Path
    root: Path  # what a client trusts to verify the server
    server_cert: Path  # leaf + intermediate
    server_key: Path
    other_key: Path  # a key that belongs to no certificate here
    client_ca: Path
    client_cert: Path
    client_key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    encoding, fmt = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, fmt, serialization.NoEncryption())


def _cert(
    cn: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(signer, hashes.SHA256())


def make_web_pki(pki: PKI, directory: Path) -> WebPKI:
    directory.mkdir(parents=True, exist_ok=True)
    server = pki.leaves.get("web-server") or pki.issue("web-server")
    shutil.copy(server.chain_path, directory / "server.crt")
    shutil.copy(server.key_path, directory / "server.key")
    (directory / "other.key").write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("tls-exporter test client CA", ca_key, None, ca_key)
    client = _cert("scraper", client_key, ca, ca_key)
    (directory / "client-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "client.crt").write_bytes(client.public_bytes(serialization.Encoding.PEM))
    (directory / "client.key").write_bytes(_pem_key(client_key))
    return WebPKI(
        dir=directory,
        root=pki.root.cert_path,
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        other_key=directory / "other.key",
        client_ca=directory / "client-ca.crt",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def client_context(web: WebPKI, *, with_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(web.root))
    if with_client_cert:
        ctx.load_cert_chain(web.client_cert, web.client_key)
    return ctx


def request(
    port: int,
    path: str,
    *,
    ctx: ssl.SSLContext | None,
    auth: tuple[str, str] | None = None,
    method: str = "GET",
    host: str = "127.0.0.1",
) -> Reply:
    """One request over HTTPS (``ctx``) or plain HTTP (``ctx=None``); any status is returned."""
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
        if ctx is not None
        else http.client.HTTPConnection(host, port, timeout=10)
    )
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode())
    finally:
        conn.close()
