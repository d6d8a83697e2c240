"""The tunnel (HTTP CONNECT, SOCKS5) and the proxied HTTP fetch against scripted proxies on loopback:
exact bytes on the wire, and every hostile answer (refusal, garbage, floods, silence, a close)."""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Awaitable, Callable

import pytest
from servers import LoopbackServers, closed_port

from exporter.judge.proxyfetch import ProxyFetchError, request
from exporter.support.deadline import Deadline
from exporter.support.proxyurl import parse_proxy_url
from exporter.tls.proxy import ProxyError, open_tunnel

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def scripted(servers: LoopbackServers, script: Script, seen: list[bytes]) -> int:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
            await writer.drain()
            # Keep the connection open until the client is done (what it sent is recorded).
            while data := await reader.read(4096):
                seen.append(data)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return servers.start(handler)


async def head(reader: asyncio.StreamReader, seen: list[bytes]) -> None:
    seen.append(await reader.readuntil(b"\r\n\r\n"))


async def tunnel(url: str, host: str = "target.example", port: int = 25, seconds: float = 5) -> bytes:
    """Open the tunnel and read what the 'target' (the script) sent first."""
    reader, writer = await open_tunnel(parse_proxy_url(url), host, port, Deadline(seconds))
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    finally:
        writer.close()


# ---- HTTP CONNECT ---------------------------------------------------------------------------


async def test_connect_sends_the_authority_and_credentials(servers: LoopbackServers) -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader, seen)
        # The target's banner arrives in the same segment as the proxy's answer: it must not be lost.
        writer.write(b"HTTP/1.1 200 Connection established\r\nX-A: b\r\n\r\n220 banner\r\n")

    port = scripted(servers, script, seen)
    first = await tunnel(f"http://us%40er:p%3Ass@127.0.0.1:{port}", "mail.example", 587)
    assert first == b"220 banner\r\n"
    token = base64.b64encode(b"us@er:p:ss").decode()
    assert seen[0] == (
        b"CONNECT mail.example:587 HTTP/1.1\r\nHost: mail.example:587\r\nUser-Agent: tls-exporter\r\n"
        + f"Proxy-Authorization: Basic {token}\r\n\r\n".encode()
    )


async def test_connect_to_an_ipv6_target(servers: LoopbackServers) -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader, seen)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nhello")

    port = scripted(servers, script, seen)
    assert await tunnel(f"http://127.0.0.1:{port}", "2001:db8::1", 443) == b"hello"
    assert seen[0].startswith(b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n")


HOSTILE_CONNECT: list[tuple[str, bytes, str]] = [
    ("refused", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "proxy refused CONNECT: 403 Forbidden"),
    ("auth", b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "proxy refused CONNECT: 407 Proxy Auth"),
    ("garbage", b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "did not answer in HTTP: 'SSH-2.0-OpenSSH_9.2'"),
    ("endless", b"HTTP/1.1 200 OK\r\n" + b"X-Flood: yes\r\n" * 5000, "answer head over 16384 bytes or 100 lines"),
    ("blank lines", b"\r\n" * 9000, "answer head over 16384 bytes or 100 lines"),
    ("long line", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000, "header line longer than 4096 bytes"),
    ("closed", b"", "closed the connection without an answer"),
    ("cut", b"HTTP/1.1 200 OK\r\nX-Partial", "closed the connection in the middle of its answer"),
]


@pytest.mark.parametrize(("case", "answer", "detail"), HOSTILE_CONNECT, ids=[c[0] for c in HOSTILE_CONNECT])
async def test_connect_failures(servers: LoopbackServers, case: str, answer: bytes, detail: str) -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader, seen)
        writer.write(answer)
        if case in ("closed", "cut"):
            await writer.drain()
            writer.close()

    port = scripted(servers, script, seen)
    with pytest.raises(ProxyError) as failed:
        await tunnel(f"http://127.0.0.1:{port}")
    assert detail in failed.value.detail
    assert failed.value.outcome.value == "network_error"


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_silent_proxy_is_a_timeout(servers: LoopbackServers, scheme: str) -> None:
    with pytest.raises(TimeoutError):
        await tunnel(f"{scheme}://127.0.0.1:{servers.silent()}", seconds=0.3)


