"""Test helpers for chains, revocation and posture: extra CAs, AIA/OCSP/CRL extensions, and a
loopback HTTP server (aiohttp) that serves CA certificates, CRLs and OCSP answers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pki import NOW, PKI, Issued

from exporter.results import Session


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """What a plain handshake with a test server showed: the served chain and the session."""

    address: str
    version: str
    cipher: str
    cipher_bits: int
    chain_der: tuple[bytes, ...]
    ocsp_staple: bytes | None = None
    hsts: str | None = None

    @property
    def session(self) -> Session:
        return Session(
            version=self.version,
            cipher=self.cipher,
            cipher_bits=self.cipher_bits,
            ocsp_staple=self.ocsp_staple,
            hsts=self.hsts,
        )


DAY = dt.timedelta(days=1)


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def sub_ca(
    pki: PKI,
    label: str,
    *,
    parent: Issued | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> Issued:
    """An intermediate CA under ``parent`` (default: the PKI's root), e.g. an expired one."""
    parent = parent or pki.root
    key = ec.generate_private_key(ec.SECP256R1())
    b = (
        x509.CertificateBuilder()
        .subject_name(name(label))
        .issuer_name(parent.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - 300 * DAY)
        .not_valid_after(not_after or NOW + 900 * DAY)
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
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False)
    )
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    cert = b.sign(parent.key, hashes.SHA256())
    chain = [c for c in parent.chain if c != pki.root.cert]
    return pki._write(label.lower().replace(" ", "-"), cert, key, chain)


