"""`tls-exporter demo`: a throw-away CA, loopback TLS endpoints that each show a finding, and the
exporter watching them, so that the quick start works with no network.

Keys, certificates and the configuration live in a temporary directory that goes when the demo
stops. The endpoints and a small OCSP responder listen on 127.0.0.1, on ports the OS picks, served
by an event loop of their own in a daemon thread: independent of the exporter's loop (which may
be uvloop), and never able to block its exit. The exporter itself runs exactly as
``tls-exporter --config.file=<the demo's config> --web.listen-address=...`` would run it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
import urllib.parse
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from exporter.app import Exporter, parse_listen
from exporter.support import eventloop, logs
from exporter.support.errors import ConfigError

log = logging.getLogger("exporter.demo")
T = TypeVar("T")

DEFAULT_LISTEN = ":9632"  # the serve command's default (exporter/cli.py, _serve_parser)
INTERVAL = "5s"  # the first probe of every endpoint falls within one interval of the start
TIMEOUT = "4s"  # must not exceed the interval
SERVER_NAME = "localhost"  # what every target verifies; the leaves cover it (but wrong-host's)
HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take over its handshake
HOLD_TIMEOUT = 5.0  # seconds a connection stays open after the handshake (or an OCSP request takes)
MAX_OCSP_REQUEST = 16 * 1024  # bytes of a POSTed OCSP request read at most
DAY = dt.timedelta(days=1)

# The signature AlgorithmIdentifier OIDs, DER-encoded (tag, length, value): see _resign_sha1.
SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
SHA1_WITH_RSA = bytes.fromhex("06092a864886f70d010105")


# -- the throw-away PKI -------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tls-exporter demo"),
        ]
    )


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for n in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            general.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(general)


def _der(tag: int, body: bytes) -> bytes:
    """One DER TLV: short-form length below 128 bytes, long form above."""
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _resign_sha1(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``cert`` (signed sha256WithRSAEncryption by ``key``) signed again with SHA-1.

    cryptography refuses to build a SHA-1 certificate, and the openssl CLI may be missing on a
    user's machine: swap the algorithm OID inside the to-be-signed part (same length, so no length
    changes), sign that with PKCS#1 v1.5 and SHA-1, and encode the Certificate SEQUENCE again."""
    tbs = cert.tbs_certificate_bytes
    if tbs.count(SHA256_WITH_RSA) != 1:
        raise ValueError("the certificate to re-sign is not signed with sha256WithRSAEncryption")
    tbs = tbs.replace(SHA256_WITH_RSA, SHA1_WITH_RSA)
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, SHA1_WITH_RSA + b"\x05\x00")  # AlgorithmIdentifier { sha1WithRSA, NULL }
    return x509.load_der_x509_certificate(_der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature)))


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Authority:
    cert: x509.Certificate
    key: PrivateKey


def _authority(cn: str, key: PrivateKey, now: dt.datetime) -> Authority:
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 30 * DAY)
        .not_valid_after(now + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def _leaf(
    issuer: Authority | None,
    now: dt.datetime,
    *,
    sans: Sequence[str] = (SERVER_NAME, "127.0.0.1"),
    valid: tuple[float, float] = (-30, 365),  # days from now: notBefore, notAfter
    key: PrivateKey | None = None,
    ocsp_url: str | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A server certificate issued by ``issuer``, or self-signed when it is None."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = _name(sans[0])
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + valid[0] * DAY)
        .not_valid_after(now + valid[1] * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(sans), critical=False)
    )
    if issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if ocsp_url is not None:
        ocsp_access = x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
        )
        b = b.add_extension(x509.AuthorityInformationAccess([ocsp_access]), critical=False)
    return b.sign(issuer.key if issuer else key, hashes.SHA256()), key


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _write_pair(directory: Path, name: str, chain: Sequence[x509.Certificate], key: PrivateKey) -> tuple[Path, Path]:
    """What a server loads: its chain (leaf first) and its key, in the demo's private directory."""
    chain_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    chain_path.write_bytes(_pem(*chain))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return chain_path, key_path


