"""The third source, `bundles:` (certificate bundles at HTTPS URLs), written as docs/extending.md
says: it shows in /metrics, the inventory (JSON and page), `check --config.file`, the event log and
the reports with no output knowing it exists. Real HTTPS on loopback, certificates from the fixture
PKI, and a real Prometheus holding what the exporter exposed for the reports."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import parse, probe_by_hand, states, value
from pki import PKI
from report.tsdb import prometheus_serving
from servers import LoopbackServers

from exporter.app import Exporter
from exporter.certs.tiers import days_left
from exporter.config import parse_config
from exporter.support.errors import ConfigError
from exporter.web.handlers import make_app


def _publisher(servers: LoopbackServers, pki: PKI, bodies: dict[str, tuple[int, bytes]]) -> int:
    """An HTTPS server on 127.0.0.1 that answers each path with its (status, body)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        path = head.split(b" ", 2)[1].decode()
        status, body = bodies.get(path, (404, b""))
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        writer.write(body)
        await writer.drain()

    return servers.start(handler, ssl_context=pki.issue("publisher").server_context())


@pytest.fixture
async def bundle_world(tmp_path: Path, servers: LoopbackServers, pki: PKI) -> AsyncIterator[dict[str, object]]:
    soon = pki.issue("bundled-soon", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=20))
    port = _publisher(
        servers,
        pki,
        {
            "/trust.pem": (200, soon.chain_path.read_bytes()),  # the leaf, then its intermediate
            "/junk.pem": (200, b"not a certificate\n"),
        },
    )
    base = f"https://127.0.0.1:{port}"
    config = tmp_path / "config.yml"
    config.write_text(
        f"profiles: {{default: {{trust: '{pki.root.cert_path}'}}}}\n"
        "bundles:\n"
        f"  - {{url: '{base}/trust.pem', name: client-trust, owner: pki-team}}\n"
        f"  - {{url: '{base}/gone.pem', owner: pki-team}}\n"
        f"  - {{url: '{base}/junk.pem', owner: pki-team}}\n"
    )
    exporter = Exporter(str(config), listen="127.0.0.1:0")
    await exporter.startup()
    client = TestClient(TestServer(make_app(exporter), host="127.0.0.1"))
    await client.start_server()
    try:
        yield {"exporter": exporter, "client": client, "base": base, "soon": soon, "config": config}
    finally:
        await client.close()
        await exporter.shutdown()


async def test_a_bundle_shows_in_every_output(
    bundle_world: dict[str, object], pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    exporter, client, base = bundle_world["exporter"], bundle_world["client"], bundle_world["base"]
    assert isinstance(exporter, Exporter) and isinstance(client, TestClient)
    await probe_by_hand(exporter)  # as the schedule would, once each
    trust, gone, junk = f"{base}/trust.pem", f"{base}/gone.pem", f"{base}/junk.pem"
    soon = bundle_world["soon"]

    # /metrics: every certificate of the bundle with its position; outcomes of stored certificates.
    s = parse(await (await client.get("/metrics")).text())
    expected_days = days_left(soon.cert.not_valid_after_utc.timestamp(), dt.datetime.now(dt.UTC).timestamp())
    got = value(s, "tls_cert_not_after_timestamp_seconds", target=trust, protocol="bundle", position="0")
    assert got == soon.cert.not_valid_after_utc.timestamp()
    assert value(s, "tls_cert_not_after_timestamp_seconds", target=trust, protocol="bundle", position="1") == (
        pki.intermediate.cert.not_valid_after_utc.timestamp()
    )
    assert states(s, "tls_file_outcome", "outcome", target=trust)["certificate_found"] == 1
    assert states(s, "tls_file_outcome", "outcome", target=gone)["missing"] == 1
    assert states(s, "tls_file_outcome", "outcome", target=junk)["parse_error"] == 1

    # The inventory: one entry per URL, with the verdict and the findings every output shows.
    entries = {e["target"]: e for e in await (await client.get("/api/v1/inventory")).json()}
    assert entries[trust]["kind"] == "bundle" and entries[trust]["path"] == trust
    assert entries[trust]["verdict"] == "warning"  # 20 days left: the warning tier
    assert [f["code"] for f in entries[trust]["findings"]] == ["expiry_warning"]
    assert entries[trust]["days_left"] == pytest.approx(expected_days, abs=0.01)
    assert [c["position"] for c in entries[trust]["certificates"]] == [0, 1]
    assert entries[gone]["verdict"] == "warning" and entries[gone]["outcome"] == "missing"
    assert [f["code"] for f in entries[gone]["findings"]] == ["file_missing"]
    assert entries[junk]["verdict"] == "warning" and entries[junk]["outcome"] == "parse_error"
    page = await (await client.get("/")).text()
    assert trust in page and "client-trust" in page

    # The event log: the same events, in the same words, as for a file.
    logged = {(r.getMessage(), r.fields.get("target")): r.fields for r in caplog.records if hasattr(r, "fields")}
    expiring = logged[(f"certificate will expire on {soon.cert.not_valid_after_utc:%Y-%m-%d}", trust)]
    assert (expiring["tier"], expiring["position"], expiring["code"]) == ("warning", 0, "expiry_warning")
    assert logged[("certificate bundle missing", gone)]["detail"] == "HTTP 404"
    assert logged[("certificate bundle parse error", junk)]["code"] == "file_parse_error"


def test_check_judges_bundles_of_the_configuration(bundle_world: dict[str, object]) -> None:
    config, base = bundle_world["config"], bundle_world["base"]
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config.file", str(config), "--timeout", "10s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # warnings: 20 days left, a missing URL, junk
    assert f"WARNING bundle {base}/trust.pem: certificate_found" in done.stdout
    assert f"WARNING bundle {base}/gone.pem: missing HTTP 404" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("WARNING: 3 bundle(s) checked")


def test_bundle_entries_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"bundles": [{"url": "http://example.test/ca.pem"}, {"name": "x"}, {"url": "https://h/a", "colour": 1}]},
            base_dir=tmp_path,
        )
    assert info.value.errors == [
        "bundles[0].url: 'http://example.test/ca.pem' is not an https:// URL with a host",
        "bundles[1]: missing required key 'url'",
        "bundles[2]: unknown key 'colour'",
    ]


