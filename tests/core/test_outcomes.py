"""Every handshake outcome of the contract, each produced by a real loopback listener."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from helpers import make_config, make_target
from pki import PKI
from servers import LoopbackServers, closed_port

from exporter.pipeline import Pipeline
from exporter.support.errors import Outcome


async def probe_one(
    port: int, *, host: str = "127.0.0.1", protocol: str = "tls", timeout: float = 3.0, server_name: str = "localhost"
):
    target = make_target(port, host=host, protocol=protocol, timeout=timeout, server_name=server_name)
    results = await Pipeline().probe(target, make_config(target))
    assert len(results) == 1
    return results[0]


async def test_certificate_found(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context())
    result = await probe_one(port)
    assert result.outcome is Outcome.CERTIFICATE_FOUND
    assert result.success
    assert result.report is not None
    assert result.report.leaf.serial == pki["good"].serial_hex
    assert [c.subject_cn for c in result.report.chain] == ["localhost", "Test Intermediate CA"]
    assert result.location == f"127.0.0.1:{port}"
    assert result.session is not None and result.session.version in ("TLSv1.2", "TLSv1.3")


async def test_ipv6_loopback(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context(), host="::1")
    result = await probe_one(port, host="::1")
    assert result.outcome is Outcome.CERTIFICATE_FOUND
    assert result.location == f"[::1]:{port}"


async def test_connection_refused() -> None:
    result = await probe_one(closed_port())
    assert result.outcome is Outcome.CONNECTION_REFUSED
    assert not result.success and result.report is None


async def test_handshake_timeout_on_a_silent_listener(servers: LoopbackServers) -> None:
    result = await probe_one(servers.silent(), timeout=0.5)
    assert result.outcome is Outcome.HANDSHAKE_TIMEOUT


async def test_not_tls_on_plain_http(servers: LoopbackServers) -> None:
    result = await probe_one(servers.plain_http())
    assert result.outcome is Outcome.NOT_TLS, result.detail


async def test_handshake_failed_on_an_alert(servers: LoopbackServers) -> None:
    result = await probe_one(servers.alert())
    assert result.outcome is Outcome.HANDSHAKE_FAILED, result.detail
    assert "alert handshake failure" in result.detail  # the server's alert, named


async def test_dns_error_for_an_invalid_name() -> None:
    target = make_target(443, host="no-such-host.invalid", protocol="https")
    results = await Pipeline().probe(target, make_config(target))
    assert [(r.location, r.outcome) for r in results] == [("", Outcome.DNS_ERROR)]


async def test_connect_timeout_on_a_full_backlog(servers: LoopbackServers) -> None:
    result = await probe_one(servers.full_backlog(), timeout=0.5)
    assert result.outcome is Outcome.CONNECT_TIMEOUT, result.detail


async def test_reset_mid_handshake_is_one_bounded_failure(servers: LoopbackServers) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(10)  # part of the ClientHello, then drop the connection hard
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            writer.close()

    result = await probe_one(servers.start(reset))
    assert result.outcome is Outcome.HANDSHAKE_FAILED, result.detail


@pytest.mark.parametrize("garbage", [b"\x00" * 64, b"SSH-2.0-OpenSSH_9.2\r\n", b"\x16\x03\x01\xff\xff" + b"A" * 100])
async def test_garbage_answer_is_not_tls_or_handshake_failed(servers: LoopbackServers, garbage: bytes) -> None:
    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(garbage)
            await writer.drain()
            await asyncio.sleep(0.2)
        finally:
            writer.close()

    result = await probe_one(servers.start(babble))
    assert result.outcome in (Outcome.NOT_TLS, Outcome.HANDSHAKE_FAILED), result.detail
    assert result.report is None