# ---- SOCKS5 ---------------------------------------------------------------------------------


def socks_script(
    seen: list[bytes], *, method: int = 0, auth_status: int = 0, reply: bytes, close: bool = False
) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeting = await reader.readexactly(2)
        seen.append(greeting + await reader.readexactly(greeting[1]))
        writer.write(bytes([5, method]))
        if method == 0xFF:
            return
        if method == 2:
            version, ulen = await reader.readexactly(2)
            user = await reader.readexactly(ulen)
            (plen,) = await reader.readexactly(1)
            seen.append(bytes([version, ulen]) + user + bytes([plen]) + await reader.readexactly(plen))
            writer.write(bytes([1, auth_status]))
            if auth_status:
                return
        request = await reader.readexactly(4)
        if request[3] == 3:
            (n,) = await reader.readexactly(1)
            request += bytes([n]) + await reader.readexactly(n + 2)
        else:
            request += await reader.readexactly((4 if request[3] == 1 else 16) + 2)
        seen.append(request)
        writer.write(reply)
        if close:
            await writer.drain()
            writer.close()

    return script


OK_V4 = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\xd2"
OK_V6 = b"\x05\x00\x00\x04" + bytes(15) + b"\x01" + b"\x04\xd2"
OK_NAME = b"\x05\x00\x00\x03\x09localhost\x04\xd2"


@pytest.mark.parametrize("reply", [OK_V4, OK_V6, OK_NAME], ids=["bound-v4", "bound-v6", "bound-name"])
async def test_socks5_sends_the_name_and_reads_any_bound_address(servers: LoopbackServers, reply: bytes) -> None:
    seen: list[bytes] = []
    port = scripted(servers, socks_script(seen, reply=reply + b"220 banner\r\n"), seen)
    assert await tunnel(f"socks5://127.0.0.1:{port}", "mail.example", 25) == b"220 banner\r\n"
    assert seen[:2] == [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0cmail.example\x00\x19"]


@pytest.mark.parametrize(
    ("host", "wire"),
    [("192.0.2.7", b"\x01\xc0\x00\x02\x07"), ("2001:db8::1", b"\x04" + bytes.fromhex("20010db8" + "0" * 22 + "01"))],
)
async def test_socks5_ip_targets(servers: LoopbackServers, host: str, wire: bytes) -> None:
    seen: list[bytes] = []
    port = scripted(servers, socks_script(seen, reply=OK_V4 + b"x"), seen)
    assert await tunnel(f"socks5://127.0.0.1:{port}", host, 443) == b"x"
    assert seen[1] == b"\x05\x01\x00" + wire + struct.pack("!H", 443)


async def test_socks5_username_and_password(servers: LoopbackServers) -> None:
    seen: list[bytes] = []
    port = scripted(servers, socks_script(seen, method=2, reply=OK_V4 + b"x"), seen)
    assert await tunnel(f"socks5://alice:s%40fe@127.0.0.1:{port}") == b"x"
    assert seen[:2] == [b"\x05\x02\x00\x02", b"\x01\x05alice\x04s@fe"]


@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("rep 2", "SOCKS5 proxy: connection not allowed by ruleset (rep 2)"),
        ("rep 5", "SOCKS5 proxy: connection refused by the target (rep 5)"),
        ("rep 99", "SOCKS5 proxy: unknown error (rep 99)"),
        ("auth refused", "user name or password refused"),
        ("no method", "no acceptable method: it wants credentials"),
        ("not socks", "is not a SOCKS5 server (version byte 72)"),
        ("bad address type", "sent an unknown address type (9)"),
        ("cut", "closed the connection during the SOCKS5 negotiation"),
    ],
)
async def test_socks5_failures(servers: LoopbackServers, case: str, detail: str) -> None:
    seen: list[bytes] = []
    url = "socks5://127.0.0.1:{port}"
    script: Script
    if case.startswith("rep"):
        script = socks_script(seen, reply=bytes([5, int(case[4:]), 0, 1]) + bytes(6))
    elif case == "auth refused":
        script, url = socks_script(seen, method=2, auth_status=1, reply=b""), "socks5://a:b@127.0.0.1:{port}"
    elif case == "no method":
        script = socks_script(seen, method=0xFF, reply=b"")
    elif case == "bad address type":
        script = socks_script(seen, reply=b"\x05\x00\x00\x09")
    elif case == "cut":
        script = socks_script(seen, reply=b"\x05\x00\x00\x01\x7f", close=True)
    else:

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(3)
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    port = scripted(servers, script, seen)
    with pytest.raises(ProxyError) as failed:
        await tunnel(url.format(port=port))
    assert detail in failed.value.detail


