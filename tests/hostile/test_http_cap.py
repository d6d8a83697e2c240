"""The HTTP server's connection cap in-process (exporter/web/server.py): which connection is shed
at the cap, and that connections whose TLS handshake fails give their place back."""

from __future__ import annotations

import asyncio
import gc
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pki import PKI

from exporter.web.server import GuardedRunner


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.fixture
async def capped(pki: PKI, request: pytest.FixtureRequest) -> AsyncIterator[tuple[GuardedRunner, int]]:
    """A server with the exporter's runner, capped at 4 connections; TLS when the test asks."""
    app = web.Application()
    app.router.add_get("/", _ok)
    runner = GuardedRunner(app, max_connections=4)
    await runner.setup()
    tls = pki["good"].server_context() if getattr(request, "param", False) else None
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    try:
        yield runner, server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


async def _closed(reader: asyncio.StreamReader) -> bool:
    """The server closed this connection (read returns EOF) within a second."""
    try:
        return await asyncio.wait_for(reader.read(), 1.0) == b""
    except TimeoutError:
        return False


async def test_at_the_cap_the_connection_waiting_longest_is_shed(capped: tuple[GuardedRunner, int]) -> None:
    runner, port = capped
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]  # the cap, none sends
    try:
        await asyncio.sleep(0.1)
        assert runner.gate is not None and runner.gate.open == 4
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as resp:
            assert (resp.status, await resp.text()) == (200, "ok")
        # The first to connect was shed for it; the other three are still held.
        assert await _closed(idle[0][0])
        assert [await _closed(r) for r, _ in idle[1:]] == [False, False, False]
        assert (runner.gate.shed, runner.gate.refused) == (1, 0)
    finally:
        for _, writer in idle:
            writer.close()
            await writer.wait_closed()


@pytest.mark.parametrize("capped", [True], indirect=True)
async def test_failed_tls_handshakes_give_their_place_back(capped: tuple[GuardedRunner, int], pki: PKI) -> None:
    # Plain HTTP sent to the TLS port: the handshake fails and asyncio's SSL layer never tells the
    # protocol. Five times the cap of them, then a real client must still get in.
    runner, port = capped
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()
        await writer.wait_closed()
    gc.collect()  # what the running exporter's collector does on its own, at once here
    await asyncio.sleep(0)
    assert runner.gate is not None and runner.gate.open == 0
    context = ssl.create_default_context(cafile=str(pki.root.cert_path))
    async with aiohttp.ClientSession() as session, session.get(f"https://localhost:{port}/", ssl=context) as resp:
        assert (resp.status, await resp.text()) == (200, "ok")