def _context(chain: Path, key: Path, *, weak: bool = False, legacy: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if weak or legacy:
        # OpenSSL's default security level refuses to serve RSA-1024 or SHA-1 certificates, and TLS 1.0.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if legacy:
        with warnings.catch_warnings():  # TLS 1.0 is deprecated: accepting it is what this endpoint is for
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(chain, key)
    return ctx


# -- the OCSP responder -------------------------------------------------------------------------------


@dataclass
class Responder:
    """Answers OCSP requests for the certificates of ``revoked`` (serial -> certificate), issued by
    ``ca``: revoked, signed by the CA, current for an hour; anything else is "unauthorized"."""

    ca: Authority
    revoked: dict[int, x509.Certificate] = field(default_factory=dict)

    def answer(self, request_der: bytes) -> bytes:
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        cert = self.revoked.get(request.serial_number)
        if cert is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = dt.datetime.now(dt.UTC)
        try:
            builder = (
                ocsp.OCSPResponseBuilder()
                .add_response(
                    cert=cert,
                    issuer=self.ca.cert,
                    algorithm=request.hash_algorithm,  # the CertID hashes the client asked with
                    cert_status=ocsp.OCSPCertStatus.REVOKED,
                    this_update=now - dt.timedelta(minutes=5),
                    next_update=now + dt.timedelta(hours=1),
                    revocation_time=now - DAY,
                    revocation_reason=x509.ReasonFlags.key_compromise,
                )
                .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca.cert)
            )
            return builder.sign(self.ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        except ValueError:  # a CertID hash the builder does not take
            return _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


async def _read_ocsp_request(reader: asyncio.StreamReader) -> bytes:
    """The DER request of one HTTP request: GET /ocsp/<url-encoded base64> or POST with a body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")  # the reader's limit bounds it (64 KiB)
    request_line, *headers = head.split("\r\n")
    method, _, rest = request_line.partition(" ")
    path = rest.partition(" ")[0]
    if method == "GET":
        try:
            return base64.b64decode(urllib.parse.unquote(path.rsplit("/", 1)[-1]), validate=True)
        except ValueError:
            return b""
    if method == "POST":
        lengths = [v for k, _, v in (h.partition(":") for h in headers) if k.strip().lower() == "content-length"]
        length = int(lengths[0]) if lengths and lengths[0].strip().isdigit() else 0
        return await reader.readexactly(min(length, MAX_OCSP_REQUEST))
    return b""


# -- the servers --------------------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Clients that break off (the version scan hangs up after the server's hello) are the normal case.
    log.debug("demo endpoint: %s", context.get("message"), exc_info=context.get("exception"))


class Servers:
    """Every listening socket of the demo, served by one event loop in a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet)
        self._thread = threading.Thread(target=self._loop.run_forever, name="demo endpoints", daemon=True)
        self._thread.start()
        self._sockets: list[socket.socket] = []
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[Any]] = set()

    def listen(self) -> socket.socket:
        """A socket listening on 127.0.0.1, on a port the OS picked; ``stop`` closes it."""
        sock = socket.create_server(("127.0.0.1", 0))
        self._sockets.append(sock)
        return sock

    def serve_tls(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self._call(self._start(sock, _hold, context))

    def serve_ocsp(self, sock: socket.socket, responder: Responder) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            async with asyncio.timeout(HOLD_TIMEOUT):
                answer = responder.answer(await _read_ocsp_request(reader))
                head = [
                    "HTTP/1.1 200 OK",
                    "Content-Type: application/ocsp-response",
                    f"Content-Length: {len(answer)}",
                    "Connection: close",
                ]
                writer.write("\r\n".join([*head, "", ""]).encode() + answer)
                await writer.drain()

        self._call(self._start(sock, handle, None))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start(self, sock: socket.socket, handler: Handler, context: ssl.SSLContext | None) -> None:
        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._connections.add(task)
            try:
                await handler(reader, writer)
            except Exception as exc:  # a broken client costs its own connection, never the server
                log.debug("demo endpoint: connection ended: %r", exc)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 2)
                if task is not None:
                    self._connections.discard(task)

        timeout = HANDSHAKE_TIMEOUT if context is not None else None
        server = await asyncio.start_server(connection, sock=sock, ssl=context, ssl_handshake_timeout=timeout)
        self._servers.append(server)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Close every server and connection, then end the thread (bounded: it is a daemon anyway)."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        for sock in self._sockets:
            sock.close()
        if not self._thread.is_alive():
            self._loop.close()


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After the handshake: read until the client hangs up, for a few seconds at most."""
    async with asyncio.timeout(HOLD_TIMEOUT):
        while await reader.read(4096):
            pass


# -- the demo world -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One entry of the demo's inventory, as the start banner lists it."""

    name: str
    owner: str
    where: str  # 127.0.0.1:port, or the file's path
    shows: str


