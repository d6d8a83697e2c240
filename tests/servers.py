"""Real loopback servers for tests.

``Listener`` is the one way the tests serve TCP on a loop: it owns every connection it accepts
and closes all of them, awaited, before it is done. ``LoopbackServers`` runs listeners on an
asyncio loop in a background thread, so tests stay synchronous or async as they like; every
server binds 127.0.0.1 (or ::1) on an ephemeral port and is closed when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RawHandler = Callable[[socket.socket], Awaitable[None]]
T = TypeVar("T")

# A TLS alert record: fatal (2), handshake_failure (40).
TLS_ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])


class Listener:
    """A listening socket on a running loop that owns every connection it accepts.

    Every accepted socket is recorded the moment it is accepted, its transport the moment it is
    made, and ``close()`` aborts whatever a handler left open and lets the loop run the transports'
    close callbacks, so no socket, transport or StreamWriter is ever collected unclosed (a
    ResourceWarning, which the suite turns into an error). This is the one way the tests serve TCP:
    a handler cancelled before its first step, a TLS handshake still running, a buffer the client
    never read, all end here. ``handler`` gets ``(reader, writer)``, or the socket with ``raw=True``.
    """

    def __init__(
        self,
        handler: Handler | RawHandler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 10.0,
        raw: bool = False,
    ) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout
        self._raw = raw
        self._sock: socket.socket | None = None
        self._accepted: set[socket.socket] = set()
        self._writers: dict[asyncio.StreamWriter, asyncio.WriteTransport] = {}  # -> the socket's own transport
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # set while accepting
        self._closing = False
        self.port = 0

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None, backlog: int = 128
    ) -> Listener:
        if sock is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
        sock.setblocking(False)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._accept, sock)
        return self

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accept(self, sock: socket.socket) -> None:
        """Accept what is pending, in the loop's reader callback, as asyncio's own servers do.

        Not ``await loop.sock_accept()`` in a task: cancelling that task after the accept but before
        the task resumed drops the accepted socket unclosed (a ResourceWarning at a later test's
        garbage collection). Here a socket is ours the instant it is accepted."""
        for _ in range(64):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError:
                return  # out of descriptors: the next readiness tries again
            conn.setblocking(False)
            self._accepted.add(conn)  # closed by close() even if its task never runs
            self._spawn(self._serve_raw(conn) if self._raw else self._serve(conn))

    async def _serve_raw(self, conn: socket.socket) -> None:
        try:
            await self._handler(conn)  # type: ignore[call-arg, arg-type]
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client left or broke the dialogue; what it did is for the test to assert
        finally:
            conn.close()
            self._accepted.discard(conn)

    async def _serve(self, conn: socket.socket) -> None:
        writer = None
        try:
            reader, writer = await self.streams(conn, tls=self._ssl)
            await self._handler(reader, writer)  # type: ignore[call-arg, arg-type]
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client left or broke the dialogue; what it did is for the test to assert
        finally:
            if writer is not None:
                await self.finish(writer)
            self._accepted.discard(conn)

    async def streams(
        self, conn: socket.socket, *, tls: ssl.SSLContext | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Streams over a socket this listener accepted (TLS first when ``tls``), owned by it:
        ``finish`` or ``close`` closes them. A raw handler calls it to upgrade mid-dialogue."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        made: list[asyncio.StreamWriter] = []

        def connected(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Called from connection_made, synchronously: the writer and its transport are ours now.
            self._writers[writer] = writer.transport
            if tls is not None:
                # Not a byte read as plaintext before the TLS layer takes over (the ClientHello).
                writer.transport.pause_reading()  # type: ignore[attr-defined]
            made.append(writer)

        protocol = asyncio.StreamReaderProtocol(reader, connected)  # a callback: server side for start_tls
        await loop.connect_accepted_socket(lambda: protocol, conn)
        (writer,) = made
        if tls is not None:
            # The stream is over TLS from its first byte: at the client's EOF the protocol must not ask
            # to keep the connection half open (asyncio's "returning true from eof_received()" warning;
            # start_tls sets this only once it returns, after an EOF that came right behind the handshake).
            protocol._over_ssl = True  # type: ignore[attr-defined]
            await writer.start_tls(tls, ssl_handshake_timeout=self._handshake_timeout)
        return reader, writer

    async def finish(self, writer: asyncio.StreamWriter) -> None:
        """Close gracefully (what was written reaches the client), abort what does not close soon."""
        if not self._closing:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(writer.wait_closed()), 2)
        writer.transport.abort()  # the TLS layer where there is one
        raw = self._writers.pop(writer, None)
        if raw is not None:
            raw.abort()  # the socket's own transport (a no-op once it is closed)
        await asyncio.sleep(0)  # connection_lost runs: the transport lets its socket go

    async def close(self) -> None:
        """Stop accepting, end every handler, abort every connection and wait for their close."""
        self._closing = True
        if self._loop is not None and self._sock is not None:  # no connection accepted from now on
            self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        for _ in range(3):
            await asyncio.sleep(0)  # tasks created just now take their first step (nothing is lost)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer, raw in self._writers.items():
            writer.transport.abort()  # the TLS layer where there is one
            raw.abort()  # the socket's own transport (a no-op when it is closed already)
        for conn in self._accepted:
            conn.close()  # accepted, never wrapped in a transport
        self._accepted.clear()
        if self._sock is not None:
            self._sock.close()
        for _ in range(3):
            await asyncio.sleep(0)  # the transports' connection_lost callbacks run, then nothing is left
        self._writers.clear()


class LoopbackServers:
    """Owns a thread with an event loop; ``start(handler, ssl=...)`` returns the bound port."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="loopback-servers", daemon=True)
        self._thread.start()
        self._listeners: list[Listener] = []
        self._raw: list[socket.socket] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(
        self,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
    ) -> int:
        """Serve ``handler`` (on ``sock`` when given, a listening socket this takes over); the port."""

        async def _start() -> int:
            listener = await Listener(handler, ssl_context=ssl_context).start(host, sock=sock)
            self._listeners.append(listener)
            return listener.port

        return self.run(_start())

    def tls(self, ctx: ssl.SSLContext, *, response: bytes = b"", host: str = "127.0.0.1") -> int:
        """A TLS server that answers ``response`` to the first bytes it reads, then closes."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                if response:
                    await asyncio.wait_for(reader.read(65536), 5)
                    writer.write(response)
                    await writer.drain()
                else:
                    await asyncio.wait_for(reader.read(65536), 5)
            except (TimeoutError, OSError, ssl.SSLError):
                pass
            finally:
                writer.close()

        return self.start(handler, ssl_context=ctx, host=host)

    def https(self, ctx: ssl.SSLContext, *, hsts: str | None = None, host: str = "127.0.0.1") -> int:
        headers = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n"
        if hsts is not None:
            headers += b"Strict-Transport-Security: " + hsts.encode() + b"\r\n"
        return self.tls(ctx, response=headers + b"\r\nok", host=host)

    def silent(self) -> int:
        """Accepts and never speaks."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.read()  # until the client goes away
            finally:
                writer.close()

        return self.start(handler)

    def drip(self, data: bytes = b"220 ", interval: float = 0.3) -> int:
        """Accepts and sends ``data`` one byte every ``interval`` seconds, forever (a line never ends)."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    for byte in data:
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(interval)
            except OSError:
                pass
            finally:
                writer.close()

        return self.start(handler)

    def plain_http(self) -> int:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.wait_for(reader.read(4096), 5)
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
            except (TimeoutError, OSError):
                pass
            finally:
                writer.close()

        return self.start(handler)

    def alert(self) -> int:
        """Reads the ClientHello and answers a fatal handshake_failure alert."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.wait_for(reader.read(4096), 5)
                writer.write(TLS_ALERT)
                await writer.drain()
            except (TimeoutError, OSError):
                pass
            finally:
                writer.close()

        return self.start(handler)

    def full_backlog(self) -> int:
        """A listener whose accept queue is full: a further connect cannot complete."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = int(sock.getsockname()[1])
        self._raw.append(sock)
        fillers = []
        for _ in range(8):  # fill the SYN and accept queues; later connects hang in SYN_SENT
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                f.connect(("127.0.0.1", port))
            fillers.append(f)
        self._raw.extend(fillers)
        return port

    def stop(self) -> None:
        async def _stop() -> None:
            await asyncio.gather(*(listener.close() for listener in self._listeners))

        with contextlib.suppress(TimeoutError):
            self.run(_stop(), timeout=10)
        for sock in self._raw:
            sock.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
