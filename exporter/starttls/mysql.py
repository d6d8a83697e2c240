"""MySQL / MariaDB: read the protocol-10 greeting, answer with an SSLRequest packet.

Packets are <length:3 LE><sequence:1><payload>. The server speaks first; TLS starts right
after our SSLRequest, without a reply.
"""

from __future__ import annotations

import asyncio
import struct

from exporter.starttls.base import read_exactly, send, shown
from exporter.support.errors import NotTLS, StartTLSUnsupported

PROTO = "MySQL"
MAX_GREETING = 4096  # a greeting is about 100 bytes; a length above this is not MySQL
CLIENT_SSL = 0x0800
# LONG_PASSWORD | LONG_FLAG | PROTOCOL_41 | SSL | SECURE_CONNECTION | PLUGIN_AUTH, as real clients send
CLIENT_CAPS = 0x0001 | 0x0004 | 0x0200 | CLIENT_SSL | 0x8000 | 0x80000
MAX_PACKET = 16 * 1024 * 1024
CHARSET_UTF8 = 0x21


def _error(payload: bytes) -> str:
    """An ERR packet: 0xff, code:2, then optionally '#' and a 5-char SQL state, then the message."""
    code = int.from_bytes(payload[1:3], "little")
    message = payload[9:] if payload[3:4] == b"#" else payload[3:]
    return f"error {code}: {message.decode('utf-8', 'replace')}"


def _capabilities(payload: bytes) -> tuple[str, int]:
    """Server version and capability flags of a protocol-10 greeting."""
    end = payload.find(b"\x00", 1)
    pos = end + 1 + 4 + 8 + 1  # version NUL, connection id, auth data part 1, filler
    if end < 0 or len(payload) < pos + 2:
        raise NotTLS(f"{PROTO}: truncated server greeting")
    version = payload[1:end].decode("latin-1")
    caps = int.from_bytes(payload[pos : pos + 2], "little")
    if len(payload) >= pos + 7:  # charset:1, status:2, then the upper 16 capability bits
        caps |= int.from_bytes(payload[pos + 5 : pos + 7], "little") << 16
    return version, caps


async def mysql(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    header = await read_exactly(reader, 4, PROTO)
    length, sequence = int.from_bytes(header[:3], "little"), header[3]
    if not 0 < length <= MAX_GREETING:
        raise NotTLS(f"{PROTO}: not a MySQL greeting: {shown(header)}")
    payload = await read_exactly(reader, length, PROTO)
    if payload[0] == 0xFF:  # e.g. 1130 host not allowed, 1040 too many connections
        raise StartTLSUnsupported(f"{PROTO}: server refused the connection: {shown(_error(payload))}")
    if payload[0] != 0x0A:
        raise NotTLS(f"{PROTO}: unsupported protocol version {payload[0]}")
    version, caps = _capabilities(payload)
    if not caps & CLIENT_SSL:
        raise StartTLSUnsupported(f"{PROTO}: server {shown(version)} does not offer SSL (no CLIENT_SSL)")
    request = struct.pack("<IIB23x", CLIENT_CAPS, MAX_PACKET, CHARSET_UTF8)
    await send(writer, len(request).to_bytes(3, "little") + bytes([(sequence + 1) & 0xFF]) + request, PROTO)
