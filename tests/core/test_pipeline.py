"""The one pipeline: identity by server name, steps that fail on their own, the version scan on
its own clock merged when rendering, and the /probe concurrency cap."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from helpers import make_config, make_target, parse, value
from pki import PKI
from prometheus_client import CollectorRegistry, generate_latest
from servers import LoopbackServers

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.config.model import Profile
from exporter.judge.assess import Assessor
from exporter.judge.scan import Scanner
from exporter.metrics.internal import SelfMetrics
from exporter.metrics.render import StoreRenderer
from exporter.pipeline import Pipeline
from exporter.schedule.scheduler import Scheduler
from exporter.schedule.store import Store
from exporter.web.handlers import make_app


def test_one_address_with_two_server_names_is_two_targets() -> None:
    config = parse_config(
        {
            "targets": [
                {"address": "192.0.2.10:443", "server_name": "shop.example.com"},
                {"address": "192.0.2.10:443", "server_name": "api.example.com"},
                {"address": "192.0.2.11:443", "server_name": "www.example.com"},
            ]
        },
        base_dir=Path.cwd(),
    )
    keys = [t.key for t in config.targets]
    assert keys == [
        "https://192.0.2.10:443#shop.example.com",
        "https://192.0.2.10:443#api.example.com",
        "https://192.0.2.11:443#www.example.com",
    ]
    # Only the two that share an address carry a server_name label: the others keep their series as they were.
    assert [t.label_server_name for t in config.targets] == [True, True, False]


async def test_two_server_names_render_two_series_sets(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context())
    config = parse_config(
        {
            "targets": [
                {"address": f"127.0.0.1:{port}", "protocol": "tls", "server_name": "localhost"},
                {"address": f"127.0.0.1:{port}", "protocol": "tls", "server_name": "other.test"},
            ]
        },
        base_dir=Path.cwd(),
    )
    store = Store()
    store.apply_config(config.targets)
    for target in config.targets:
        store.record(target, await Pipeline().probe(target, config))
    s = parse(StoreRenderer(store, lambda: config).render())
    assert value(s, "tls_cert_hostname_match", server_name="localhost") == 1
    assert value(s, "tls_cert_hostname_match", server_name="other.test") == 0


async def test_a_step_that_cannot_be_judged_is_an_assessment_error_not_a_finding(
    servers: LoopbackServers, pki: PKI, tmp_path: Path
) -> None:
    target = make_target(servers.tls(pki["good"].server_context()))
    missing_trust = Profile(trust=str(tmp_path / "no-such-bundle.pem"), revocation="none", scan_protocol_versions=False)
    config = make_config(target, profiles=[Profile(name="default", **_fields(missing_trust))])
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry)
    pipeline = Pipeline(assessor=Assessor(on_error=metrics.error))
    store = Store()
    store.apply_config(config.targets)
    try:
        store.record(target, await pipeline.probe(target, config))
    finally:
        await pipeline.close()
    s = parse(StoreRenderer(store, lambda: config).render())
    assert value(s, "tls_assessment_error", step="chain") == 1
    assert "tls_chain_valid" not in s and "tls_chain_issue" not in s  # absent, never 0
    assert value(s, "tls_security_grade", grade="A") == 1  # the other steps still show
    assert value(s, "tls_probe_success") == 1
    own = parse(generate_latest(registry).decode())
    assert value(own, "tls_exporter_errors_total", step="chain") == 1
    assert value(own, "tls_exporter_errors_total", step="revocation") == 0


def _fields(profile: Profile) -> dict[str, object]:
    return {f: getattr(profile, f) for f in profile.__dataclass_fields__ if f != "name"}


async def test_the_version_scan_runs_after_the_probe_and_is_merged_when_rendering(
    servers: LoopbackServers, pki: PKI
) -> None:
    target = make_target(servers.tls(pki["good"].server_context()))
    config = make_config(target, profiles=[Profile(trust=str(pki.root.cert_path), revocation="none")])
    scanner = Scanner(hello_timeout=5)
    pipeline = Pipeline(assessor=Assessor(), scanner=scanner)
    store = Store()
    store.apply_config(config.targets)
    scheduler = Scheduler(store, pipeline, SelfMetrics(CollectorRegistry()))
    renderer = StoreRenderer(store, lambda: config, scanner=scanner)
    try:
        scheduler.config = config
        await scheduler.run_once(target)
        first = parse(renderer.render())
        # The probe did not wait for the scan: nothing scanned yet when its result was stored.
        assert "tls_protocol_accepted" not in first and value(first, "tls_probe_success") == 1
        (entry,) = store.snapshot()[0][1].values()
        # The probe asked for the scan (queued or running, not finished: no await since); the
        # store keeps no step log (the probe's caller has it: /probe?debug=true, check).
        assert ("tls", entry.result.location, "localhost") in scanner._pending and entry.result.log == ()
        for _ in range(250):
            if scanner.latest(("tls", entry.result.location, "localhost")) is not None:
                break
            await asyncio.sleep(0.02)
        later = parse(renderer.render())  # the same stored result, now with the scan merged in
        assert value(later, "tls_protocol_accepted", version="TLSv1.3") == 1
        assert value(later, "tls_protocol_accepted", version="TLSv1.0") == 0
        scan = scanner.latest(("tls", entry.result.location, "localhost"))
        assert scan is not None
        assert value(later, "tls_protocol_scan_timestamp_seconds") == round(scan.at, 3)
        assert scanner.scans == 1
        await scheduler.run_once(target)  # the next probe uses the scan and does not start another
        assert scanner.scans == 1
    finally:
        await scheduler.stop()
        await pipeline.close()


async def test_probe_requests_over_the_cap_get_503(tmp_path: Path, servers: LoopbackServers) -> None:
    port = servers.silent()
    config = tmp_path / "config.yml"
    config.write_text("")
    exporter = Exporter(str(config), listen="127.0.0.1:0")
    await exporter.startup()
    client = TestClient(TestServer(make_app(exporter, max_probes=1)))
    await client.start_server()
    try:
        params = {"target": f"127.0.0.1:{port}", "protocol": "tls"}
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"}
        slow = asyncio.ensure_future(client.get("/probe", params=params, headers=headers))
        await asyncio.sleep(0.3)  # the first one is waiting on the silent server
        busy = await client.get("/probe", params=params, headers=headers)
        assert busy.status == 503 and "too many /probe requests in flight (limit 1)" in await busy.text()
        first = await slow
        assert first.status == 200
        assert (await client.get("/probe", params=params, headers=headers)).status == 200  # a slot again
    finally:
        await client.close()
        await exporter.shutdown()


async def test_policy_lines_min_tls_version_max_validity_and_key_usage(servers: LoopbackServers, pki: PKI) -> None:
    """min_tls_version decides what is legacy; max_validity flags long-lived leaves; tls_cert_info names usages."""
    port = servers.tls(pki["good"].server_context())  # accepts TLS 1.2 and 1.3; valid 395 days
    strict = Profile(
        name="strict",
        min_tls_version="TLSv1.3",
        max_validity=90 * 86400.0,
        revocation="none",
        trust=str(pki.root.cert_path),
    )
    lenient = Profile(name="lenient", max_validity=398 * 86400.0, revocation="none", trust=str(pki.root.cert_path))
    targets = [
        make_target(port, profile="strict", target="strict"),
        make_target(port, profile="lenient", target="lenient"),
    ]
    config = make_config(*targets, profiles=[strict, lenient])
    scanner = Scanner(hello_timeout=5)
    store = Store()
    store.apply_config(config.targets)
    try:
        for t in targets:
            store.record(t, await Pipeline(scanner=scanner).probe(t, config))
        for _ in range(250):
            if scanner.scans == 2 and all(scanner.latest(k) for k in scanner._results):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        s = parse(StoreRenderer(store, lambda: config, scanner=scanner).render())
    finally:
        await scanner.close()
    assert value(s, "tls_protocol_below_minimum", target="strict") == 1  # TLS 1.2 accepted, 1.3 required
    assert value(s, "tls_protocol_below_minimum", target="lenient") == 0
    assert value(s, "tls_cert_validity_too_long", target="strict") == 1  # 395 days > 90
    assert value(s, "tls_cert_validity_too_long", target="lenient") == 0  # 395 days <= 398
    (info,) = [labels for labels, _ in s["tls_cert_info"] if labels["target"] == "strict"]
    assert (info["key_usage"], info["extended_key_usage"]) == ("", "serverAuth")
    (conn,) = [labels for labels, _ in s["tls_connection_info"] if labels["target"] == "strict"]
    assert conn["version"] in ("TLSv1.2", "TLSv1.3")


def test_policy_functions() -> None:
    from exporter.certs.grade import normalize_version
    from exporter.certs.policy import below_minimum

    accepted = (("SSLv3", False), ("TLSv1.0", True), ("TLSv1.1", True), ("TLSv1.2", True), ("TLSv1.3", True))
    assert below_minimum(accepted, "TLSv1.2") == ("TLSv1.0", "TLSv1.1")
    assert below_minimum(accepted, "TLSv1.0") == ()
    assert below_minimum(accepted, "TLSv1.3") == ("TLSv1.0", "TLSv1.1", "TLSv1.2")
    assert normalize_version("TLSv1") == "TLSv1.0"  # the stdlib's spelling, never in a label
