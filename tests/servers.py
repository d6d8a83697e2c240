"""Real loopback servers for tests, run on an asyncio loop in a background thread.

Tests stay synchronous or async as they like; every server binds 127.0.0.1 (or ::1) on an
ephemeral port and is closed when the ``LoopbackServers`` that started it stops.
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
T = TypeVar("T")

# A TLS alert record: fatal (2), handshake_failure (40).
TLS_ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])


def _accepting(task: asyncio.Task[Any]) -> bool:
    """The event loop's own task that turns an accepted socket into a transport."""
    return getattr(task.get_coro(), "__qualname__", "").endswith("_accept_connection2")


class LoopbackServers:
    """Owns a thread with an event loop; ``start(handler, ssl=...)`` returns the bound port."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="loopback-servers", daemon=True)
        self._thread.start()
        self._servers: list[asyncio.base_events.Server] = []
        self._raw: list[socket.socket] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> int:
        async def _start() -> int:
            server = await asyncio.start_server(
                handler, host, 0, ssl=ssl_context, ssl_handshake_timeout=10 if ssl_context else None
            )
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])

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
            for server in self._servers:
                server.close()
            # A connection accepted just now waits in a task that wraps its socket in a transport; a
            # task cancelled before its first step never runs, and the socket would be collected
            # unclosed (a ResourceWarning, an error). Let those tasks start, and never cancel them:
            # they end when the handshake does (the clients are stopped first), counted below.
            for _ in range(3):
                await asyncio.sleep(0)
            # Handlers still talking to a client are cancelled so their `finally` closes the socket.
            me = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not me and not _accepting(t)]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for server in self._servers:
                await server.wait_closed()
            # A connection still in its TLS handshake has no handler task to cancel; it closes when
            # the loop reads the client's close (clients are stopped first). Wait for that, briefly,
            # so that no transport is left to be collected unclosed (a ResourceWarning, an error).
            for _ in range(200):
                if not any(getattr(server, "_active_count", 0) for server in self._servers):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)  # let transports run their close callbacks

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
