"""The probe's TLS client: pyOpenSSL over the probe's own stream, with memory BIOs.

Why not the standard library's ``ssl``: a probe must see what a strict client would refuse, and
``ssl`` cannot (1) ask for an OCSP staple, in TLS 1.2 or 1.3, (2) hand out the chain a server sent
before the handshake failed (a TLS 1.2 server that requires a client certificate sends its
Certificate, then CertificateRequest, then fails us), or (3) give the served chain without a
private API on Python < 3.13. pyOpenSSL (the PyCA's binding to the OpenSSL that ``cryptography``
ships) does all three; ``TLSClient`` drives it over any asyncio stream, a proxy tunnel or a stream
after a STARTTLS dialogue alike, under the probe's ``Deadline``.

Nothing is verified during the handshake, so broken certificates (expired, self-signed, misnamed,
weak) are still read; judgement happens afterwards in ``exporter.certs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from exporter.support.deadline import Deadline

READ_CHUNK = 65536
MAX_HANDSHAKE_BYTES = 1024 * 1024  # more than any sane chain: a server that keeps talking is cut off

# OpenSSL reasons that mean "the peer did not answer with TLS at all".
NOT_TLS_REASONS = (
    "WRONG_VERSION_NUMBER",
    "PACKET_LENGTH_TOO_LONG",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "WRONG_SSL_VERSION",
    "RECORD_TOO_LARGE",
    "INVALID_RECORD",
)


class TLSFailure(Exception):
    """The handshake failed; ``not_tls`` when the peer did not speak TLS; ``chain`` is whatever the
    server sent before it failed (DER, leaf first; empty when nothing)."""

    def __init__(self, detail: str, *, not_tls: bool = False, chain: tuple[bytes, ...] = ()) -> None:
        super().__init__(detail)
        self.detail, self.not_tls, self.chain = detail, not_tls, chain


class PeerClosed(Exception):
    """The peer closed the connection during the handshake."""


REQUEST_ANSWER_WAIT = 1.0  # TLS 1.3: how long to wait for the server to refuse our missing client certificate


@dataclass(slots=True)
class _Seen:
    staple: bytes | None = None
    calls: int = 0
    certificate_requested: bool = False  # the server sent CertificateRequest


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    cert_file: str
    key_file: str


def _ocsp_callback(conn: SSL.Connection, data: bytes, _: object) -> bool:
    seen = conn.get_app_data()
    if isinstance(seen, _Seen):
        seen.calls += 1
        seen.staple = data or None  # b"" when the server stapled nothing
    return True  # the staple is judged later, with the chain: never abort the handshake here


def _info_callback(conn: SSL.Connection, where: int, ret: int) -> None:
    if where & SSL.SSL_CB_LOOP and b"certificate request" in (conn.get_state_string() or b""):
        seen = conn.get_app_data()
        if isinstance(seen, _Seen):
            seen.certificate_requested = True


@lru_cache(maxsize=64)
def client_context(client: ClientCertificate | None = None) -> SSL.Context:
    """One context per client certificate (none for most probes); loading a key is done once."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE, lambda *_: True)
    # Security level 0 so that a server with an RSA-1024 or SHA-1 certificate, or only TLS 1.0,
    # still completes the handshake and is reported rather than hidden behind a failure.
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_ocsp_client_callback(_ocsp_callback)
    ctx.set_info_callback(_info_callback)
    if client is not None:
        ctx.use_certificate_chain_file(client.cert_file)
        ctx.use_privatekey_file(client.key_file)
        ctx.check_privatekey()
    return ctx


def _reason(error: SSL.Error) -> str:
    """OpenSSL's reasons ("wrong version number"), from pyOpenSSL's list of (library, function, reason)."""
    first = error.args[0] if error.args else None
    if isinstance(first, list):
        parts = [str(item[2]) if isinstance(item, tuple) and len(item) > 2 else str(item) for item in first]
    else:
        parts = [str(a) for a in error.args]
    return "; ".join(p for p in parts if p) or type(error).__name__


