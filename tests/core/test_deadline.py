"""One deadline per probe: resolve, connect, dialogue, handshake, judgement and close all fit in it.

These tests assert which budget a probe was given and the outcome it reached when the budget ran
out (a probe that ignored its deadline would wait on these servers for good and trip the test
timeout). How close to the budget the answers come is measured, not asserted: bench/deadline.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from certs.posture_kit import aia
from helpers import make_config, make_target, parse, states, value
from pki import PKI
from servers import LoopbackServers

from exporter.app import Exporter
from exporter.config.model import Profile
from exporter.judge.assess import Assessor
from exporter.judge.fetch import Fetcher
from exporter.pipeline import Pipeline
from exporter.results import Step
from exporter.web.handlers import make_app


async def test_probe_answers_within_the_scrape_timeout(tmp_path: Path, servers: LoopbackServers) -> None:
    port = servers.silent()  # accepts, never speaks: the ClientHello gets no answer
    config = tmp_path / "config.yml"
    config.write_text("defaults: {timeout: 30s}\n")
    exporter = Exporter(str(config), listen="127.0.0.1:0")
    await exporter.startup()
    client = TestClient(TestServer(make_app(exporter)))
    await client.start_server()
    try:
        resp = await client.get(
            "/probe",
            params={"target": f"127.0.0.1:{port}", "protocol": "https", "debug": "true"},
            headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"},
        )
        text = await resp.text()
    finally:
        await client.close()
        await exporter.shutdown()
    assert resp.status == 200
    assert "timeout 1.5s" in text  # the whole probe's budget: 2 s minus the 0.5 s offset, not the 30 s configured
    s = parse(text.split("Metrics that would have been returned:\n", 1)[1])
    assert states(s, "tls_handshake_outcome", "outcome")["handshake_timeout"] == 1
    assert value(s, "tls_probe_success") == 0
    assert "handshake_failed: " not in text and "TLS handshake timed out" in text


async def test_a_drip_fed_dialogue_ends_at_the_deadline(servers: LoopbackServers) -> None:
    port = servers.drip(b"220 mail.example.test ESMTP", interval=0.2)  # a greeting that never ends its line
    target = make_target(port, protocol="smtp", timeout=1.0)
    (result,) = await Pipeline().probe(target, make_config(target))
    assert result.outcome.value == "handshake_timeout"
    assert result.detail == "smtp dialogue timed out (server silent)"


@pytest.fixture
async def hanging_responder() -> AsyncIterator[str]:
    """An OCSP responder that accepts the request and never answers."""

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/ocsp"
    finally:
        await runner.cleanup()


async def test_judgement_fits_in_the_deadline_and_a_slow_step_is_not_a_finding(
    tmp_path: Path, servers: LoopbackServers, hanging_responder: str
) -> None:
    pki = PKI(tmp_path / "pki")
    leaf = pki.issue("slow-ocsp", extensions=[aia(ocsp_url=hanging_responder)])
    port = servers.tls(leaf.server_context())
    target = make_target(port, timeout=2.0)
    profile = Profile(trust=str(pki.root.cert_path), scan_protocol_versions=False)
    config = make_config(target, profiles=[profile])
    pipeline = Pipeline(assessor=Assessor(fetcher=Fetcher(timeout=30)))
    try:
        (result,) = await pipeline.probe(target, config)
    finally:
        await pipeline.close()
    assert result.outcome.value == "certificate_found" and result.report is not None
    a = result.report.assessment
    assert a is not None
    # The responder never answered: revocation could not be judged within the probe's deadline;
    # the chain and the grade, judged before and after it, still stand.
    assert a.errors == frozenset({Step.REVOCATION}) and a.ocsp_status is None
    assert a.chain_valid is True and a.grade == "A"
    assert any("not finished within the probe's deadline (2s)" in line for line in result.log)


def test_check_timeout_takes_a_duration_and_bounds_the_probe(servers: LoopbackServers) -> None:
    port = servers.silent()
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "check", f"127.0.0.1:{port}", "--protocol", "tls", "--timeout", "1500ms"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "handshake_timeout" in out.stdout and "TLS handshake timed out" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "exporter", "check", f"127.0.0.1:{port}", "--timeout", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 3 and "--timeout:" in bad.stderr
    from exporter.cli import _timeout

    assert (_timeout("1500ms"), _timeout("5s"), _timeout("2.5")) == (1.5, 5.0, 2.5)  # the budget check gets
