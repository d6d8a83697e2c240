"""`check` and `--config.check` do not import the web stack (aiohttp, the handlers, prometheus_client),
nor dnspython unless a profile asks for DANE or CAA; `check TARGET` neither the configuration
loader and parser (YAML ...) nor the discovery modules: they start faster without them. A
behaviour test: which modules were loaded, never how long it took."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pki import PKI
from servers import LoopbackServers

HEAVY = ("aiohttp", "exporter.app", "exporter.web.handlers", "prometheus_client", "uvloop", "dns", "exporter.judge.dns")
# What `check TARGET` needs not besides (`--config.check` does: it loads a file).
CHECK_HEAVY = (
    "yaml",
    "exporter.config.load",
    "exporter.config.parse",
    "exporter.config.discovery",
    "exporter.config.discovery_model",
    "exporter.sources.discovery",
    "exporter.sources.discovered",
    # and what it imports at first use: DANE and CAA rules, OCSP and CRL, the scheduler's store and shards
    "exporter.certs.dane",
    "exporter.certs.caa",
    "exporter.certs.revocation",
    "exporter.schedule.store",
    "exporter.schedule.shard",
)

# Run the CLI in-process, then report which modules it loaded.
PROGRAM = """
import contextlib, io, json, sys
from exporter.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def loaded(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    doc: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return doc


def heavy(modules: object, names: tuple[str, ...] = HEAVY) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if m.split(".")[0] in names or m in names]


def test_check_of_an_endpoint_does_not_import_the_web_stack(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context())
    doc = loaded(
        "check",
        f"127.0.0.1:{port}",
        "--protocol",
        "tls",
        "--server-name",
        "localhost",
        "--ca-file",
        str(pki.root.cert_path),
        "--json",
    )
    assert doc["code"] == 0, doc["out"]
    assert json.loads(str(doc["out"]))["targets"][0]["results"][0]["chain_valid"] is True
    assert heavy(doc["modules"], HEAVY + CHECK_HEAVY) == []
    assert "exporter.judge.assess" in doc["modules"]  # it did judge the chain


def test_config_check_does_not_import_the_web_stack(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("targets:\n  - address: example.com\n")
    doc = loaded("--config.check", f"--config.file={config}")
    assert doc["code"] == 0 and "OK (1 targets" in str(doc["out"])
    assert heavy(doc["modules"]) == []
