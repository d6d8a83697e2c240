"""NNTP: STARTTLS after a 200/201 greeting, go-ahead 382 (RFC 4642 2.2, RFC 3977 5.1)."""

from __future__ import annotations

import asyncio

from exporter.starttls.base import command, read_reply, refused

PROTO = "NNTP"
_READY = (200, 201)  # posting allowed, posting prohibited; 400 and 502 refuse service
_GO_AHEAD = 382


async def nntp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    greeting = await read_reply(reader, PROTO)
    if greeting.code not in _READY:
        raise refused(PROTO, "greeting", greeting)
    # No CAPABILITIES first: a server without STARTTLS answers 500/502, which says the same.
    reply = await command(reader, writer, "STARTTLS", PROTO)
    if reply.code != _GO_AHEAD:
        raise refused(PROTO, "STARTTLS refused", reply)
