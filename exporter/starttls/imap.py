"""IMAP: STARTTLS once the capabilities list it (RFC 3501 6.2.1)."""

from __future__ import annotations

import asyncio
import re

from exporter.starttls.base import read_line, read_lines, refused, send, shown
from exporter.support.errors import NotTLS

PROTO = "IMAP"
_GREETING_CAPS = re.compile(r"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)


async def _tagged(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tag: str, cmd: str) -> list[str]:
    """Send a tagged command; return the untagged lines then the tagged status line."""
    await send(writer, f"{tag} {cmd}\r\n".encode("ascii"), PROTO)

    def last(line: str) -> bool:
        if line.startswith(f"{tag} "):
            return True
        if not line.startswith(("* ", "+ ")):
            raise NotTLS(f"{PROTO}: not an IMAP response: {shown(line)}")
        return False

    return await read_lines(reader, PROTO, last)


def _ok(status_line: str) -> bool:
    return status_line.upper().split(" ", 2)[1:2] == ["OK"]


async def imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str) -> None:
    greeting = await read_line(reader, PROTO)
    status = greeting.upper().split(" ", 2)[:2]
    if status in (["*", "BYE"], ["*", "PREAUTH"]):  # refused, or already past the state STARTTLS needs
        raise refused(PROTO, "greeting", shown(greeting))
    if status != ["*", "OK"]:
        raise NotTLS(f"{PROTO}: not an IMAP greeting: {shown(greeting)}")

    # Servers usually list their capabilities in the greeting; ask only when they do not.
    match = _GREETING_CAPS.search(greeting)
    if match:
        capabilities = match.group(1).upper().split()
    else:
        lines = await _tagged(reader, writer, "a1", "CAPABILITY")
        if not _ok(lines[-1]):
            raise refused(PROTO, "CAPABILITY refused", shown(lines[-1]))
        listed = [line.upper().split()[2:] for line in lines if line.upper().startswith("* CAPABILITY ")]
        capabilities = [c for words in listed for c in words]
    if "STARTTLS" not in capabilities:
        raise refused(PROTO, "STARTTLS not in the capabilities", shown(" ".join(capabilities)))

    lines = await _tagged(reader, writer, "a2", "STARTTLS")
    if not _ok(lines[-1]):
        raise refused(PROTO, "STARTTLS refused", shown(lines[-1]))
