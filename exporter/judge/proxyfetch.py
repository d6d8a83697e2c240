"""One HTTP/1.1 request through a proxy, for the OCSP, CRL and AIA fetches of ``exporter.judge.fetch``.

Why not aiohttp: it cannot speak SOCKS5, and its HTTP proxy support would resolve and connect
around the fetcher's own resolver. This client is small because these fetches are: one plain
``http://`` GET or POST, ``Connection: close``, a body read whole under a byte cap.

- ``http://`` proxy: the request goes to the proxy in absolute form (``GET http://host/path``),
  as every HTTP proxy forwards plain HTTP (CONNECT is usually allowed to port 443 only);
- ``socks5://`` proxy: a tunnel to the URL's host (``exporter.tls.proxy``), then an ordinary request.

In both cases the URL's host is resolved by the proxy. Failures raise ``ProxyFetchError``.
"""

from __future__ import annotations

import asyncio
import urllib.parse

from exporter.support.deadline import Deadline
from exporter.support.proxyurl import ProxyScheme, ProxyURL
from exporter.tls.proxy import ProxyError, basic_credentials, connect_proxy, open_tunnel, parse_status, read_head

MAX_CHUNK_LINE = 1024


class ProxyFetchError(Exception):
    """The request through the proxy failed; the message says where and why."""


async def request(
    proxy: ProxyURL,
    method: str,
    url: str,
    *,
    data: bytes | None,
    headers: dict[str, str],
    limit: int,
    timeout: float,
) -> tuple[int, bytes]:
    """The status and body of ``method url`` through ``proxy``, within ``timeout`` and ``limit`` bytes."""
    deadline = Deadline(timeout)
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "", parsed.port or 80
    authority = f"[{host}]" if ":" in host else host
    if parsed.port is not None:
        authority += f":{parsed.port}"
    target = parsed.path or "/"
    if parsed.query:
        target += "?" + parsed.query
    lines = [f"Host: {authority}", "User-Agent: tls-exporter", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if data is not None:
        lines.append(f"Content-Length: {len(data)}")
    try:
        if proxy.scheme is ProxyScheme.HTTP:
            reader, writer = await connect_proxy(proxy, deadline)
            target = f"http://{authority}{target}"
            if proxy.username is not None:
                lines.append(f"Proxy-Authorization: {basic_credentials(proxy)}")
        else:
            reader, writer = await open_tunnel(proxy, host, port, deadline)
    except TimeoutError:
        raise ProxyFetchError(f"through the proxy {proxy}: timed out after {timeout:g}s") from None
    except ProxyError as exc:
        raise ProxyFetchError(exc.detail) from None
    try:
        writer.write((f"{method} {target} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in lines) + "\r\n").encode())
        if data is not None:
            writer.write(data)
        return await deadline.run(_response(reader, limit, f"proxy {proxy.address}"))
    except TimeoutError:
        raise ProxyFetchError(f"through the proxy {proxy}: timed out after {timeout:g}s") from None
    except ProxyError as exc:
        raise ProxyFetchError(exc.detail) from None
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise ProxyFetchError(f"through the proxy {proxy}: connection lost or answer malformed: {exc}") from None
    finally:
        writer.transport.abort()  # Connection: close; nothing to say politely


async def _response(reader: asyncio.StreamReader, limit: int, who: str) -> tuple[int, bytes]:
    head = await read_head(reader, who)
    status, _ = parse_status(head[0], who)
    fields: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if status != 200:
        return status, b""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return status, await _chunked(reader, limit)
    if "content-length" in fields:
        length = fields["content-length"]
        if not length.isdigit():
            raise ProxyError(f"{who}: invalid Content-Length {length[:40]!r}")
        if int(length) > limit:
            raise ProxyError(f"{int(length)} bytes, over the {limit} byte cap")
        return status, await reader.readexactly(int(length))
    body = await reader.read(limit + 1)  # until the server closes, bounded
    while body and len(body) <= limit:
        more = await reader.read(limit + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > limit:
        raise ProxyError(f"over the {limit} byte cap")
    return status, body


async def _chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\n")
        if len(line) > MAX_CHUNK_LINE:
            raise ProxyError("chunk size line too long")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProxyError(f"invalid chunk size {size_text[:20]!r}") from None
        if size == 0:
            return bytes(body)
        if len(body) + size > limit:
            raise ProxyError(f"over the {limit} byte cap")
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # the CRLF after the chunk
