"""Hostile servers, certificates and files for the hostile suite, all on loopback.

``HostileServers`` extends the loopback servers with what an attacker (or a broken peer) does:
silence, drip-feeding, garbage, endless lines, resets, huge chains, certificates with 10,000
names or evil subject bytes, and a server that mints a new leaf per connection whose OCSP and
CRL answers are large. ``Recorder`` is an HTTP listener that only records who reached it: an
SSRF test asserts that it saw nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pki import NOW, PKI, Issued
from servers import Listener, LoopbackServers


def leaf(
    pki: PKI,
    *,
    cn: str = "localhost",
    sans: Sequence[str] = ("localhost",),
    ocsp: str | None = None,
    ca_issuers: str | None = None,
    crl: str | None = None,
    issuer: Issued | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf signed by the test intermediate, with the AIA/CRL URLs given (unwritten to disk)."""
    issuer = issuer or pki.intermediate
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for s in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            names.append(x509.DNSName(s))
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    access = []
    if ocsp:
        access.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp)))
    if ca_issuers:
        access.append(
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers))
        )
    if access:
        b = b.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl)], None, None, None)
        b = b.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return b.sign(issuer.key, hashes.SHA256()), key


def context(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, chain: Sequence[x509.Certificate], tmp: Path
) -> ssl.SSLContext:
    """A server context serving ``cert`` and ``chain``."""
    tmp.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = tmp / f"{cert.serial_number:x}.pem", tmp / f"{cert.serial_number:x}.key"
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain))
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def legacy_subject_der(pki: PKI, text: bytes = b"Caf\xe9\x1b[2J") -> bytes:
    """A certificate whose subject CN is a T61String of 8-bit bytes with an ESC in it (8 bytes).

    Built as a UTF8String of the same length, then re-tagged: the signature no longer matches,
    which does not matter to reading it."""
    assert len(text) == 8
    cert, _ = leaf(pki, cn="AAAAAAAA", sans=("legacy.example",))
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    at = der.find(b"\x0c\x08AAAAAAAA")
    assert at > 0
    der[at] = 0x14
    der[at + 2 : at + 10] = text
    return bytes(der)


@dataclass
class Recorder:
    """An HTTP listener that records every connection and answers 404."""

    host: str = "127.0.0.1"
    hits: list[bytes] = field(default_factory=list)
    port: int = 0
    _listener: Listener | None = None

    async def start(self) -> Recorder:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.hits.append(await asyncio.wait_for(reader.read(4096), 5))
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()

        self._listener = await Listener(handle).start(self.host)
        self.port = self._listener.port
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.close()


class HostileServers(LoopbackServers):
    """Loopback servers that misbehave on purpose."""

    def garbage(self, size: int = 1 << 20) -> int:
        """Answers the ClientHello with ``size`` bytes of garbage, then closes."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.wait_for(reader.read(4096), 5)
                writer.write(bytes(range(256)) * (size // 256))
                await writer.drain()
            except (TimeoutError, OSError):
                pass
            finally:
                writer.close()

        return self.start(handler)

    def endless_lines(self) -> int:
        """A greeting that never ends: "220-" continuation lines, forever, as fast as read."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    writer.write(b"220-" + b"x" * 1000 + b"\r\n")
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        return self.start(handler)

    def reset(self) -> int:
        """Accepts and resets the connection at once (RST, SO_LINGER 0)."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()

        return self.start(handler)

    def serving(self, ctx: ssl.SSLContext) -> int:
        """A TLS server serving ``ctx``, closing after the handshake."""
        return self.tls(ctx)


async def settled(exporter: object, locations: int, *, timeout: float = 30.0) -> None:
    """Wait until the exporter's store holds at least ``locations`` results (polls, bounded)."""
    store = exporter.store  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while sum(len(entries) for _, entries in store.snapshot()) < locations:
        if loop.time() > end:
            raise AssertionError(f"fewer than {locations} results after {timeout:g}s: {store.snapshot()!r}")
        await asyncio.sleep(0.05)