async def test_unreachable_proxy() -> None:
    port = closed_port()
    with pytest.raises(ProxyError) as failed:
        await tunnel(f"socks5://127.0.0.1:{port}")
    assert failed.value.detail == f"proxy 127.0.0.1:{port} unreachable: connection refused"


# ---- HTTP requests through a proxy (OCSP, CRL, AIA fetches) --------------------------------


def http_proxy(servers: LoopbackServers, answer: bytes, seen: list[bytes]) -> int:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader, seen)
        writer.write(answer)
        await writer.drain()
        writer.close()

    return scripted(servers, script, seen)


async def test_fetch_in_absolute_form_with_chunked_body(servers: LoopbackServers) -> None:
    seen: list[bytes] = []
    body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    port = http_proxy(servers, body, seen)
    status, data = await request(
        parse_proxy_url(f"http://u:p@127.0.0.1:{port}"),
        "GET",
        "http://ocsp.example:8080/path/abc?x=1",
        data=None,
        headers={},
        limit=100,
        timeout=5,
    )
    assert (status, data) == (200, b"hello world")
    assert seen[0] == (
        b"GET http://ocsp.example:8080/path/abc?x=1 HTTP/1.1\r\nHost: ocsp.example:8080\r\n"
        b"User-Agent: tls-exporter\r\nConnection: close\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", (200, b"abc")),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil close", (200, b"until close")),
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nabc", (502, b"")),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "1000 bytes, over the 100 byte cap"),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101, "over the 100 byte cap"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", "over the 100 byte cap"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size b'zz'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "connection lost"),
    ],
)
async def test_fetch_answers(servers: LoopbackServers, answer: bytes, expected: object) -> None:
    port = http_proxy(servers, answer, [])
    proxy = parse_proxy_url(f"http://127.0.0.1:{port}")
    call = request(proxy, "GET", "http://ocsp.example/x", data=None, headers={}, limit=100, timeout=5)
    if isinstance(expected, tuple):
        assert await call == expected
        return
    with pytest.raises(ProxyFetchError) as failed:
        await call
    assert str(expected) in str(failed.value)


async def test_fetch_post_through_socks5(servers: LoopbackServers) -> None:
    seen: list[bytes] = []
    socks = socks_script(seen, reply=OK_V4)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await socks(reader, writer)
        await head(reader, seen)
        seen.append(await reader.readexactly(2))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    port = scripted(servers, script, seen)
    status, data = await request(
        parse_proxy_url(f"socks5://127.0.0.1:{port}"),
        "POST",
        "http://ocsp.example/",
        data=b"\x30\x03",
        headers={"Content-Type": "application/ocsp-request"},
        limit=100,
        timeout=5,
    )
    assert (status, data) == (200, b"ok")
    assert seen[1] == b"\x05\x01\x00\x03\x0cocsp.example\x00\x50"
    assert b"".join(seen[2:]) == (
        b"POST / HTTP/1.1\r\nHost: ocsp.example\r\nUser-Agent: tls-exporter\r\nConnection: close\r\n"
        b"Content-Type: application/ocsp-request\r\nContent-Length: 2\r\n\r\n\x30\x03"
    )


async def test_fetch_through_a_silent_proxy_times_out(servers: LoopbackServers) -> None:
    proxy = parse_proxy_url(f"http://127.0.0.1:{servers.silent()}")
    with pytest.raises(ProxyFetchError, match=r"timed out after 0\.3s"):
        await request(proxy, "GET", "http://ocsp.example/x", data=None, headers={}, limit=100, timeout=0.3)
