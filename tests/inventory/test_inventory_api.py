"""`GET /api/v1/inventory`: check's verdict and the facts of every address and file, against real
loopback TLS servers serving the fixture certificates."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from pki import PKI

from exporter.config.model import Target
from exporter.outputs.verdict import verdict
from exporter.sources import PROBERS
from exporter.sources.tls import TLSSource

from .conftest import Fleet


async def inventory(fleet: Fleet) -> dict[str, dict[str, Any]]:
    resp = await fleet.client.get("/api/v1/inventory")
    assert resp.status == 200 and resp.content_type == "application/json"
    entries = await resp.json()
    assert isinstance(entries, list)
    return {e["name"]: e for e in entries}


def iso(cert_not_after: Any) -> str:
    return cert_not_after.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_good_is_ok_with_its_facts(fleet: Fleet, pki: PKI) -> None:
    e = (await inventory(fleet))["good"]
    port = fleet.ports["good"]
    leaf = pki["good"].cert
    assert e["verdict"] == "ok" and e["problems"] == []
    assert (e["kind"], e["target"], e["address"], e["path"]) == (
        "address",
        f"127.0.0.1:{port}",
        f"127.0.0.1:{port}",
        None,
    )
    assert (e["protocol"], e["server_name"], e["owner"], e["outcome"]) == (
        "tls",
        "localhost",
        "web-team",
        "certificate_found",
    )
    assert e["serial"] == pki["good"].serial_hex and e["fingerprint_sha256"] == pki["good"].fingerprint
    assert e["subject"] == leaf.subject.rfc4514_string() and e["issuer"] == leaf.issuer.rfc4514_string()
    assert e["not_after"] == iso(leaf.not_valid_after_utc)
    assert e["days_left"] == pytest.approx((leaf.not_valid_after_utc.timestamp() - time.time()) / 86400, abs=0.01)
    assert e["tier"] == "ok"
    assert (e["chain_valid"], e["chain_issues"], e["ocsp_status"], e["hostname_match"]) == (
        True,
        [],
        "not_checked",
        True,
    )
    assert e["grade"] == "A" and e["tls_version"] == "TLSv1.3"
    assert 0 <= e["last_probe_age_seconds"] < 120
    assert [c["serial"] for c in e["certificates"]] == [
        pki["good"].serial_hex,
        format(pki.intermediate.cert.serial_number, "x"),
    ]


async def test_expiring_in_20_days_is_a_warning(fleet: Fleet) -> None:
    e = (await inventory(fleet))["expiring-20d"]
    assert (e["verdict"], e["tier"], e["owner"]) == ("warning", "warning", "web-team")
    assert e["days_left"] == pytest.approx(20, abs=0.01)
    assert len(e["problems"]) == 1 and e["problems"][0].startswith("certificate expires in 20.0 days (warning tier)")


async def test_expired_is_critical(fleet: Fleet) -> None:
    e = (await inventory(fleet))["expired"]
    assert (e["verdict"], e["tier"], e["owner"]) == ("critical", "expired", "db-team")
    assert e["days_left"] == pytest.approx(-10, abs=0.01)
    assert "certificate expired 10.0 days ago" in e["problems"]
    assert e["chain_valid"] is False and "expired" in e["chain_issues"]


async def test_wrong_host_is_critical_and_says_why(fleet: Fleet) -> None:
    e = (await inventory(fleet))["wrong-host"]
    assert (e["verdict"], e["tier"], e["hostname_match"]) == ("critical", "ok", False)
    assert "certificate does not cover localhost" in e["problems"]


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("self-signed", r"self.signed"),
        ("not-yet-valid", r"not.(yet.)?valid"),
        ("sha1", r"weak.signature|sha.?1"),
    ],
)
async def test_certificates_check_calls_critical_are_critical(fleet: Fleet, name: str, cause: str) -> None:
    """Never green: what check calls critical is critical here, with a problem that names the cause."""
    e = (await inventory(fleet))[name]
    assert e["verdict"] == "critical", e["problems"]
    assert any(re.search(cause, p, re.IGNORECASE) for p in e["problems"]), e["problems"]


async def test_a_failed_probe_is_critical_with_its_outcome(fleet: Fleet) -> None:
    e = (await inventory(fleet))["refused"]
    assert (e["verdict"], e["outcome"], e["address"]) == (
        "critical",
        "connection_refused",
        f"127.0.0.1:{fleet.ports['refused']}",
    )
    assert e["problems"] == [f"probe failed: connection_refused: {e['detail']}"] and e["detail"]
    assert (e["days_left"], e["not_after"], e["serial"], e["grade"], e["certificates"]) == (None, None, None, None, [])
    assert e["last_probe_age_seconds"] is not None


async def test_a_job_never_probed_is_pending(fleet: Fleet) -> None:
    e = (await inventory(fleet))["never-probed"]
    assert (e["verdict"], e["outcome"], e["problems"], e["owner"]) == ("pending", None, [], "ops-team")
    assert (e["address"], e["last_probe"], e["last_probe_age_seconds"], e["days_left"]) == (None, None, None, None)
    assert e["target"].startswith("127.0.0.1:")


async def test_a_file_is_one_entry_with_every_certificate(fleet: Fleet, pki: PKI) -> None:
    e = (await inventory(fleet))["bundle"]
    assert (e["kind"], e["path"], e["address"], e["protocol"], e["owner"]) == (
        "file",
        str(fleet.file),
        None,
        "file",
        "files-team",
    )
    assert e["verdict"] == "warning" and e["outcome"] == "certificate_found"
    # Headline facts: the certificate that expires first (position 1 here).
    assert e["serial"] == pki["expiring-20d"].serial_hex and e["tier"] == "warning"
    assert e["days_left"] == pytest.approx(20, abs=0.01)
    assert [(c["position"], c["serial"], c["tier"]) for c in e["certificates"]] == [
        (0, pki["good"].serial_hex, "ok"),
        (1, pki["expiring-20d"].serial_hex, "warning"),
    ]
    assert len(e["problems"]) == 1 and "certificate 1" in e["problems"][0] and "warning tier" in e["problems"][0]


async def test_the_verdict_is_checks_verdict(fleet: Fleet) -> None:
    """Every entry says what `check` says of the same result (same rules, same scan)."""
    entries = await inventory(fleet)
    now = time.time()
    checked = 0
    for job, locations in fleet.exporter.store.snapshot():
        for location, entry in locations.items():
            profile = fleet.exporter.config.profile(job.profile)
            v = verdict(entry.result, job, profile, now)
            e = entries[job.name]
            assert (e["verdict"], e["problems"] if isinstance(job, Target) else len(e["problems"])) == (
                v.status.name.lower(),
                list(v.problems) if isinstance(job, Target) else len(v.problems),
            ), (job.name, location)
            checked += 1
    assert checked == 10


async def test_the_latest_version_scan_counts_as_in_check(fleet: Fleet) -> None:
    """A server accepting TLS 1.0 is fine until a version scan says so; then the inventory warns
    exactly as `check` does with that scan."""
    assert (await inventory(fleet))["legacy"]["verdict"] == "ok"
    job, locations = next((j, locs) for j, locs in fleet.exporter.store.snapshot() if j.name == "legacy")
    assert isinstance(job, Target)
    (location,) = locations
    tls = PROBERS["tls"]
    assert isinstance(tls, TLSSource)
    scanner = fleet.exporter.scanner
    scan = await scanner.scan_now(job.scan_key(location), tls.opener(job, location, scanner.hello_timeout))
    assert ("TLSv1.0", True) in scan.accepted
    e = (await inventory(fleet))["legacy"]
    v = verdict(locations[location].result, job, fleet.exporter.config.profile(job.profile), time.time(), scan)
    assert (e["verdict"], e["problems"]) == ("warning", list(v.problems))
    assert any("TLSv1.0" in p for p in e["problems"])
