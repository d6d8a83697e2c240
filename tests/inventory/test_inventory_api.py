"""`GET /api/v1/inventory`: check's verdict and the facts of every address and file, against real
loopback TLS servers serving the fixture certificates."""

from __future__ import annotations

import datetime
import re
import time
from pathlib import Path
from typing import Any

import pytest
from pki import PKI
from servers import closed_port

from exporter.app import Exporter
from exporter.config.model import Target
from exporter.outputs.query import InventoryQuery
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


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("owner=db-team", {"expired", "wrong-host"}),
        ("verdict=warning", {"expiring-20d", "bundle"}),
        ("verdict=critical,warning&owner=web-team", {"expiring-20d"}),
        ("protocol=file", {"bundle"}),
        ("q=DOES+NOT+COVER", {"wrong-host"}),  # any text of the entry, case folded
        ("q=hostname_mismatch", {"wrong-host"}),  # finding codes too
        ("q=" + "bundle.pem", {"bundle"}),  # the file's path
        ("owner=(none)", set()),
        ("discovery=lan", set()),  # the scan that found an entry: none here was discovered
        ("owner=&verdict=&q=", None),  # empty form fields: no filter
    ],
)
async def test_the_api_filters_as_the_page_does(fleet: Fleet, query: str, names: set[str] | None) -> None:
    """One filter for both: the API's entries are the page's rows, for every parameter."""
    everyone = await inventory(fleet)
    resp = await fleet.client.get(f"/api/v1/inventory?{query}")
    assert resp.status == 200
    got = {e["name"] for e in await resp.json()}
    assert got == (set(everyone) if names is None else names)
    page = await (await fleet.client.get(f"/?{query}")).text()
    assert len(re.findall(r'<tr class="v-', page)) == len(got)
    for name in got - {"bundle"}:
        assert f'<td data-label="Name" class="name">{name}</td>' in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("module=tls", "unknown parameter(s): module; the inventory takes owner, verdict, protocol, q, discovery"),
        ("verdict=critcal", "verdict: unknown critcal (one of ok, warning, critical, pending)"),
    ],
)
async def test_a_wrong_filter_is_a_400_naming_it(fleet: Fleet, query: str, message: str) -> None:
    for path in ("/api/v1/inventory", "/"):
        resp = await fleet.client.get(f"{path}?{query}")
        assert (resp.status, (await resp.text()).strip()) == (400, message)


async def test_pending_entries_say_when_their_first_probe_comes(tmp_path: Path) -> None:
    """With the schedule running, a job not probed yet carries the time its first probe is due
    (within the first-probe window of 30 s after start), and the page says it."""
    ports = [closed_port() for _ in range(8)]
    config = tmp_path / "config.yml"
    lines = ["targets:"] + [f"  - {{address: '127.0.0.1:{p}', protocol: tls, name: t{p}}}" for p in ports]
    config.write_text("\n".join(lines) + "\n")
    exporter = Exporter(str(config), listen="127.0.0.1:0")
    start = time.time()
    await exporter.startup()
    try:
        assert exporter.scheduler is not None
        entries = [e.as_json() for e in exporter.inventory()]
        pending = [e for e in entries if e["verdict"] == "pending"]
        # Phases spread the first probes over 30 s: 8 of them all within the first instant is
        # as good as impossible (the phase comes from each job's key).
        assert pending, entries
        for e in pending:
            due = datetime.datetime.strptime(e["next_probe"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
            assert start - 1 <= due.timestamp() <= start + 31, (e["name"], e["next_probe"])
        page = exporter.status_page(InventoryQuery())
        assert re.search(r">first (in \d+s|probe under way)<", page), page[-3000:]
    finally:
        await exporter.shutdown()
