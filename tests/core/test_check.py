"""`check`: the contract's exit-status rules, and the CLI around them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import make_config, make_target
from pki import PKI
from servers import LoopbackServers, closed_port

from exporter.config.model import Profile
from exporter.judge.scan import ScanResult
from exporter.outputs.verdict import PRIVATE_CA_HINT, Status, verdict
from exporter.pipeline import Pipeline
from exporter.results import Assessment, Result
from exporter.support.errors import Outcome
from exporter.tls.hello import HelloResult


async def probe(servers: LoopbackServers, pki: PKI, leaf: str, **kw: object) -> Result:

    target = make_target(servers.tls(pki[leaf].server_context()), **kw)  # type: ignore[arg-type]
    (result,) = await Pipeline().probe(target, make_config(target))
    return result


@pytest.mark.parametrize(
    ("leaf", "status"),
    [
        ("good", Status.OK),
        ("expiring-60d", Status.OK),
        ("expiring-20d", Status.WARNING),
        ("expiring-5d", Status.CRITICAL),
        ("expired", Status.CRITICAL),
        ("wrong-host", Status.CRITICAL),
        ("rsa-1024", Status.WARNING),
        ("sha1", Status.WARNING),
    ],
)
async def test_status_by_certificate(servers: LoopbackServers, pki: PKI, leaf: str, status: Status) -> None:
    target = make_target(1)
    result = await probe(servers, pki, leaf)
    assert verdict(result, target, Profile(), time.time()).status is status


async def test_failed_probe_invalid_chain_and_legacy_protocol(servers: LoopbackServers, pki: PKI) -> None:
    target = make_target(1)
    config = make_config(target)
    profile = config.profile(target.profile)
    failed = Result(location="127.0.0.1:1", outcome=Outcome.CONNECTION_REFUSED, detail="refused")
    assert verdict(failed, target, profile, time.time()).status is Status.CRITICAL
    good = await probe(servers, pki, "good")
    assert good.report is not None
    untrusted = Assessment(chain_valid=False, chain_issues=frozenset({"untrusted_root"}))
    invalid = dataclasses.replace(good, report=dataclasses.replace(good.report, assessment=untrusted))
    v = verdict(invalid, target, profile, time.time())
    assert v.status is Status.CRITICAL and v.problems == (f"chain invalid: untrusted_root ({PRIVATE_CA_HINT})",)
    # A chain that could not be judged (an error on our side) is not a finding.
    unjudged = dataclasses.replace(good, report=dataclasses.replace(good.report, assessment=Assessment()))
    assert verdict(unjudged, target, profile, time.time()).status is Status.OK
    legacy = ScanResult(at=time.time(), hellos=(HelloResult(version="TLSv1.0", accepted=True),))
    v = verdict(good, target, profile, time.time(), legacy)
    assert v.status is Status.WARNING
    assert v.problems == ("legacy protocol accepted: TLSv1.0 (below min_tls_version TLSv1.2)",)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=60)


def test_cli_check_json_and_exit_codes(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["expiring-20d"].server_context())
    out = run_cli(
        "check",
        f"127.0.0.1:{port}",
        "--protocol",
        "tls",
        "--server-name",
        "localhost",
        "--json",
        "--ca-file",
        str(pki.root.cert_path),
    )
    doc = json.loads(out.stdout)
    (result,) = doc["targets"][0]["results"]
    assert result["leaf"]["serial"] == pki["expiring-20d"].serial_hex
    assert result["leaf"]["tier"] == "warning"
    assert result["leaf"]["days_until_expiry"] == pytest.approx(20, abs=0.01)
    assert result["chain_valid"] is True and result["chain_issues"] == []
    assert out.returncode == doc["exit_code"] == 1, out.stderr  # warning tier, nothing worse
    untrusted = json.loads(run_cli("check", f"127.0.0.1:{port}", "--protocol", "tls", "--json").stdout)
    (result,) = untrusted["targets"][0]["results"]
    assert result["chain_valid"] is False and result["chain_issues"] == ["untrusted_root"]
    assert untrusted["exit_code"] == 2
    refused = run_cli("check", f"127.0.0.1:{closed_port()}", "--protocol", "tls")
    assert refused.returncode == 2 and "connection_refused" in refused.stdout
    bad = run_cli("check", "127.0.0.1:443", "--protocol", "smpt")
    assert bad.returncode == 3 and "protocol: unknown protocol 'smpt'" in bad.stderr


def test_config_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("targets:\n  - address: example.com\n")
    out = run_cli("--config.check", f"--config.file={good}")
    assert out.returncode == 0 and "OK (1 targets" in out.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("targets:\n  - {address: example.com, protocol: smpt}\n  - {adress: x}\n")
    out = run_cli("--config.check", f"--config.file={bad}")
    assert out.returncode == 1
    assert "targets[0].protocol: unknown protocol 'smpt'" in out.stderr
    assert "targets[1]: unknown key 'adress'" in out.stderr


def test_cli_check_accepts_a_certificate_file(pki: PKI, tmp_path: Path) -> None:
    out = run_cli("check", str(pki["expiring-20d"].cert_path), "--json")
    doc = json.loads(out.stdout)
    (cert,) = doc["files"][0]["certificates"]
    assert cert["serial"] == pki["expiring-20d"].serial_hex and cert["tier"] == "warning"
    assert out.returncode == doc["exit_code"] == 1
    chain = run_cli("check", str(pki["expiring-5d"].chain_path))
    assert chain.returncode == 2 and "[1] O=tls-exporter tests,CN=Test Intermediate CA" in chain.stdout
    missing = run_cli("check", str(tmp_path / "absent.pem"))
    assert missing.returncode == 1 and "missing" in missing.stdout  # a missing file is a warning, as its alert


def test_warning_and_critical_days_override_every_profile(servers: LoopbackServers, pki: PKI) -> None:
    """check_ssl_cert's -w/-c: days (decimals allowed); -w must exceed -c; 20 days left here."""
    port = servers.tls(pki["expiring-20d"].server_context())
    base = ["check", f"127.0.0.1:{port}", "--protocol", "tls", "--server-name", "localhost"]
    base += ["--ca-file", str(pki.root.cert_path)]
    relaxed = run_cli(*base, "-w", "10", "-c", "5")
    assert relaxed.returncode == 0 and relaxed.stdout.rstrip().endswith("| days=20.0;10;5"), relaxed.stdout
    strict = run_cli(*base, "--warning", "25.5", "--critical", "20.5")
    assert strict.returncode == 2 and "(critical tier)" in strict.stdout and "days=20.0;25.5;20.5" in strict.stdout
    warned = run_cli(*base, "-w", "21")  # the profile's critical tier stays 7 days
    assert warned.returncode == 1 and "days=20.0;21;7" in warned.stdout
    for wrong in (["-w", "5", "-c", "10"], ["-w", "6"], ["-c", "-1"], ["-w", "soon"]):
        out = run_cli(*base, *wrong)
        assert out.returncode == 3, (wrong, out.stdout, out.stderr)


def test_protocol_choices_are_listed_and_checked() -> None:
    helped = run_cli("check", "--help")
    assert "one of ftp, ftps, https," in " ".join(helped.stdout.split())
    wrong = run_cli("check", "127.0.0.1:1", "--protocol", "smpt")
    assert wrong.returncode == 3 and "protocol: unknown protocol 'smpt'" in wrong.stderr  # as /probe says it