@dataclass(frozen=True, slots=True)
class _Served:
    """A TLS endpoint to start: what it serves and how."""

    owner: str
    chain: tuple[x509.Certificate, ...]  # leaf first
    key: PrivateKey
    shows: str
    weak: bool = False  # an RSA-1024 or SHA-1 certificate: only a low security level serves it
    legacy: bool = False  # accepts TLS 1.0 and 1.1


@dataclass(frozen=True, slots=True)
class World:
    directory: Path
    config: Path
    endpoints: tuple[Endpoint, ...]
    ocsp: str  # the responder's address


def build_world(directory: Path, servers: Servers) -> World:
    """Issue every certificate into ``directory``, start every endpoint and write the configuration."""
    now = dt.datetime.now(dt.UTC)
    # RSA, so that the SHA-1 leaf can be re-signed by hand with PKCS#1 v1.5 (see _resign_sha1).
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _authority("tls-exporter demo CA", ca_key, now)
    stranger = _authority("tls-exporter demo untrusted CA", ec.generate_private_key(ec.SECP256R1()), now)
    trust = directory / "demo-ca.pem"
    trust.write_bytes(_pem(ca.cert))

    ocsp_socket = servers.listen()
    ocsp_address = f"127.0.0.1:{ocsp_socket.getsockname()[1]}"
    responder = Responder(ca)
    revoked, revoked_key = _leaf(ca, now, ocsp_url=f"http://{ocsp_address}/ocsp")
    responder.revoked[revoked.serial_number] = revoked
    servers.serve_ocsp(ocsp_socket, responder)

    sha1, sha1_key = _leaf(ca, now)
    sha1 = _resign_sha1(sha1, ca_key)
    untrusted, untrusted_key = _leaf(stranger, now)
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)

    def leaf(owner: str, issued: tuple[x509.Certificate, PrivateKey], shows: str, **options: bool) -> _Served:
        return _Served(owner, (issued[0],), issued[1], shows, **options)

    served = {
        "good": leaf("web-team", _leaf(ca, now), "a valid certificate from the demo CA: ok"),
        "expired": leaf("web-team", _leaf(ca, now, valid=(-400, -10)), "expired 10 days ago: expired"),
        "expiring-5d": leaf("shop-team", _leaf(ca, now, valid=(-85, 5)), "expires in 5 days: expiry_critical"),
        "expiring-20d": leaf("shop-team", _leaf(ca, now, valid=(-70, 20)), "expires in 20 days: expiry_warning"),
        "wrong-host": leaf(
            "db-team",
            _leaf(ca, now, sans=("wrong.demo.test",)),
            f"a certificate for wrong.demo.test, checked as {SERVER_NAME}: hostname_mismatch",
        ),
        "self-signed": leaf("dev-team", _leaf(None, now), "a self-signed certificate: chain_invalid"),
        # Served with its CA, which the profile does not trust: the chain ends in an untrusted root.
        "untrusted": _Served(
            "partner-team",
            (untrusted, stranger.cert),
            untrusted_key,
            "issued by a CA the profile does not trust: chain_invalid",
        ),
        "weak-key": leaf("legacy-team", _leaf(ca, now, key=weak_key), "an RSA 1024-bit key: weak_key", weak=True),
        "sha1": leaf(
            "legacy-team", (sha1, sha1_key), "signed with SHA-1: weak_signature (and chain_invalid)", weak=True
        ),
        "legacy-tls": leaf("legacy-team", _leaf(ca, now), "accepts TLS 1.0 and 1.1: legacy_protocol", legacy=True),
        "revoked": leaf(
            "security-team", (revoked, revoked_key), f"revoked, says the OCSP responder on {ocsp_address}: revoked"
        ),
    }
    endpoints: list[Endpoint] = []
    targets: list[dict[str, str]] = []
    for name, s in served.items():
        chain_path, key_path = _write_pair(directory, name, s.chain, s.key)
        sock = servers.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        servers.serve_tls(sock, _context(chain_path, key_path, weak=s.weak, legacy=s.legacy))
        endpoints.append(Endpoint(name, s.owner, address, s.shows))
        targets.append(
            {"address": address, "protocol": "tls", "server_name": SERVER_NAME, "name": name, "owner": s.owner}
        )

    watched = directory / "file.pem"
    watched.write_bytes(_pem(_leaf(ca, now, valid=(-300, 60))[0]))
    endpoints.append(Endpoint("file", "pki-team", str(watched), "a PEM file expiring in 60 days: expiry_info (ok)"))

    config = {
        "defaults": {"interval": INTERVAL, "timeout": TIMEOUT, "owner": "platform"},
        "profiles": {
            "default": {
                "trust": str(trust),  # the demo CA only: the untrusted CA's leaf does not verify
                "revocation": "ocsp",  # the revoked leaf names the local responder
                "scan_protocol_versions": True,  # the version scan that finds legacy-tls's TLS 1.0
                "min_tls_version": "TLSv1.2",
                "scan_interval": "10m",
            }
        },
        "targets": targets,
        "files": [{"path": str(watched), "name": "file", "owner": "pki-team"}],
        # Fetch OCSP/CRL/AIA URLs from loopback only: nothing the demo does leaves the machine.
        "fetch": {"allow": ["127.0.0.0/8", "::1/128"]},
    }
    path = directory / "config.yml"
    header = "# Written by `tls-exporter demo`; removed when it stops.\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return World(directory, path, tuple(endpoints), ocsp_address)


