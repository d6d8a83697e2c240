"""The test servers' Listener: a connection it accepted is never dropped unclosed, whenever it closes."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

from servers import Listener


async def _stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)  # holds the connection until the listener ends it


async def test_connections_accepted_as_the_listener_closes_are_closed_not_dropped() -> None:
    # Closing just after the loop accepted a connection, before the code that accepted it resumed:
    # awaiting loop.sock_accept() in a task that is then cancelled loses that socket (every time
    # with one turn). Zero to three turns meet every order of the loop's callbacks.
    for turns in (0, 1, 2, 3) * 5:
        listener = await Listener(_stalled).start()
        await asyncio.sleep(0)  # the listener is waiting for connections
        clients = []
        for _ in range(8):  # queued in the backlog: the next readiness accepts them all at once
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", listener.port))
            clients.append(client)
        for _ in range(turns):
            await asyncio.sleep(0)  # the loop sees the listening socket readable and accepts
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await listener.close()  # before the handlers' tasks took a step
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
        for client in clients:
            client.setblocking(True)
            client.settimeout(5)
            try:
                assert client.recv(1) == b""  # the server side was closed, not left open
            except ConnectionResetError:
                pass  # aborted: closed too
            finally:
                client.close()
