"""An exporter serving the inventory of real loopback TLS servers (fixture certificates), a file
and a job that was never probed; the scheduler's own loops are stopped so nothing changes under a test."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import probe_by_hand
from pki import PKI
from servers import LoopbackServers, closed_port

from exporter.app import Exporter
from exporter.web.handlers import make_app

Client = TestClient  # type: ignore[type-arg]


FIXTURES = ("good", "expiring-20d", "expired", "wrong-host", "self-signed", "sha1", "not-yet-valid")


@dataclass
class Fleet:
    exporter: Exporter
    client: Client
    ports: dict[str, int]  # fixture name -> port of its server ("refused": a closed port)
    file: Path  # a PEM file holding the expiring-20d leaf and the good leaf


def config_text(ports: dict[str, int], file: Path, pending_port: int, root: Path) -> str:
    owners = {
        "good": "web-team",
        "expiring-20d": "web-team",
        "expired": "db-team",
        "wrong-host": "db-team",
        "self-signed": "pki-team",
        "sha1": "pki-team",
        "not-yet-valid": "pki-team",
    }
    lines = [
        "profiles:",
        f"  default: {{trust: '{root}', revocation: none, scan_protocol_versions: false}}",
        "targets:",
    ]
    for name, port in ports.items():
        owner = owners.get(name, "ops-team")
        lines.append(
            f"  - {{address: '127.0.0.1:{port}', protocol: tls, server_name: localhost, name: {name}, owner: {owner}}}"
        )
    lines.append(f"  - {{address: '127.0.0.1:{pending_port}', protocol: tls, name: never-probed, owner: ops-team}}")
    lines += ["files:", f"  - {{path: '{file}', name: bundle, owner: files-team}}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def fleet(tmp_path: Path, servers: LoopbackServers, pki: PKI) -> AsyncIterator[Fleet]:
    # Depends on `servers` so the exporter stops before they do.
    ports = {name: servers.tls(pki[name].server_context()) for name in FIXTURES}
    legacy = pki["good"].server_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 on purpose
        legacy.minimum_version = ssl.TLSVersion.TLSv1
    ports["legacy"] = servers.tls(legacy)
    ports["refused"] = closed_port()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki["good"].cert_path.read_bytes() + pki["expiring-20d"].cert_path.read_bytes())
    path = tmp_path / "config.yml"
    path.write_text(config_text(ports, bundle, closed_port(), pki.root.cert_path))
    exporter = Exporter(str(path), listen="127.0.0.1:0")
    await exporter.startup()
    assert exporter.scheduler is not None
    # The pending job stays pending: it is never probed.
    await probe_by_hand(exporter, [j for j in exporter.scheduler.jobs(exporter.config) if j.name != "never-probed"])
    client = TestClient(TestServer(make_app(exporter)))
    await client.start_server()
    try:
        yield Fleet(exporter, client, ports, bundle)
    finally:
        await client.close()
        await exporter.shutdown()
