"""ManageSieve: STARTTLS once the greeting's capabilities list it (RFC 5804 1.7, 2.2)."""

from __future__ import annotations

import asyncio

from exporter.starttls.base import read_line, read_lines, refused, send, shown
from exporter.support.errors import NotTLS

PROTO = "ManageSieve"
_RESPONSES = ("OK", "NO", "BYE")


def _response(line: str) -> str | None:
    """OK, NO or BYE when ``line`` is a response (RFC 5804 4), None for a capability line."""
    word = line.split(" ", 1)[0].split("(", 1)[0].upper()
    if word in _RESPONSES:
        return word
    if line.startswith('"'):  # a capability: quoted name, optional quoted value
        return None
    raise NotTLS(f"{PROTO}: not a ManageSieve response: {shown(line)}")


async def sieve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    # The greeting is the capability list, ended by a response (OK when the server is ready).
    lines = await read_lines(reader, PROTO, lambda line: _response(line) is not None)
    if _response(lines[-1]) != "OK":
        raise refused(PROTO, "greeting", shown(lines[-1]))
    names = [line.split('"', 2)[1].upper() for line in lines[:-1] if line.count('"') >= 2]
    if "STARTTLS" not in names:
        raise refused(PROTO, "STARTTLS not in the capabilities", shown(" ".join(names)))

    await send(writer, b"STARTTLS\r\n", PROTO)
    line = await read_line(reader, PROTO)
    answer = _response(line)
    if answer is None:  # a capability line is not an answer to a command
        raise NotTLS(f"{PROTO}: not a response to STARTTLS: {shown(line)}")
    if answer != "OK":
        raise refused(PROTO, "STARTTLS refused", shown(line))
