"""One truth: the same locations, served by real loopback TLS servers and read from real files,
judged by `check --config.file --json` (a process), the inventory API of a running exporter, and
`/probe?debug=true` of that exporter. Every output must give every location the same verdict and
the same finding codes, and the verdict each scenario calls for."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from certs.defects import ca_under_root, malformed_name_constraints_ca
from pki import NOW, PKI, Issued
from servers import LoopbackServers, closed_port

from exporter.app import Exporter
from exporter.web.handlers import make_app

DAY = dt.timedelta(days=1)

# name -> (verdict, the codes every output must list, exactly)
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "good": ("ok", set()),
    "info-tier": ("ok", {"expiry_info"}),
    "warning-tier": ("warning", {"expiry_warning"}),
    "critical-tier": ("critical", {"expiry_critical"}),
    "expired": ("critical", {"expired"}),
    "not-yet-valid": ("critical", {"not_yet_valid"}),
    "wrong-host": ("critical", {"hostname_mismatch"}),
    "self-signed": ("critical", {"chain_invalid"}),
    "weak-key": ("warning", {"weak_key"}),
    "sha1": ("critical", {"weak_signature", "chain_invalid"}),  # a client refuses a SHA-1 leaf
    "expired-intermediate": ("critical", {"chain_invalid"}),
    "malformed-nc": ("critical", {"chain_invalid"}),
    "serial-mismatch": ("warning", {"expected_mismatch"}),
    "legacy": ("warning", {"legacy_protocol"}),
    "refused": ("critical", {"connection_refused"}),
    "not-tls": ("critical", {"not_tls"}),
    "alert": ("critical", {"handshake_failed"}),
    "shared-address-a": ("ok", set()),
    "shared-address-b": ("critical", {"hostname_mismatch"}),
    "file-missing": ("warning", {"file_missing"}),
    "file-not-yet-valid": ("critical", {"not_yet_valid"}),
    "file-good": ("ok", set()),
}


def _legacy_context(issued: Issued) -> ssl.SSLContext:
    ctx = issued.server_context()  # SECLEVEL=0 ciphers already
    with warnings.catch_warnings():  # TLS 1.0 is deprecated: that is what this server is for
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def _world(servers: LoopbackServers, pki: PKI, tmp_path: Path) -> str:
    """Every scenario's server or file, and a configuration naming them all (the name is the key)."""
    expired_ca = ca_under_root(pki, "truth-expired-ca", not_after=NOW - DAY)
    served: dict[str, int] = {
        "good": servers.tls(pki["good"].server_context()),
        "info-tier": servers.tls(pki["expiring-60d"].server_context()),
        "warning-tier": servers.tls(pki["expiring-20d"].server_context()),
        "critical-tier": servers.tls(pki["expiring-5d"].server_context()),
        "expired": servers.tls(pki["expired"].server_context()),
        "not-yet-valid": servers.tls(pki["not-yet-valid"].server_context()),
        "wrong-host": servers.tls(pki["wrong-host"].server_context()),
        "self-signed": servers.tls(pki["self-signed"].server_context()),
        "weak-key": servers.tls(pki["rsa-1024"].server_context()),
        "sha1": servers.tls(pki["sha1"].server_context()),
        "expired-intermediate": servers.tls(
            pki.issue("truth-under-expired-ca", issuer=expired_ca, not_after=NOW + 300 * DAY).server_context()
        ),
        "malformed-nc": servers.tls(
            pki.issue(
                "truth-under-malformed", issuer=malformed_name_constraints_ca(pki, "truth-malformed-nc")
            ).server_context()
        ),
        "serial-mismatch": servers.tls(pki["good"].server_context()),
        "legacy": servers.tls(_legacy_context(pki["good"])),
        "refused": closed_port(),
        "not-tls": servers.plain_http(),
        "alert": servers.alert(),
    }
    shared = servers.tls(pki["good"].server_context())
    lines = []
    for name, port in served.items():
        extra = ", expect: {serial: '01'}" if name == "serial-mismatch" else ""
        lines.append(f"  - {{name: {name}, address: '127.0.0.1:{port}', protocol: tls, server_name: localhost{extra}}}")
    lines.append(
        f"  - {{name: shared-address-a, address: '127.0.0.1:{shared}', protocol: tls, server_name: localhost}}"
    )
    lines.append(
        f"  - {{name: shared-address-b, address: '127.0.0.1:{shared}', protocol: tls, server_name: other.test}}"
    )
    (tmp_path / "nyv.pem").write_bytes(pki["not-yet-valid"].cert_path.read_bytes())
    (tmp_path / "good.pem").write_bytes(pki["good"].cert_path.read_bytes())
    files = [("file-missing", tmp_path / "absent.pem"), ("file-not-yet-valid", tmp_path / "nyv.pem")]
    files.append(("file-good", tmp_path / "good.pem"))
    config = (
        "defaults: {interval: 1h, timeout: 8s}\n"
        f"profiles:\n  default:\n    trust: {pki.root.cert_path}\n    revocation: none\n"
        "targets:\n" + "\n".join(lines) + "\nfiles:\n" + "\n".join(f"  - {{path: '{p}', name: {n}}}" for n, p in files)
    )
    path = tmp_path / "config.yml"
    path.write_text(config + "\n")
    return str(path)


