"""SMTP and submission (EHLO) and LMTP (LHLO): STARTTLS after the greeting, RFC 3207 / 2033."""

from __future__ import annotations

import asyncio

from exporter.starttls.base import command, read_reply, refused

# Our own name in EHLO/LHLO: the probe has no mail domain, and .invalid can never be one.
CLIENT_NAME = "tls-exporter.invalid"


async def _dialogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: str, proto: str) -> None:
    greeting = await read_reply(reader, proto)
    if greeting.code != 220:  # 421 busy, 554 no service: reachable but not talking to us
        raise refused(proto, "greeting", greeting)
    reply = await command(reader, writer, f"{hello} {CLIENT_NAME}", proto)
    if reply.code != 250:
        raise refused(proto, f"{hello} refused", reply)
    keywords = {line[4:].split(" ", 1)[0].upper() for line in reply.lines[1:]}
    if "STARTTLS" not in keywords:
        raise refused(proto, f"STARTTLS not offered in the {hello} reply", reply)
    reply = await command(reader, writer, "STARTTLS", proto)
    if reply.code != 220:
        raise refused(proto, "STARTTLS refused", reply)


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    await _dialogue(reader, writer, "EHLO", "SMTP")


async def lmtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    await _dialogue(reader, writer, "LHLO", "LMTP")
