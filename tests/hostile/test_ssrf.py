"""SSRF and injection: URLs named by served certificates, names that resolve where they should
not, and server names that would write into a request to the probed server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pki import PKI
from servers import Listener

from exporter.config import parse_config
from exporter.judge.fetch import FetchDenied, Fetcher, FetchError
from exporter.support.errors import ConfigError
from exporter.support.netpolicy import FetchPolicy
from hostile.kit import HostileServers, Recorder, context, leaf, settled


async def test_link_local_and_metadata_are_denied_by_default() -> None:
    fetcher = Fetcher(timeout=2)
    try:
        for url in (
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/ca.crt",
            "http://[::ffff:169.254.169.254]/x",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://100.100.100.200/latest/meta-data/",
        ):
            with pytest.raises(FetchDenied, match="denied"):
                await fetcher.ca_issuers(url, now=0.0)
        assert fetcher.requests == 0  # refused before any connection
    finally:
        await fetcher.close()


async def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    recorder = await Recorder().start()
    try:
        # localhost resolves to 127.0.0.1 (and ::1): a deny range on the address refuses the name.
        fetcher = Fetcher(timeout=2, policy=FetchPolicy.of(["*"], ["127.0.0.0/8", "::1/128"]))
        with pytest.raises(FetchDenied, match="resolves to denied"):
            await fetcher.ca_issuers(f"http://localhost:{recorder.port}/ca", now=0.0)
        await fetcher.close()
        # A glob allows the name, the ranges do not allow where it goes.
        fetcher = Fetcher(timeout=2, policy=FetchPolicy.of(["localhost", "198.51.100.0/24"], []))
        with pytest.raises(FetchDenied, match="in no allowed range"):
            await fetcher.ca_issuers(f"http://localhost:{recorder.port}/ca", now=0.0)
        await fetcher.close()
        assert recorder.hits == []
    finally:
        await recorder.stop()


async def test_probe_fetches_stay_within_probe_allow(
    make_client, hostile: HostileServers, pki: PKI, tmp_path: Path
) -> None:
    # The certificate names URLs on 127.0.0.2; /probe may reach 127.0.0.1 only.
    recorder = await Recorder(host="127.0.0.2").start()
    try:
        cert, key = leaf(pki, ca_issuers=f"{recorder.url}/ca", ocsp=f"{recorder.url}/ocsp", crl=f"{recorder.url}/crl")
        alone = hostile.serving(context(cert, key, [], tmp_path / "a"))  # no intermediate: AIA wanted
        chained = hostile.serving(context(cert, key, [pki.intermediate.cert], tmp_path / "b"))  # OCSP wanted
        root = pki.root.cert_path
        _, client = await make_client(
            f"profiles: {{default: {{trust: '{root}'}}, crl: {{trust: '{root}', revocation: crl}}}}\n"
            "probe: {allow: ['127.0.0.1/32']}\n"
        )
        texts = []
        for port, profile in ((alone, "default"), (chained, "default"), (chained, "crl")):
            params = {"target": f"127.0.0.1:{port}", "protocol": "tls", "server_name": "localhost", "debug": "1"}
            resp = await client.get("/probe", params={**params, "profile": profile})
            assert resp.status == 200
            texts.append(await resp.text())
        assert "aia: " in texts[0] and "not fetched: address 127.0.0.2 is in no allowed range (probe.allow)" in texts[0]
        assert "ocsp: leaf: " in texts[1] and "(probe.allow)" in texts[1]
        assert "crl: " in texts[2] and "(probe.allow)" in texts[2]
        assert "tls_probe_success 1.0" in texts[1]  # the probe itself stands
        assert recorder.hits == []  # nothing reached the address probe.allow does not allow
    finally:
        await recorder.stop()


async def test_probe_allow_checks_the_addresses_a_name_resolves_to(
    make_client, hostile: HostileServers, pki: PKI
) -> None:
    port = hostile.tls(pki.issue("ssrf-name").server_context())
    _, client = await make_client("probe: {allow: ['localhost', '198.51.100.0/24']}\n")
    resp = await client.get("/probe", params={"target": f"localhost:{port}", "protocol": "tls"})
    assert resp.status == 403
    assert "host 'localhost' resolves to" in await resp.text()
    _, client = await make_client("probe: {allow: ['localhost', '127.0.0.0/8', '::1/128']}\n")
    resp = await client.get("/probe", params={"target": f"localhost:{port}", "protocol": "tls"})
    assert resp.status == 200


@pytest.mark.parametrize(
    "server_name",
    [
        "2001:db8::1%eth0\r\nX-Injected: 1",
        "a.example\r\nX-Injected: 1",
        "a.example X",
        "2001:db8::1%eth0",
        "a\x1b.example",
    ],
)
async def test_server_name_is_a_dns_name_or_ip_literal(make_client, server_name: str) -> None:
    _, client = await make_client("")
    resp = await client.get("/probe", params={"target": "127.0.0.1:443", "server_name": server_name})
    assert resp.status == 400
    text = await resp.text()
    assert text.startswith("server_name: invalid server name")
    assert "\r" not in text and "\x1b" not in text  # echoed escaped
    with pytest.raises(ConfigError) as err:
        parse_config({"targets": [{"address": "127.0.0.1:443", "server_name": server_name}]}, base_dir=Path("."))
    assert err.value.errors[0].startswith("targets[0].server_name: invalid server name")


def test_address_zone_cannot_carry_crlf() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"targets": [{"address": "[2001:db8::1%eth0\r\nX: y]:443"}]}, base_dir=Path("."))
    assert err.value.errors[0].startswith("targets[0].address: invalid address")
    ok = parse_config({"targets": [{"address": "[2001:db8::1%eth0]:443"}]}, base_dir=Path("."))
    assert ok.targets[0].host == "2001:db8::1%eth0"


def test_check_escapes_control_characters(pki: PKI, tmp_path: Path) -> None:
    # A subject that would clear the screen and forge a report line.
    cert, _ = leaf(pki, cn="evil\x1b[2J\nOK https://forged 127.0.0.1:443", sans=("evil.example",))
    path = tmp_path / "evil.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert "\x1b" not in done.stdout
    assert "CN=evil\\x1b[2J\\x0aOK https://forged" in done.stdout
    assert not any(line.startswith("OK https://forged") for line in done.stdout.splitlines())


def test_fetch_section_is_validated() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"fetch": {"allow": ["*", ""], "deny": ["198.51.100.0/40"], "follow": True}}, base_dir=Path("."))
    assert err.value.errors == [
        "fetch: unknown key 'follow' (did you mean 'allow'?)",
        "fetch.allow[1]: must not be empty",
        "fetch.deny[0]: invalid CIDR range '198.51.100.0/40'",
    ]
    config = parse_config({"fetch": {"deny": ["198.51.100.0/24", "*.internal"]}}, base_dir=Path("."))
    assert config.fetch.allow == ("*",)
    assert config.fetch.deny == ("198.51.100.0/24", "*.internal")  # giving deny replaces the default


async def test_scheduled_probes_fetch_within_the_configured_policy(
    make_client, hostile: HostileServers, pki: PKI, tmp_path: Path
) -> None:
    recorder = await Recorder().start()
    try:
        cert, key = leaf(pki, ocsp=f"{recorder.url}/ocsp")
        port = hostile.serving(context(cert, key, [pki.intermediate.cert], tmp_path))
        exporter, _ = await make_client(
            "defaults: {interval: 2s, timeout: 2s}\n"
            f"profiles: {{default: {{trust: '{pki.root.cert_path}'}}}}\n"
            "fetch: {deny: ['127.0.0.0/8']}\n"
            f"targets: [{{address: '127.0.0.1:{port}', protocol: tls, server_name: localhost}}]\n"
        )
        await settled(exporter, 1)
        [(_, entries)] = exporter.store.snapshot()
        [entry] = entries.values()
        assert entry.result.report is not None and entry.result.report.assessment is not None
        assert entry.result.report.assessment.errors == {"revocation"}  # the responder could not be asked
        # The store keeps no step log: the scheduler's pipeline probes once more to show it.
        [result] = await exporter.pipeline.probe(exporter.config.targets[0], exporter.config)
        log = "\n".join(result.log)
        assert f"{recorder.url}/ocsp" in log and "not fetched: address 127.0.0.1 is denied" in log
        assert recorder.hits == []
        # A reload that lifts the deny applies to the next probes.
        config = tmp_path / "config.yml"  # the file make_client wrote
        config.write_text(config.read_text().replace("fetch: {deny: ['127.0.0.0/8']}\n", ""))
        ok, _ = await exporter.reload()
        assert ok and exporter.pipeline.assessor.fetcher.policy.deny.networks[0].compressed == "169.254.0.0/16"
    finally:
        await recorder.stop()


async def test_redirects_are_not_followed() -> None:
    target = await Recorder(host="127.0.0.2").start()

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: {target.url}/x\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()

    server = await Listener(redirect).start()
    port = server.port
    fetcher = Fetcher(timeout=2)
    try:
        with pytest.raises(FetchError, match="HTTP 302"):
            await fetcher.ca_issuers(f"http://127.0.0.1:{port}/ca", now=0.0)
        assert target.hits == []
    finally:
        await fetcher.close()
        await server.close()
        await target.stop()
