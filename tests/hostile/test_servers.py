"""Hostile servers: each costs one bounded probe with the outcome that names it, never the exporter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from helpers import parse, states
from pki import PKI

from exporter.web.handlers import MAX_CONCURRENT_PROBES
from hostile.kit import HostileServers, context, leaf

SCRAPE = {"X-Prometheus-Scrape-Timeout-Seconds": "2"}  # each probe gets 1.5 s


async def _probe(client, port: int, protocol: str = "tls") -> dict[str, float]:  # type: ignore[no-untyped-def]
    resp = await client.get(
        "/probe",
        params={"target": f"127.0.0.1:{port}", "protocol": protocol, "server_name": "localhost"},
        headers=SCRAPE,
    )
    assert resp.status == 200
    return parse(await resp.text())


@pytest.mark.parametrize(
    ("server", "protocol", "outcome"),
    [
        ("silent", "tls", "handshake_timeout"),
        ("silent", "smtp", "handshake_timeout"),
        ("drip", "smtp", "handshake_timeout"),
        ("garbage", "tls", "not_tls"),
        ("endless_lines", "smtp", "not_tls"),
        ("reset", "tls", "network_error handshake_failed"),  # reset before or after the ClientHello
    ],
)
async def test_misbehaving_server_costs_one_bounded_probe(
    make_client, hostile: HostileServers, server: str, protocol: str, outcome: str
) -> None:
    port = getattr(hostile, server)()
    _, client = await make_client("probe: {allow: ['127.0.0.0/8']}\n")
    s = await _probe(client, port, protocol)
    [seen] = [k for k, v in states(s, "tls_handshake_outcome", "outcome").items() if v == 1]
    assert seen in outcome.split()
    assert (await client.get("/-/healthy")).status == 200


@pytest.mark.parametrize("shape", ["10,000 names", "300 intermediates"])
async def test_oversized_certificate_messages_are_a_bounded_failure(
    make_client, hostile: HostileServers, pki: PKI, tmp_path: Path, shape: str
) -> None:
    # Either makes a certificate message of 200 KB, over OpenSSL's limit for one.
    if shape == "10,000 names":
        cert, key = leaf(pki, sans=("localhost", *(f"n{i}.example" for i in range(10_000))))
        chain = [pki.intermediate.cert]
    else:
        cert, key = leaf(pki)
        chain = [pki.intermediate.cert] * 300
    port = hostile.serving(context(cert, key, chain, tmp_path))
    _, client = await make_client("probe: {allow: ['127.0.0.0/8']}\n")
    resp = await client.get(
        "/probe", params={"target": f"127.0.0.1:{port}", "protocol": "tls", "debug": "1"}, headers=SCRAPE
    )
    text = await resp.text()
    assert "handshake_failed: handshake failed: excessive message size" in text
    assert 'tls_handshake_outcome{outcome="handshake_failed"} 1.0' in text
    assert (await client.get("/-/healthy")).status == 200


async def test_evil_subject_bytes_are_escaped_in_the_exposition(
    make_client, hostile: HostileServers, pki: PKI, tmp_path: Path
) -> None:
    cert, key = leaf(pki, cn='evil\x1b[2J\n"x"\\')
    port = hostile.serving(context(cert, key, [pki.intermediate.cert], tmp_path))
    _, client = await make_client(
        f"probe: {{allow: ['127.0.0.0/8']}}\nprofiles: {{default: {{trust: '{pki.root.cert_path}'}}}}\n"
    )
    s = await _probe(client, port)
    assert [k for k, v in states(s, "tls_handshake_outcome", "outcome").items() if v == 1] == ["certificate_found"]
    [(labels, _)] = s["tls_cert_info"]
    # Escaped on the wire (\n, \", \\), read back intact by Prometheus' parser: no line is forged.
    assert labels["subject"] == cert.subject.rfc4514_string()


async def test_probe_flood_is_capped_with_503(make_client, hostile: HostileServers) -> None:
    port = hostile.silent()
    _, client = await make_client("probe: {allow: ['127.0.0.0/8']}\n")
    url = client.make_url("/probe")
    params = {"target": f"127.0.0.1:{port}", "protocol": "tls"}
    # No client-side connection limit: all 150 requests reach the exporter at once.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> int:
            async with session.get(url, params=params, headers=SCRAPE) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(one() for _ in range(150)))
    assert statuses.count(200) == MAX_CONCURRENT_PROBES  # each a bounded handshake_timeout
    assert statuses.count(503) == 150 - MAX_CONCURRENT_PROBES
    assert (await client.get("/-/healthy")).status == 200
