"""A TCP tunnel to a target through a proxy: HTTP CONNECT or SOCKS5 (RFC 1928, RFC 1929).

``open_tunnel`` returns a stream pair already connected to the target, as ``asyncio.open_connection``
would: STARTTLS dialogues and the TLS handshake then run over it unchanged. The target's name is
sent to the proxy, which resolves it (no local DNS for the target). Every read is bounded in size
and every wait draws on the probe's ``Deadline``: a silent proxy costs a timeout, never more.
Failures raise ``ProxyError`` (outcome ``network_error``) whose detail names the proxy's answer.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import struct

from exporter.support.deadline import Deadline
from exporter.support.errors import Outcome, ProbeError
from exporter.support.proxyurl import ProxyScheme, ProxyURL

MAX_HEADER_LINE = 4096  # one line of the proxy's answer to CONNECT
MAX_HEADER_BYTES = 16 * 1024  # the whole answer head
MAX_HEADER_LINES = 100

# RFC 1928 section 6 reply codes.
SOCKS_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused by the target",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ProxyError(ProbeError):
    """The proxy could not be reached, or refused or failed to open the tunnel."""

    outcome = Outcome.NETWORK_ERROR


def target_authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def basic_credentials(proxy: ProxyURL) -> str:
    token = f"{proxy.username}:{proxy.password or ''}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


async def connect_proxy(proxy: ProxyURL, deadline: Deadline) -> Stream:
    """A plain TCP connection to the proxy itself (its name, if any, resolved locally)."""
    try:
        return await deadline.run(asyncio.open_connection(proxy.host, proxy.port))
    except TimeoutError:
        raise
    except OSError as exc:
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc))
        raise ProxyError(f"proxy {proxy.address} unreachable: {reason}") from None


async def open_tunnel(proxy: ProxyURL, host: str, port: int, deadline: Deadline) -> Stream:
    """A stream to ``host:port`` through ``proxy``; TimeoutError when the deadline runs out."""
    reader, writer = await connect_proxy(proxy, deadline)
    try:
        if proxy.scheme is ProxyScheme.HTTP:
            await deadline.run(_connect(proxy, reader, writer, host, port))
        else:
            await deadline.run(_socks5(proxy, reader, writer, host, port))
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer


# ---- HTTP CONNECT (RFC 9110 9.3.6) ----------------------------------------------------------


async def _connect(
    proxy: ProxyURL, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    authority = target_authority(host, port)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", "User-Agent: tls-exporter"]
    if proxy.username is not None:
        lines.append(f"Proxy-Authorization: {basic_credentials(proxy)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await read_head(reader, f"proxy {proxy.address}")
    status = parse_status(head[0], f"proxy {proxy.address}")
    if not 200 <= status[0] < 300:
        raise ProxyError(f"proxy refused CONNECT: {status[0]} {status[1]}".rstrip())


async def read_head(reader: asyncio.StreamReader, who: str) -> list[str]:
    """An HTTP response head (status line and headers), bounded; the body stays unread."""
    lines: list[str] = []
    size = 0
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise ProxyError(f"{who} sent a header line longer than {MAX_HEADER_LINE} bytes") from None
        except asyncio.IncompleteReadError as exc:
            if not lines and not exc.partial:
                raise ProxyError(f"{who} closed the connection without an answer") from None
            raise ProxyError(f"{who} closed the connection in the middle of its answer") from None
        except ConnectionError as exc:
            raise ProxyError(f"{who} dropped the connection: {exc}") from None
        if len(raw) > MAX_HEADER_LINE:
            raise ProxyError(f"{who} sent a header line longer than {MAX_HEADER_LINE} bytes")
        size += len(raw)
        if size > MAX_HEADER_BYTES or len(lines) >= MAX_HEADER_LINES:
            raise ProxyError(f"{who} sent an answer head over {MAX_HEADER_BYTES} bytes or {MAX_HEADER_LINES} lines")
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            if not lines:  # tolerate empty lines before the status line (RFC 9112 2.2), bounded as well
                continue
            return lines
        lines.append(line)


def parse_status(line: str, who: str) -> tuple[int, str]:
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProxyError(f"{who} did not answer in HTTP: {line[:80]!r}")
    return int(code), reason.strip()


# ---- SOCKS5 ---------------------------------------------------------------------------------


async def _socks5(
    proxy: ProxyURL, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    who = f"SOCKS5 proxy {proxy.address}"
    methods = b"\x00\x02" if proxy.username is not None else b"\x00"
    writer.write(bytes([5, len(methods)]) + methods)
    version, method = await _exactly(reader, 2, who)
    if version != 5:
        raise ProxyError(f"{who} is not a SOCKS5 server (version byte {version})")
    if method == 0xFF:
        wanted = "no acceptable method: it wants credentials" if proxy.username is None else "no acceptable method"
        raise ProxyError(f"{who}: {wanted}")
    if method == 2 and proxy.username is not None:
        user, password = proxy.username.encode(), (proxy.password or "").encode()
        writer.write(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
        _, status = await _exactly(reader, 2, who)
        if status != 0:
            raise ProxyError(f"{who}: user name or password refused")
    elif method != 0:
        raise ProxyError(f"{who} chose an authentication method it was not offered ({method})")
    writer.write(b"\x05\x01\x00" + _socks_address(host) + struct.pack("!H", port))
    version, rep, _, atyp = await _exactly(reader, 4, who)
    if version != 5:
        raise ProxyError(f"{who} sent a malformed reply (version byte {version})")
    if rep != 0:
        reason = SOCKS_REPLIES.get(rep, "unknown error")
        raise ProxyError(f"SOCKS5 proxy: {reason} (rep {rep})")
    # The bound address is of no use to us, but it must be read off the stream.
    if atyp == 1:
        await _exactly(reader, 4 + 2, who)
    elif atyp == 4:
        await _exactly(reader, 16 + 2, who)
    elif atyp == 3:
        (length,) = await _exactly(reader, 1, who)
        await _exactly(reader, length + 2, who)
    else:
        raise ProxyError(f"{who} sent an unknown address type ({atyp})")


def _socks_address(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        if not 0 < len(name) <= 255:
            raise ProxyError(f"target name too long for SOCKS5: {host[:80]}") from None
        return b"\x03" + bytes([len(name)]) + name  # the proxy resolves it
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed


async def _exactly(reader: asyncio.StreamReader, n: int, who: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise ProxyError(f"{who} closed the connection during the SOCKS5 negotiation") from None
    except ConnectionError as exc:
        raise ProxyError(f"{who} dropped the connection: {exc}") from None
