"""What every STARTTLS dialogue shares: the negotiator signature, bounded readers, errors.

A negotiator runs the plaintext part of a protocol on an open connection and returns once the
server said "go ahead"; the caller then drops what is buffered and starts TLS. The caller bounds
the time, so nothing here has a timeout, but nothing here reads without a size bound either.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from exporter.support.errors import NotTLS, Outcome, ProbeError, StartTLSUnsupported

MAX_LINE = 4096  # bytes of one reply line (SMTP allows 512; generous, still small)
MAX_LINES = 100  # lines of one multi-line reply
MAX_REPLY = 64 * 1024  # bytes of one reply, whatever its shape

_CODED = re.compile(r"(\d{3})(?:[ -]|$)")


class Negotiator(Protocol):
    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None: ...


def closed(proto: str) -> ProbeError:
    return ProbeError(f"server closed the connection during the {proto} dialogue", Outcome.NETWORK_ERROR)


def shown(data: str | bytes, limit: int = 120) -> str:
    """A server's words, cut short and quoted, for an error detail."""
    return repr(data[:limit]) + ("..." if len(data) > limit else "")


def discard_buffered(reader: asyncio.StreamReader) -> int:
    """Drop bytes the server sent after its go-ahead (RFC 3207 4.2) and return how many.

    They arrived in plaintext before the handshake, so they are either a broken server or an
    injection attempt; they must never be read as if TLS protected them.
    """
    buffer: bytearray = reader._buffer  # type: ignore[attr-defined]  # no public API; stable since 3.4
    count = len(buffer)
    buffer.clear()
    return count


async def send(writer: asyncio.StreamWriter, data: bytes, proto: str) -> None:
    writer.write(data)
    try:
        await writer.drain()
    except ConnectionError as exc:
        raise closed(proto) from exc


async def read_exactly(reader: asyncio.StreamReader, n: int, proto: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise closed(proto) from exc


async def read_line(reader: asyncio.StreamReader, proto: str) -> str:
    """One line without its CRLF; memory stays within the reader's limit (64 KiB by default)."""
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise NotTLS(f"{proto}: reply line longer than {MAX_LINE} bytes") from exc
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise closed(proto) from exc
    if len(raw) > MAX_LINE:
        raise NotTLS(f"{proto}: reply line longer than {MAX_LINE} bytes")
    return raw.decode("latin-1").rstrip("\r\n")


async def read_lines(reader: asyncio.StreamReader, proto: str, last: Callable[[str], bool]) -> list[str]:
    """Lines up to and including the first one ``last`` accepts, at most MAX_LINES / MAX_REPLY."""
    lines: list[str] = []
    size = 0
    while True:
        line = await read_line(reader, proto)
        lines.append(line)
        size += len(line)
        if last(line):
            return lines
        if len(lines) >= MAX_LINES or size > MAX_REPLY:
            raise NotTLS(f"{proto}: reply longer than {MAX_LINES} lines or {MAX_REPLY} bytes")


@dataclass(frozen=True, slots=True)
class Reply:
    """A numbered reply (SMTP, LMTP, FTP): its code and every line as the server wrote it."""

    code: int
    lines: list[str]

    def __str__(self) -> str:
        return shown(" / ".join(self.lines))


def _code(line: str, proto: str) -> int:
    match = _CODED.match(line)
    if match is None:
        raise NotTLS(f"{proto}: not a {proto} reply: {shown(line)}")
    return int(match.group(1))


async def read_reply(reader: asyncio.StreamReader, proto: str, *, every_line_coded: bool = True) -> Reply:
    """A numbered reply, multi-line when the code is followed by '-'.

    SMTP numbers every line (RFC 5321 4.2.1); FTP numbers only the first and the last, which
    repeats the code followed by a space (RFC 959 4.2).
    """
    first = await read_line(reader, proto)
    code = _code(first, proto)
    if first[3:4] != "-":
        return Reply(code, [first])

    def last(line: str) -> bool:
        if every_line_coded:
            _code(line, proto)  # garbage inside a reply is garbage
            return line[3:4] != "-"
        return line == str(code) or line.startswith(f"{code} ")

    return Reply(code, [first, *await read_lines(reader, proto, last)])


async def command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str, proto: str, *, every_line_coded: bool = True
) -> Reply:
    """Send one command line, return the numbered reply."""
    await send(writer, line.encode("ascii") + b"\r\n", proto)
    return await read_reply(reader, proto, every_line_coded=every_line_coded)


def refused(proto: str, what: str, reply: object) -> StartTLSUnsupported:
    return StartTLSUnsupported(f"{proto}: {what}: {reply}")
