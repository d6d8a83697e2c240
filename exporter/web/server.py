"""The HTTP server's defences: a cap on open connections that sheds the slowest clients first,
and read timeouts.

aiohttp has no option for either, but its runner builds the protocol factory in ``_make_server``:
the factory is wrapped here to count connections. At the cap, a new connection closes the
connection that has waited longest without a request in progress (a client still dripping its
request head, or an idle keep-alive) and takes its place; only when every connection is serving
a request is the new one answered 503 and closed at once. A flood of slow clients (slowloris)
therefore holds at most the cap, and Prometheus, which sends its request as soon as it connects,
is always served: with 1,024 descriptors and 1,100 slow clients, 66 of 80 scrapes and health
checks failed when new connections were refused instead, 0 now (bench/slow_clients.py). The cap
keeps the descriptors the probes need. Read timeouts are aiohttp's own: ``keepalive_timeout``
closes a connection that has not sent a complete request head that long after it opened or after
its last response, and ``lingering_time`` bounds how long the unread body of a request is
drained. Handlers read no request body.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_server import Server

log = logging.getLogger("exporter.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADER_TIMEOUT = 10.0  # seconds to send a complete request head (and idle keep-alive)
BODY_TIMEOUT = 5.0  # seconds an unread request body is drained before the connection closes
SHUTDOWN_TIMEOUT = 0.5  # in-flight requests (a /probe) are cancelled after this on shutdown
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class _Slot:
    """One connection's place under the cap, given back once (lost, shed, or never made)."""

    __slots__ = ("counted",)

    def __init__(self) -> None:
        self.counted = True


class _Counted(asyncio.Protocol):
    """The request handler, counted from the moment it is made until its connection is lost, it
    is shed, or it is freed without ever being connected.

    asyncio makes a batch of protocols per accept wake-up before any of them sees its
    ``connection_made``, so the server's own connection list lags: the cap counts here. A TLS
    connection whose handshake fails (plain HTTP sent to the TLS port, a scanner) never reaches
    ``connection_made`` nor ``connection_lost``: asyncio's SSL layer tells the protocol nothing.
    Its slot is given back when the protocol is freed; counted until the loop closed it, such
    connections once filled the cap for good and every later request got 503."""

    def __init__(self, inner: asyncio.Protocol, gate: _Capped) -> None:
        self._inner, self._gate = inner, gate
        self.transport: asyncio.BaseTransport | None = None
        self.slot = _Slot()
        weakref.finalize(self, gate.release, self.slot)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._gate.made(self)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gate.forget(self)
        self._inner.connection_lost(exc)


class _Capped:
    """The runner's ``Server`` as a protocol factory that keeps at most ``max_connections``."""

    def __init__(self, server: Server, max_connections: int) -> None:
        self._server = server
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0  # answered 503: every connection was serving a request
        self.shed = 0  # closed to make room: the one that waited longest for its request
        # Connected, with no request in progress, the longest waiting first: since they connected,
        # or since their last response (keep-alive). A request takes its connection out.
        self.waiting: OrderedDict[_Counted, None] = OrderedDict()
        self.by_transport: dict[asyncio.BaseTransport, _Counted] = {}

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.max_connections and not self._shed_one():
            self.refused += 1
            log.warning(
                "too many HTTP connections: refused with 503", extra={"fields": {"limit": self.max_connections}}
            )
            return _Refused()
        self.open += 1
        return _Counted(self._server(), self)

    def _shed_one(self) -> bool:
        victim = next(iter(self.waiting), None)
        if victim is None or victim.transport is None:
            return False
        del self.waiting[victim]
        self.release(victim.slot)
        victim.transport.close()  # nothing to flush: it has no request in progress
        self.shed += 1
        log.warning(
            "too many HTTP connections: closed the one waiting longest for its request",
            extra={"fields": {"limit": self.max_connections}},
        )
        return True

    def made(self, conn: _Counted) -> None:
        assert conn.transport is not None
        self.by_transport[conn.transport] = conn
        if conn.slot.counted:
            self.waiting[conn] = None

    def busy(self, transport: asyncio.BaseTransport | None) -> _Counted | None:
        """A request of this connection is in progress (its head is complete): not to be shed."""
        conn = self.by_transport.get(transport) if transport is not None else None
        if conn is not None:
            self.waiting.pop(conn, None)
        return conn

    def idle(self, conn: _Counted) -> None:
        """Its response is sent: it waits for its next request, the newest in line."""
        if conn.slot.counted and conn.transport is not None and not conn.transport.is_closing():
            self.waiting[conn] = None

    def release(self, slot: _Slot) -> None:
        if slot.counted:
            slot.counted = False
            self.open -= 1

    def forget(self, conn: _Counted) -> None:
        self.release(conn.slot)
        self.waiting.pop(conn, None)
        if conn.transport is not None:
            self.by_transport.pop(conn.transport, None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", HEADER_TIMEOUT)
        kwargs.setdefault("lingering_time", BODY_TIMEOUT)
        kwargs.setdefault("shutdown_timeout", SHUTDOWN_TIMEOUT)
        super().__init__(app, **kwargs)
        self.max_connections = max_connections
        self.gate: _Capped | None = None
        app.middlewares.insert(0, self._track)  # first: a request refused by auth is in progress too

    @web.middleware
    async def _track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        conn = self.gate.busy(request.transport) if self.gate is not None else None
        try:
            return await handler(request)
        finally:
            if conn is not None and self.gate is not None:
                self.gate.idle(conn)

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        self.gate = _Capped(server, self.max_connections)
        return self.gate  # type: ignore[return-value]
