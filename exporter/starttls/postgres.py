"""PostgreSQL: SSLRequest, answered by one byte (protocol docs, "SSL Session Encryption")."""

from __future__ import annotations

import asyncio
import struct

from exporter.starttls.base import read_exactly, send, shown
from exporter.support.errors import NotTLS, StartTLSUnsupported

PROTO = "PostgreSQL"
SSL_REQUEST = struct.pack("!II", 8, 80877103)  # length 8, code 1234.5679


async def postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    await send(writer, SSL_REQUEST, PROTO)
    answer = await read_exactly(reader, 1, PROTO)
    if answer == b"N":
        raise StartTLSUnsupported(f"{PROTO}: server answered N to SSLRequest (ssl is off)")
    if answer == b"E":  # a server too old for SSLRequest, or one refusing us before it
        raise StartTLSUnsupported(f"{PROTO}: server answered an error to SSLRequest")
    if answer != b"S":
        raise NotTLS(f"{PROTO}: unexpected answer to SSLRequest: {shown(answer)}")