@dataclass(slots=True)
class TLSClient:
    """One TLS connection over ``reader``/``writer`` (already connected, dialogue done)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server_name: str | None
    client: ClientCertificate | None = None
    conn: SSL.Connection = field(init=False)
    _seen: _Seen = field(init=False)
    _received: int = 0

    def __post_init__(self) -> None:
        self.conn = SSL.Connection(client_context(self.client), None)
        self._seen = _Seen()
        self.conn.set_app_data(self._seen)
        if self.server_name:
            self.conn.set_tlsext_host_name(self.server_name.encode("idna"))
        self.conn.request_ocsp()
        self.conn.set_connect_state()

    # -- moving bytes between the memory BIO and the stream ---------------------------------------
    def _flush(self) -> None:
        while True:
            try:
                data = self.conn.bio_read(READ_CHUNK)
            except SSL.WantReadError:
                return
            if not data:
                return
            self.writer.write(data)

    async def _pump(self, deadline: Deadline) -> None:
        self._flush()
        await deadline.run(self.writer.drain())
        data = await deadline.run(self.reader.read(READ_CHUNK))
        if not data:
            raise PeerClosed("the server closed the connection")
        self._received += len(data)
        if self._received > MAX_HANDSHAKE_BYTES:
            raise TLSFailure(f"the server sent more than {MAX_HANDSHAKE_BYTES} bytes without finishing the handshake")
        self.conn.bio_write(data)

    async def _until_done(self, step: Callable[[], object], deadline: Deadline) -> object:
        while True:
            try:
                result = step()
            except SSL.WantReadError:
                await self._pump(deadline)
                continue
            self._flush()
            await deadline.run(self.writer.drain())
            return result

    # -- the handshake and what it showed ---------------------------------------------------------
    async def handshake(self, deadline: Deadline) -> None:
        """Raises TimeoutError (the deadline), PeerClosed, or TLSFailure."""
        try:
            await self._until_done(self.conn.do_handshake, deadline)
            if self._seen.certificate_requested and self.version == "TLSv1.3":
                await self._refused_after_finished(deadline)
        except SSL.Error as exc:
            reason = _reason(exc)
            not_tls = any(r in reason.upper().replace(" ", "_") for r in NOT_TLS_REASONS)
            raise TLSFailure(reason, not_tls=not_tls, chain=self.chain()) from None
        except PeerClosed as exc:
            raise TLSFailure(f"connection lost during the TLS handshake: {exc}", chain=self.chain()) from None

    async def _refused_after_finished(self, deadline: Deadline) -> None:
        """In TLS 1.3 the client finishes before the server judges its certificate (or its lack of
        one): a refusal comes as an alert right after. Wait briefly for it, so a server that
        requires a client certificate is reported as failing, as in TLS 1.2 (its chain still shows)."""
        try:
            self.conn.recv(1)
        except SSL.WantReadError:
            try:
                await deadline.run(self._pump(deadline), REQUEST_ANSWER_WAIT)
            except TimeoutError:
                return  # no refusal: the certificate was optional
            try:
                self.conn.recv(1)
            except (SSL.WantReadError, SSL.ZeroReturnError):
                return
        except SSL.ZeroReturnError:
            return

    def chain(self) -> tuple[bytes, ...]:
        """The certificates as the server sent them, leaf first (also after a failed handshake)."""
        certs = self.conn.get_peer_cert_chain(as_cryptography=True) or []
        return tuple(c.public_bytes(Encoding.DER) for c in certs)

    @property
    def version(self) -> str:
        return self.conn.get_protocol_version_name() or ""

    @property
    def cipher(self) -> tuple[str, int]:
        return self.conn.get_cipher_name() or "", int(self.conn.get_cipher_bits() or 0)

    @property
    def staple(self) -> bytes | None:
        """The OCSP response the server stapled in this handshake (TLS 1.2 or 1.3), if any."""
        return self._seen.staple

    # -- application data (the HSTS request of https probes) --------------------------------------
    async def send(self, data: bytes, deadline: Deadline) -> None:
        self.conn.sendall(data)
        self._flush()
        await deadline.run(self.writer.drain())

    async def read_until(self, marker: bytes, limit: int, deadline: Deadline) -> bytes:
        """Decrypted bytes up to and including ``marker`` (at most ``limit``); what was read when
        the peer closes first."""
        buffer = b""
        while marker not in buffer and len(buffer) < limit:
            try:
                buffer += self.conn.recv(READ_CHUNK)
            except SSL.WantReadError:
                try:
                    await self._pump(deadline)
                except PeerClosed:
                    break
            except (SSL.ZeroReturnError, SSL.SysCallError):
                break
        return buffer[:limit]

    def close_notify(self) -> None:
        """Say goodbye in TLS (best effort): the caller closes the socket."""
        try:
            self.conn.shutdown()
            self._flush()
        except SSL.Error:
            pass