def ocsp_signer(pki: PKI, issuer: Issued, label: str = "OCSP Responder") -> Issued:
    """A delegated OCSP responder certificate (EKU OCSPSigning) issued by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(label))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return pki._write(label.lower().replace(" ", "-"), cert, key, [])


def aia(*, ca_issuers: str | None = None, ocsp_url: str | None = None) -> tuple[x509.ExtensionType, bool]:
    descriptions = []
    if ocsp_url:
        descriptions.append(
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        )
    if ca_issuers:
        descriptions.append(
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers))
        )
    return x509.AuthorityInformationAccess(descriptions), False


def crl_dp(url: str) -> tuple[x509.ExtensionType, bool]:
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None, crl_issuer=None
    )
    return x509.CRLDistributionPoints([point]), False


def make_crl(issuer: Issued, revoked: Iterable[int] = (), *, next_update: dt.datetime | None = None) -> bytes:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(NOW - DAY)
        .next_update(next_update or NOW + 7 * DAY)
    )
    for serial in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - DAY).build()
        )
    return b.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def ocsp_response(
    cert: x509.Certificate,
    issuer: Issued,
    status: str,
    *,
    signer: Issued | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
) -> bytes:
    """A signed OCSP response for ``cert``: status good | revoked | unknown."""
    cert_status = {
        "good": ocsp.OCSPCertStatus.GOOD,
        "revoked": ocsp.OCSPCertStatus.REVOKED,
        "unknown": ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    by = signer or issuer
    b = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA1(),
            cert_status=cert_status,
            this_update=this_update or NOW - dt.timedelta(hours=1),
            next_update=next_update or NOW + DAY,
            revocation_time=NOW - DAY if status == "revoked" else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == "revoked" else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, by.cert)
    )
    if signer is not None:
        b = b.certificates([signer.cert])
    return b.sign(by.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class RevocationServer:
    """aiohttp on 127.0.0.1: ``/ca/<name>`` (DER, or PKCS#7 with ``.p7c``), ``/crl/<name>``,
    ``/ocsp`` (POST and GET). OCSP answers come from ``ocsp_status`` (serial -> status) for
    certificates registered with ``register``; ``down`` makes every request a 503."""

    ca: dict[str, bytes] = field(default_factory=dict)
    crls: dict[str, bytes] = field(default_factory=dict)
    ocsp_status: dict[int, str] = field(default_factory=dict)
    certs: dict[int, tuple[x509.Certificate, Issued]] = field(default_factory=dict)
    signer: Issued | None = None
    down: bool = False
    hits: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register(self, cert: x509.Certificate, issuer: Issued, status: str) -> None:
        self.certs[cert.serial_number] = (cert, issuer)
        self.ocsp_status[cert.serial_number] = status

    def serve_ca(self, label: str, cert: x509.Certificate) -> str:
        self.ca[label] = cert.public_bytes(serialization.Encoding.DER)
        return f"{self.base}/ca/{label}"

    def serve_p7c(self, label: str, certs: list[x509.Certificate]) -> str:
        self.ca[label + ".p7c"] = pkcs7.serialize_certificates(certs, serialization.Encoding.DER)
        return f"{self.base}/ca/{label}.p7c"

    async def start(self) -> RevocationServer:
        app = web.Application()
        app.router.add_get("/ca/{name}", self._ca)
        app.router.add_get("/crl/{name}", self._crl)
        app.router.add_post("/ocsp", self._ocsp_post)
        app.router.add_get("/ocsp/{req:.*}", self._ocsp_get)
        app.router.add_get("/big", self._big)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ca(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if self.down:
            return web.Response(status=503)
        data = self.ca.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _crl(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if self.down:
            return web.Response(status=503)
        data = self.crls.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x30" * (2 * 1024 * 1024))

    async def _ocsp_post(self, request: web.Request) -> web.Response:
        self.hits.append("POST /ocsp")
        return self._answer(await request.read())

    async def _ocsp_get(self, request: web.Request) -> web.Response:
        self.hits.append("GET /ocsp")
        raw = urllib.parse.unquote(request.match_info["req"])
        return self._answer(base64.b64decode(raw))

    def _answer(self, der: bytes) -> web.Response:
        if self.down:
            return web.Response(status=503)
        req = ocsp.load_der_ocsp_request(der)
        known = self.certs.get(req.serial_number)
        if known is None:
            body = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
            der = body.public_bytes(serialization.Encoding.DER)
            return web.Response(body=der, content_type="application/ocsp-response")
        cert, issuer = known
        body_der = ocsp_response(cert, issuer, self.ocsp_status[req.serial_number], signer=self.signer)
        return web.Response(body=body_der, content_type="application/ocsp-response")


class OpenSSLServer:
    """``openssl s_server`` on 127.0.0.1 as a subprocess (serves one connection at a time)."""

    def __init__(self, issued: Issued, *args: str, workdir: Path) -> None:
        self.port = _free_port()
        self.log = workdir / f"s_server-{self.port}.log"
        cmd = [
            "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{self.port}",
            "-cert",
            str(issued.cert_path),
            "-key",
            str(issued.key_path),
            *args,
        ]
        chain = [c for c in issued.chain[1:]]
        if chain:
            inter = workdir / f"s_server-{self.port}-chain.pem"
            inter.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
            cmd += ["-cert_chain", str(inter)]
        self._out = self.log.open("wb")
        # stdin stays open: s_server quits when it reads end-of-file there.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self._out, stderr=subprocess.STDOUT)
        for _ in range(200):
            if b"ACCEPT" in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"s_server did not start: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()

    def __enter__(self) -> OpenSSLServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def opener(port: int) -> Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    async def _open() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    return _open


async def observe(port: int, server_name: str = "localhost", *, http: bool = False) -> Seen:
    """A minimal stand-in for the TLS prober: handshake without verification, the served chain,
    and (``http``) the Strict-Transport-Security header of ``GET /``."""
    import _ssl
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_name)
    try:
        so = writer.get_extra_info("ssl_object")
        chain = tuple(c.public_bytes(_ssl.ENCODING_DER) for c in so._sslobj.get_unverified_chain() or [])
        name, _, bits = so.cipher()
        hsts = None
        if http:
            writer.write(b"GET / HTTP/1.1\r\nHost: " + server_name.encode() + b"\r\nConnection: close\r\n\r\n")
            head = (await asyncio.wait_for(reader.read(65536), 5)).split(b"\r\n\r\n")[0].decode("latin-1")
            for line in head.split("\r\n")[1:]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "strict-transport-security":
                    hsts = value.strip()
                    break
        return Seen(
            address=f"127.0.0.1:{port}", version=so.version(), cipher=name, cipher_bits=bits, chain_der=chain, hsts=hsts
        )
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