def _history(exposition: str, end: int, minutes: int = 10) -> str:
    """The exporter's own OpenMetrics exposition of its certificate series, as if scraped once a
    minute for ``minutes`` up to ``end``: what `promtool tsdb create-blocks-from` turns into history."""
    out: list[str] = []
    keep = False
    for line in exposition.splitlines():
        if line.startswith("# TYPE ") or line.startswith("# HELP ") or line.startswith("# UNIT "):
            name = line.split()[2]
            keep = name.startswith("tls_") and not name.startswith("tls_exporter_")  # not its own health
            if keep:
                out.append(line)
        elif keep and line and not line.startswith("#"):
            out.extend(f"{line} {end - 60 * i}" for i in range(minutes, -1, -1))
    return "\n".join(out) + "\n# EOF\n"


async def test_a_bundle_shows_in_the_reports(bundle_world: dict[str, object], tmp_path: Path) -> None:
    exporter, client, base = bundle_world["exporter"], bundle_world["client"], bundle_world["base"]
    assert isinstance(exporter, Exporter) and isinstance(client, TestClient)
    await probe_by_hand(exporter)
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    end = int(time.time()) // 60 * 60 - 60
    text = _history(await resp.text(), end)
    with prometheus_serving(tmp_path, text, float(end), ready="count(tls_file_outcome)") as prom:
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "exporter", "report", "--period=day", f"--prometheus.url={prom.url}",
             "--format=json", f"--time={end}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = {(c["target"], c["position"]): c for c in json.loads(run.stdout)["daily"]["certificates"]}
    trust = f"{base}/trust.pem"
    leaf, intermediate = rows[(trust, "0")], rows[(trust, "1")]
    assert (leaf["protocol"], leaf["verdict"], leaf["tier"]) == ("bundle", "warning", "warning")  # 20 days left
    assert leaf["days_left"] == pytest.approx(20, abs=0.1)
    assert (intermediate["verdict"], intermediate["subject"]) == ("ok", "O=tls-exporter tests,CN=Test Intermediate CA")


async def test_an_unverified_publisher_or_a_silent_one_is_unreadable(
    servers: LoopbackServers, pki: PKI, tmp_path: Path
) -> None:
    from exporter.config.bundles import BundleURL
    from exporter.config.model import Profile
    from exporter.sources.bundle import BundleSource
    from exporter.support.deadline import Deadline

    port = _publisher(servers, pki, {"/trust.pem": (200, pki.root.cert_path.read_bytes())})
    job = BundleURL(url=f"https://127.0.0.1:{port}/trust.pem", name="b", owner="", timeout=5.0)
    # The system store does not know the fixture CA that signed the publisher's certificate.
    [untrusted] = await BundleSource().observe(job, Deadline(5), Profile())
    assert (untrusted.outcome.value, untrusted.detail) == (
        "unreadable",
        "TLS: the publisher's certificate: unable to get local issuer certificate",
    )

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts, never answers the TLS handshake

    quiet = servers.start(silent)
    slow = BundleURL(url=f"https://127.0.0.1:{quiet}/trust.pem", name="b", owner="", timeout=0.5)
    [timed_out] = await BundleSource().observe(slow, Deadline(0.5), Profile(trust=str(pki.root.cert_path)))
    assert (timed_out.outcome.value, timed_out.detail) == ("unreadable", "not fetched within 0.5s")