def _codes(findings: list[dict[str, Any]]) -> set[str]:
    return {f["code"] for f in findings}


def _from_check(config: str) -> tuple[dict[str, tuple[str, set[str]]], dict[str, dict[str, Any]]]:
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config.file", config, "--json", "--timeout", "20s"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    doc = json.loads(out.stdout)
    assert out.returncode == 2, out.stderr  # the worst of all
    seen, objects = {}, {}
    for target in doc["targets"]:
        (result,) = target["results"]
        seen[target["name"]] = (result["verdict"], _codes(result["findings"]))
        objects[target["name"]] = result
    for file in doc["files"]:
        name = {"absent.pem": "file-missing", "nyv.pem": "file-not-yet-valid", "good.pem": "file-good"}[
            Path(file["path"]).name
        ]
        seen[name] = (file["verdict"], _codes(file["findings"]))
        objects[name] = file
    return seen, objects


async def _from_exporter(
    config: str,
) -> tuple[dict[str, tuple[str, set[str]]], dict[str, tuple[str, set[str]]], dict[str, dict[str, Any]]]:
    exporter = Exporter(config, listen="127.0.0.1:0")
    await exporter.startup()
    client = TestClient(TestServer(make_app(exporter), host="127.0.0.1"))
    await client.start_server()
    try:
        inventory: list[dict[str, Any]] = []
        for _ in range(600):  # every location probed and every version scan in (for the legacy finding)
            inventory = await (await client.get("/api/v1/inventory")).json()
            legacy = [e for e in inventory if e["name"] == "legacy"]
            if (
                all(e["verdict"] != "pending" for e in inventory)
                and legacy
                and any(f["code"] == "legacy_protocol" for f in legacy[0]["findings"])
            ):
                break
            await asyncio.sleep(0.1)
        listed = {e["name"]: (e["verdict"], _codes(e["findings"])) for e in inventory}
        debug: dict[str, tuple[str, set[str]]] = {}
        for target in exporter.config.targets:
            params = {"target": target.target, "protocol": "tls", "server_name": target.server_name, "debug": "true"}
            text = await (await client.get("/probe", params=params)).text()
            section = text.split("Verdict:\n", 1)[1].split("\n\nMetrics that would", 1)[0]
            head, *rest = section.split("\n")
            verdict = head.rsplit(": ", 1)[1]
            codes = {line.rsplit("[", 1)[1].rstrip("]") for line in rest if line.rstrip().endswith("]")}
            debug[target.name] = (verdict, codes)
        return listed, debug, {e["name"]: e for e in inventory}
    finally:
        await client.close()
        await exporter.shutdown()


@pytest.mark.timeout(600)
async def test_every_output_gives_every_location_the_same_verdict(
    servers: LoopbackServers, pki: PKI, tmp_path: Path
) -> None:
    config = _world(servers, pki, tmp_path)
    checked, check_objects = await asyncio.to_thread(_from_check, config)
    listed, debug, entries = await _from_exporter(config)
    assert checked == EXPECTED
    assert listed == EXPECTED
    # check --json gives each location the inventory's object itself (plus its own status and details):
    # the same keys, and the same values wherever they do not move with the clock or the next probe.
    stable = ("kind", "target", "address", "path", "protocol", "server_name", "name", "owner", "labels")
    stable += ("verdict", "problems", "outcome", "serial", "subject", "not_after", "chain_valid", "hostname_match")
    for name, entry in entries.items():
        assert set(entry) <= set(check_objects[name]), (name, set(entry) - set(check_objects[name]))
        assert {k: check_objects[name][k] for k in stable} == {k: entry[k] for k in stable}, name
    # /probe has no files, and probes the addresses of the configured targets again; an on-demand
    # probe carries no `expect:` (it is not the configured target), so it has no serial to compare.
    on_demand = {name: want for name, want in EXPECTED.items() if not name.startswith("file-")}
    on_demand["serial-mismatch"] = ("ok", set())
    assert debug == on_demand
