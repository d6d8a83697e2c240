"""Scripted protocol servers: play a protocol's server side from a list of steps.

``async with ScriptedServer(script, tls=ctx) as fake:`` listens on 127.0.0.1 (ephemeral port,
``fake.port``) in the test's own event loop. Each connection runs the script: ``Send`` bytes,
``Expect`` exact bytes from the client (a mismatch is recorded in ``fake.failures`` and ends the
connection), ``Flood`` the client, ``Close``, or ``StartTLS`` (upgrade server-side with ``tls``,
then wait for the client to leave). A script that ends without closing waits silently for the
client to go away. Leaving the block stops the server and every connection it still holds.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from types import TracebackType

from cryptography import x509
from servers import Listener

GARBAGE = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
TEN_MB = 10 * 1024 * 1024


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class Expect:
    data: bytes


@dataclass(frozen=True)
class Flood:
    """Write ``chunk`` again and again, up to ``total`` bytes or until the client leaves."""

    chunk: bytes
    total: int = TEN_MB


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class StartTLS:
    pass


Step = Send | Expect | Flood | Close | StartTLS


class ScriptedServer:
    """Raw sockets until StartTLS: reads take exactly what a step expects, so a ClientHello sent
    right behind the last plaintext message (MySQL) is still in the socket for the TLS layer."""

    def __init__(
        self, script: Sequence[Step], *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.script = list(script)
        self.host, self._port = host, port
        self.tls = tls
        self.port = 0
        self.failures: list[str] = []  # what the client sent that the script did not expect
        self.tls_done = False
        self._listener = Listener(self._play, raw=True)

    async def __aenter__(self) -> ScriptedServer:
        await self._listener.start(self.host, self._port, backlog=8)
        self.port = self._listener.port
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._listener.close()

    async def _play(self, conn: socket.socket) -> None:
        """One connection; the listener closes it however this ends (the client's business)."""
        loop = asyncio.get_running_loop()
        for step in self.script:
            if not await self._step(step, conn):
                return
        while await loop.sock_recv(conn, 65536):  # silence: wait for the client to go away
            pass

    async def _step(self, step: Step, conn: socket.socket) -> bool:
        """Run one step; False ends the connection."""
        loop = asyncio.get_running_loop()
        match step:
            case Send(data):
                await loop.sock_sendall(conn, data)
            case Expect(data):
                got = b""
                while len(got) < len(data):
                    chunk = await loop.sock_recv(conn, len(data) - len(got))
                    if not chunk:
                        raise asyncio.IncompleteReadError(got, len(data))
                    got += chunk
                if got != data:
                    self.failures.append(f"expected {data!r}, got {got!r}")
                    return False
            case Flood(chunk, total):
                block = chunk * max(1, 65536 // len(chunk))  # big sends, so the loop gets to run the client
                for _ in range(0, total, len(block)):
                    await loop.sock_sendall(conn, block)
            case Close():
                return False
            case StartTLS():
                await self._tls(conn)
                return False
        return True

    async def _tls(self, conn: socket.socket) -> None:
        """Server-side TLS on the connection, then wait for the client's close_notify or EOF."""
        assert self.tls is not None, "StartTLS needs the server's tls context"
        reader, writer = await self._listener.streams(conn, tls=self.tls)
        try:
            self.tls_done = True
            await reader.read()
        finally:
            await self._listener.finish(writer)


def client_context() -> ssl.SSLContext:
    """What a probe uses to fetch a certificate: no verification, any name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A client connection to 127.0.0.1:port, closed (TLS or not) on the way out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def peer_serial(writer: asyncio.StreamWriter) -> str:
    """The serial (lowercase hex) of the certificate the TLS peer of ``writer`` served."""
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    return format(x509.load_der_x509_certificate(der).serial_number, "x")
