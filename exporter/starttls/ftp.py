"""FTP: AUTH TLS after the greeting (RFC 4217)."""

from __future__ import annotations

import asyncio

from exporter.starttls.base import Reply, command, read_reply, refused

PROTO = "FTP"
EXTRA_BANNERS = 3  # some servers repeat their 220 banner; skip a few, not forever


async def ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    greeting = await read_reply(reader, PROTO, every_line_coded=False)
    if greeting.code != 220:
        raise refused(PROTO, "greeting", greeting)
    reply: Reply = await command(reader, writer, "AUTH TLS", PROTO, every_line_coded=False)
    for _ in range(EXTRA_BANNERS):
        if reply.code != 220:
            break
        reply = await read_reply(reader, PROTO, every_line_coded=False)
    if reply.code != 234:
        raise refused(PROTO, "AUTH TLS refused", reply)