# -- the command --------------------------------------------------------------------------------------


def _listen(value: str) -> str:
    try:
        parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--web.listen-address: ")) from None
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tls-exporter demo",
        description="Start loopback TLS endpoints with a throw-away CA, each showing a finding, and the "
        "exporter watching them; runs until interrupted (Ctrl-C). Nothing leaves this machine.",
    )
    p.add_argument(
        "--web.listen-address",
        dest="listen",
        type=_listen,
        default=DEFAULT_LISTEN,
        help=f"address the exporter listens on (default {DEFAULT_LISTEN})",
    )
    p.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warn", "error"])
    return p


def _url(listen: str) -> str:
    host, port = parse_listen(listen)
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _banner(world: World, listen: str) -> str:
    url = _url(listen)
    width = max(len(e.name) for e in world.endpoints)
    where = max(len(e.where) for e in world.endpoints if not e.where.startswith("/"))
    lines = [
        f"tls-exporter demo: {len(world.endpoints)} endpoints with a throw-away CA; nothing leaves this machine.",
        f"  exporter      {url}  (inventory; also {url}api/v1/inventory and {url}metrics)",
        f"  config        {world.config}",
        f"  temp dir      {world.directory}  (removed on exit)",
        f"  OCSP          {world.ocsp}",
        "  endpoints:",
        *(f"    {e.name:<{width}}  {e.where:<{where}}  {e.shows}" for e in world.endpoints),
        f"Every endpoint is judged within about {INTERVAL} of the start. Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _no_proxy_for_loopback() -> None:
    # OCSP fetches honour HTTP_PROXY: the local responder must be reached directly, not via a proxy.
    for variable in ("no_proxy", "NO_PROXY"):
        entries = [e for e in os.environ.get(variable, "").split(",") if e.strip()]
        os.environ[variable] = ",".join([*entries, "127.0.0.1", "localhost"])


def run_demo(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    logs.setup(args.log_level)
    _no_proxy_for_loopback()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # SIGTERM stops the demo as Ctrl-C does, also before the exporter handles both itself.
    signal.signal(signal.SIGTERM, _interrupt)
    temp = tempfile.TemporaryDirectory(prefix="tls-exporter-demo-")
    servers: Servers | None = None
    try:
        servers = Servers()
        world = build_world(Path(temp.name), servers)
        print(_banner(world, args.listen), flush=True)
        exporter = Exporter(str(world.config), listen=args.listen)
        return eventloop.run(exporter.run())
    except ConfigError as exc:  # the demo wrote it: a bug, but say what it is
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:  # e.g. the listen address is taken
        print(f"tls-exporter demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not leave the keys behind: the clean-up takes a moment only.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if servers is not None:
            servers.stop()
        temp.cleanup()
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        print("tls-exporter demo: stopped; temporary files removed", flush=True)


__all__ = ["run_demo"]
