from __future__ import annotations

import ssl
import struct
from pathlib import Path

from certs.posture_kit import OpenSSLServer, ocsp_response, opener
from pki import PKI
from servers import LoopbackServers, closed_port

from exporter.support.deadline import Deadline
from exporter.tls import hello


def _accepted(results: tuple[hello.HelloResult, ...]) -> dict[str, bool | None]:
    return {r.version: r.accepted for r in results}


def _tls13_only(pki: PKI) -> ssl.SSLContext:
    ctx = pki["good"].server_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def test_client_hello_bytes() -> None:
    record = hello.client_hello("TLSv1.3", "good.test")
    kind, record_version, length = struct.unpack("!BHH", record[:5])
    assert (kind, record_version, length, record[5]) == (0x16, 0x0301, len(record) - 5, 1)
    assert record[9:11] == b"\x03\x03"  # legacy_version; 1.3 is in supported_versions
    assert b"good.test" in record and b"\x00\x2b\x00\x03\x02\x03\x04" in record
    ssl3 = hello.client_hello("SSLv3", "good.test")
    assert ssl3[1:3] == b"\x03\x00" and b"good.test" not in ssl3  # no extensions in SSL 3.0
    assert b"127.0.0.1" not in hello.client_hello("TLSv1.2", "127.0.0.1")  # no SNI for IP literals
    assert len(hello.client_hello("TLSv1.2", "x" * 60, status_request=True)) < 512


async def test_tls13_only_server(pki: PKI, servers: LoopbackServers) -> None:
    port = servers.tls(_tls13_only(pki))
    results = await hello.scan(opener(port), "localhost", timeout=5)
    assert _accepted(results) == {"SSLv3": False, "TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": False, "TLSv1.3": True}
    by = {r.version: r for r in results}
    assert by["TLSv1.3"].server_version == "TLSv1.3"
    assert by["TLSv1.3"].suite in (0x1301, 0x1302, 0x1303)
    assert by["TLSv1.2"].server_version is None  # refused (asyncio's server closes without flushing its alert)


async def test_modern_server_tls12_details(pki: PKI, servers: LoopbackServers) -> None:
    port = servers.tls(pki["good"].server_context())
    results = await hello.scan(opener(port), "localhost", versions=("TLSv1.1", "TLSv1.2", "TLSv1.3"), timeout=5)
    assert _accepted(results) == {"TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
    tls12 = results[1]
    info = tls12.suite_info
    assert info is not None and info.kx == "ECDHE" and info.name.startswith("ECDHE-ECDSA-")
    assert tls12.key_exchange == ("ECDHE", 253)  # x25519, read from ServerKeyExchange
    assert tls12.staple is None  # the stdlib server never staples


async def test_tls10_only_openssl_server(pki: PKI, tmp_path: Path) -> None:
    with OpenSSLServer(pki["good-rsa"], "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0", workdir=tmp_path) as server:
        results = await hello.scan(opener(server.port), "localhost", timeout=5)
    by = {r.version: r for r in results}
    assert _accepted(results) == {"SSLv3": False, "TLSv1.0": True, "TLSv1.1": False, "TLSv1.2": False, "TLSv1.3": False}
    assert by["TLSv1.2"].detail == "downgraded to TLSv1.0"
    assert by["TLSv1.0"].key_exchange is not None and by["TLSv1.0"].key_exchange[0] in ("ECDHE", "DHE")


async def test_tls12_staple_is_returned(pki: PKI, tmp_path: Path) -> None:
    good = pki["good"]
    staple = ocsp_response(good.cert, pki.intermediate, "good")
    (tmp_path / "staple.der").write_bytes(staple)
    args = ("-tls1_2", "-status_file", str(tmp_path / "staple.der"))
    with OpenSSLServer(good, *args, workdir=tmp_path) as server:
        results = await hello.scan(opener(server.port), "localhost", versions=("TLSv1.2",), timeout=5)
    assert results[0].accepted is True
    assert results[0].staple == staple


async def test_alert_close_silence_garbage_and_refusal(servers: LoopbackServers) -> None:
    alert = await hello.scan(opener(servers.alert()), "x", versions=("TLSv1.2",), timeout=5)
    assert (alert[0].accepted, alert[0].alert, alert[0].detail) == (False, 40, "alert 40")
    silent = await hello.scan(opener(servers.silent()), "x", versions=("TLSv1.2",), timeout=0.3)
    assert (silent[0].accepted, silent[0].detail) == (None, "no answer within 0.3s")
    http = await hello.scan(opener(servers.plain_http()), "x", versions=("TLSv1.0",), timeout=5)
    assert http[0].accepted is False and http[0].detail.startswith("not a TLS record")
    refused = await hello.scan(opener(closed_port()), "x", versions=("TLSv1.3",), timeout=5)
    assert refused[0].accepted is None and refused[0].detail.startswith("connect: ConnectionRefusedError")


async def test_a_silent_server_costs_one_scan_deadline(servers: LoopbackServers) -> None:
    """Each hello waits up to its timeout (1 s); the scan's own deadline (2 s) ends it: the first two
    versions time out, the rest are unknown without a connection, never 5 x 2 timeouts."""
    port = servers.silent()
    results = await hello.scan(opener(port), "localhost", timeout=1.0, deadline=Deadline(2.0))
    assert [r.version for r in results] == list(hello.VERSIONS)
    assert all(r.accepted is None for r in results)
    assert [r.detail for r in results[2:]] == ["scan deadline passed"] * 3
