"""The HTTP endpoints, through aiohttp's test server, against real loopback TLS listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import parse, probe_by_hand, states, value
from pki import PKI
from servers import LoopbackServers, closed_port

from exporter.app import Exporter
from exporter.web.handlers import make_app

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def make_client(tmp_path: Path, servers: LoopbackServers) -> AsyncIterator[Callable[[str], object]]:
    # Depends on `servers` so the exporter (and its background version scans) stops before they do.
    made: list[tuple[Exporter, Client]] = []

    async def _make(config_text: str) -> tuple[Exporter, Client]:
        path = tmp_path / "config.yml"
        path.write_text(config_text)
        exporter = Exporter(str(path), listen="127.0.0.1:0", enable_lifecycle=True)
        await exporter.startup()
        client = TestClient(TestServer(make_app(exporter)))
        await client.start_server()
        made.append((exporter, client))
        return exporter, client

    yield _make  # type: ignore[misc]
    for exporter, client in made:
        await client.close()
        await exporter.shutdown()


async def test_probe_returns_metrics_without_target_labels(make_client, servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["expiring-20d"].server_context())
    _, client = await make_client("probe: {allow: ['127.0.0.0/8']}\n")
    resp = await client.get(
        "/probe", params={"target": f"127.0.0.1:{port}", "protocol": "tls", "server_name": "localhost"}
    )
    assert resp.status == 200
    s = parse(await resp.text())
    assert value(s, "tls_probe_success") == 1
    assert s["tls_probe_success"][0][0] == {}  # Prometheus adds target labels by relabelling
    assert value(s, "tls_cert_days_until_expiry") == pytest.approx(20, abs=0.01)
    assert states(s, "tls_cert_expiry_tier", "tier")["warning"] == 1
    assert value(s, "tls_cert_hostname_match") == 1


async def test_probe_failure_still_answers_200(make_client) -> None:
    _, client = await make_client("")
    resp = await client.get("/probe", params={"target": f"127.0.0.1:{closed_port()}", "protocol": "tls"})
    assert resp.status == 200
    s = parse(await resp.text())
    assert value(s, "tls_probe_success") == 0
    assert states(s, "tls_handshake_outcome", "outcome")["connection_refused"] == 1


async def test_probe_debug_returns_the_step_log(make_client, servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context())
    _, client = await make_client("")
    resp = await client.get("/probe", params={"target": f"127.0.0.1:{port}", "protocol": "tls", "debug": "true"})
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert f"connecting to 127.0.0.1:{port}" in text
    assert "TLS handshake" in text and f"serial {pki['good'].serial_hex}" in text
    assert "tls_probe_success 1.0" in text
    # The verdict as check makes it: the test CA is not in the system store.
    verdict = text.split("Verdict:\n", 1)[1].split("\n\n", 1)[0]
    assert verdict.startswith(f"127.0.0.1:{port}: critical\n"), verdict
    assert "untrusted_root" in verdict and "[chain_invalid]" in verdict and "remedy: Serve the leaf" in verdict


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "target: missing"),
        ({"target": "127.0.0.1:443", "protocol": "smpt"}, "protocol: unknown protocol 'smpt'"),
        ({"target": "127.0.0.1:99999"}, "target:"),
        ({"target": "127.0.0.1", "protocol": "tls"}, "target:"),
        ({"target": "127.0.0.1:443", "profile": "nope"}, "profile: unknown profile 'nope'"),
    ],
)
async def test_probe_bad_parameters_are_400(make_client, params: dict[str, str], message: str) -> None:
    _, client = await make_client("")
    resp = await client.get("/probe", params=params)
    assert resp.status == 400
    assert message in await resp.text()


async def test_probe_outside_allow_is_403(make_client) -> None:
    _, client = await make_client("probe: {allow: ['*.example.com', '198.51.100.0/24']}\n")
    resp = await client.get("/probe", params={"target": "127.0.0.1:443"})
    assert resp.status == 403
    assert "not allowed" in await resp.text()


async def test_scrape_timeout_header_bounds_the_probe(make_client, servers: LoopbackServers) -> None:
    port = servers.silent()
    _, client = await make_client("")
    resp = await client.get(
        "/probe",
        params={"target": f"127.0.0.1:{port}", "protocol": "tls", "debug": "true"},
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
    )
    text = await resp.text()
    assert "timeout 1s" in text  # 1.5 s minus the 0.5 s offset, below the 10 s default
    assert 'tls_handshake_outcome{outcome="handshake_timeout"} 1.0' in text
    resp = await client.get(
        "/probe", params={"target": "127.0.0.1:443"}, headers={"X-Prometheus-Scrape-Timeout-Seconds": "x"}
    )
    assert resp.status == 400


async def test_metrics_status_health_and_reload(
    make_client, servers: LoopbackServers, pki: PKI, tmp_path: Path
) -> None:
    port = servers.tls(pki["good"].server_context())
    exporter, client = await make_client(
        f"targets:\n  - {{address: '127.0.0.1:{port}', protocol: tls, server_name: localhost, owner: web-team}}\n"
    )
    target = exporter.config.targets[0]
    await probe_by_hand(exporter, [target])  # the scheduler's own path, without waiting for its phase
    s = parse(await (await client.get("/metrics")).text())
    assert value(s, "tls_probe_success", target=f"127.0.0.1:{port}", owner="web-team") == 1
    assert value(s, "tls_exporter_targets") == 1
    assert value(s, "tls_exporter_config_last_reload_successful") == 1
    assert value(s, "tls_exporter_probes_total", outcome="certificate_found") == 1
    assert value(s, "tls_exporter_build_info", version="0.1.0") == 1
    page = await (await client.get("/")).text()
    assert f"127.0.0.1:{port}" in page and "web-team" in page and "certificate_found" in page
    assert (await client.get("/-/healthy")).status == 200
    assert (await client.get("/-/ready")).status == 200

    # A broken file is rejected with its error, and the running configuration stays.
    (tmp_path / "config.yml").write_text("targets:\n  - {address: 'x:1', protocol: smpt}\n")
    resp = await client.post("/-/reload")
    assert resp.status == 500
    assert "targets[0].protocol: unknown protocol 'smpt'" in await resp.text()
    s = parse(await (await client.get("/metrics")).text())
    assert value(s, "tls_exporter_config_last_reload_successful") == 0
    assert value(s, "tls_probe_success", target=f"127.0.0.1:{port}") == 1
    assert exporter.config.targets == (target,)

    # A good new file replaces it; the removed target vanishes from the next scrape.
    (tmp_path / "config.yml").write_text("targets: []\n")
    resp = await client.post("/-/reload")
    assert resp.status == 200
    s = parse(await (await client.get("/metrics")).text())
    assert value(s, "tls_exporter_config_last_reload_successful") == 1
    assert value(s, "tls_exporter_targets") == 0
    assert "tls_probe_success" not in s


async def test_probe_unknown_parameters_are_400_with_a_hint(make_client) -> None:
    _, client = await make_client("")
    resp = await client.get("/probe", params={"target": "127.0.0.1:443", "module": "smtp", "foo": "1"})
    assert resp.status == 400
    text = await resp.text()
    assert "unknown parameter(s): foo, module (use protocol= (e.g. protocol=smtp" in text


async def test_probe_owner_name_and_certificate_rules(make_client, servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context())
    _, client = await make_client(
        "certificate_owners:\n  - {match: {subject_cn: 'nothing.example'}, owner: nobody}\n"
        "probe: {allow: ['127.0.0.0/8']}\n"
    )
    params = {"target": f"127.0.0.1:{port}", "protocol": "tls"}
    plain = parse(await (await client.get("/probe", params=params)).text())
    assert plain["tls_probe_success"][0][0] == {}  # no rule matched, nothing given: no labels
    given = parse(await (await client.get("/probe", params={**params, "owner": "web", "name": "Shop"})).text())
    (labels, success) = given["tls_probe_success"][0]
    assert (labels, success) == ({"owner": "web", "name": "Shop"}, 1)
    assert value(given, "tls_cert_days_until_expiry", owner="web") > 300
    # A certificate rule wins over the request's owner, as it does for configured targets.
    _, ruled = await make_client(
        "certificate_owners:\n  - {match: {san: 'good.test'}, owner: pki-team}\nprobe: {allow: ['127.0.0.0/8']}\n"
    )
    s = parse(await (await ruled.get("/probe", params={**params, "owner": "web"})).text())
    assert value(s, "tls_cert_info", owner="pki-team") == 1
    assert value(s, "tls_probe_success", owner="pki-team") == 1
