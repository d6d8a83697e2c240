"""The HTTP server's defences: a cap on open connections, and read timeouts.

aiohttp has no option for either, but its runner builds the protocol factory in ``_make_server``:
the factory is wrapped here so that past ``max_connections`` a new connection is answered 503
and closed at once (it never holds a descriptor the probes need). Read timeouts are aiohttp's
own: ``keepalive_timeout`` closes a connection that has not sent a complete request head that
long after it opened or after its last response (slowloris), and ``lingering_time`` bounds how
long the unread body of a request is drained. Handlers read no request body.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_server import Server

log = logging.getLogger("exporter.web")

HEADER_TIMEOUT = 10.0  # seconds to send a complete request head (and idle keep-alive)
BODY_TIMEOUT = 5.0  # seconds an unread request body is drained before the connection closes
SHUTDOWN_TIMEOUT = 0.5  # in-flight requests (a /probe) are cancelled after this on shutdown
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class _Counted(asyncio.Protocol):
    """The request handler, counted from the moment it is made until its connection is lost.

    asyncio makes a batch of protocols per accept wake-up before any of them sees its
    ``connection_made``, so the server's own connection list lags: the cap counts here."""

    def __init__(self, inner: asyncio.Protocol, gate: _Capped) -> None:
        self._inner, self._gate = inner, gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
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
        self._gate.open -= 1
        self._inner.connection_lost(exc)


class _Capped:
    """The runner's ``Server`` as a protocol factory that refuses connections past the cap."""

    def __init__(self, server: Server, max_connections: int) -> None:
        self._server = server
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.max_connections:
            self.refused += 1
            log.warning(
                "too many HTTP connections: refused with 503", extra={"fields": {"limit": self.max_connections}}
            )
            return _Refused()
        self.open += 1
        return _Counted(self._server(), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", HEADER_TIMEOUT)
        kwargs.setdefault("lingering_time", BODY_TIMEOUT)
        kwargs.setdefault("shutdown_timeout", SHUTDOWN_TIMEOUT)
        super().__init__(app, **kwargs)
        self.max_connections = max_connections

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        return _Capped(server, self.max_connections)  # type: ignore[return-value]
