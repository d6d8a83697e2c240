"""POP3: STLS, after CAPA when the server has it (RFC 2595 4)."""

from __future__ import annotations

import asyncio

from exporter.starttls.base import read_line, read_lines, refused, send, shown
from exporter.support.errors import NotTLS

PROTO = "POP3"


async def _status(reader: asyncio.StreamReader) -> tuple[bool, str]:
    """Read a status line: True for +OK, False for -ERR, NotTLS for anything else."""
    line = await read_line(reader, PROTO)
    word = line.split(" ", 1)[0].upper()
    if word not in ("+OK", "-ERR"):
        raise NotTLS(f"{PROTO}: not a POP3 reply: {shown(line)}")
    return word == "+OK", line


async def pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    ok, line = await _status(reader)
    if not ok:
        raise refused(PROTO, "greeting", shown(line))

    await send(writer, b"CAPA\r\n", PROTO)
    ok, line = await _status(reader)
    if ok:  # a CAPA list ends with "."; without STLS there is no point asking
        capabilities = await read_lines(reader, PROTO, lambda line: line == ".")
        if not any(c.split(" ", 1)[0].upper() == "STLS" for c in capabilities[:-1]):
            raise refused(PROTO, "STLS not in the capabilities", shown(" ".join(capabilities[:-1])))
    # -ERR: an RFC 1939 server without CAPA; STLS may still work, so try it.

    await send(writer, b"STLS\r\n", PROTO)
    ok, line = await _status(reader)
    if not ok:
        raise refused(PROTO, "STLS refused", shown(line))
