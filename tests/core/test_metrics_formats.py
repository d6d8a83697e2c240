"""/metrics formats against the real app: gzip (compressed once per change) and OpenMetrics."""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import make_config, make_target, parse, probe_by_hand, value
from pki import PKI
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from servers import LoopbackServers

from exporter.app import Exporter
from exporter.config.model import Config, Profile, RevocationMode, Target
from exporter.metrics import gzipped, render
from exporter.metrics.text import wants_openmetrics
from exporter.pipeline import Pipeline
from exporter.schedule.store import Store
from exporter.web.handlers import make_app

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
async def running(tmp_path: Path, servers: LoopbackServers, pki: PKI) -> AsyncIterator[tuple[Exporter, TestClient]]:  # type: ignore[type-arg]
    ports = [servers.tls(pki[name].server_context()) for name in ("good", "expiring-20d")]
    path = tmp_path / "config.yml"
    path.write_text(
        "profiles: {lean: {scan_protocol_versions: false, revocation: none}}\n"
        "targets:\n"
        + "".join(
            f"  - {{address: '127.0.0.1:{p}', protocol: tls, server_name: localhost, profile: lean}}\n" for p in ports
        )
    )
    exporter = Exporter(str(path), listen="127.0.0.1:0")
    await exporter.startup()
    assert exporter._warming is not None
    exporter._warming.cancel()  # the tests call warm() themselves: what is compressed when is theirs to say
    await probe_by_hand(exporter)
    client = TestClient(TestServer(make_app(exporter)), auto_decompress=False)
    await client.start_server()
    yield exporter, client
    await client.close()
    await exporter.shutdown()


async def test_gzip_body_is_the_plain_body_compressed(running: tuple[Exporter, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = running
    plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert plain.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in plain.headers
    plain_text = await plain.text()

    resp = await client.get("/metrics", headers={"Accept-Encoding": "gzip, deflate"})
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in resp.headers["Vary"]
    raw = await resp.read()
    assert int(resp.headers["Content-Length"]) == len(raw)
    text = gzip.decompress(raw).decode()  # one valid member: the CRC and length are checked
    strip = [line for line in text.splitlines() if not line.startswith(("process_", "python_", "tls_exporter_"))]
    same = [line for line in plain_text.splitlines() if not line.startswith(("process_", "python_", "tls_exporter_"))]
    # Only the series that move with the clock may differ between two scrapes.
    moving = ("tls_cert_days_until_expiry", "tls_chain_days_until_expiry")
    assert [x for x in strip if not x.startswith(moving)] == [x for x in same if not x.startswith(moving)]
    s = parse(text)
    assert sorted(v for _, v in s["tls_probe_success"]) == [1.0, 1.0]
    assert value(s, "tls_exporter_targets") == 2
    assert len(raw) < len(text) / 2  # small here: one block per family; 20x smaller at 10,000 endpoints


async def test_unchanged_families_are_not_compressed_again(running: tuple[Exporter, TestClient]) -> None:  # type: ignore[type-arg]
    exporter, client = running
    blocks = exporter.renderer
    exporter.renderer.warm()
    exporter.renderer.warm()  # nothing new since the last one: the group of both addresses is sealed
    await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    first = blocks.compressed
    again = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    gzip.decompress(await again.read())
    # Nothing changed: every block is reused (days left, rounded to 1e-4 day, may have moved: at
    # most those two families are compressed again).
    assert blocks.compressed - first <= 2

    # A new probe result whose lines differ (duration, timestamp) makes its families compress again.
    assert exporter.scheduler is not None
    await exporter.scheduler.run_once(exporter.config.targets[0])
    before = blocks.compressed
    text = gzip.decompress(await (await client.get("/metrics", headers={"Accept-Encoding": "gzip"})).read())
    # its duration and timestamp (and at most the two days-left families); not the other ~30
    assert 2 <= blocks.compressed - before <= 4
    assert value(parse(text.decode()), "tls_exporter_probes_total", outcome="certificate_found") == 3


async def test_openmetrics_is_negotiated_and_parses(running: tuple[Exporter, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = running
    for encoding in ("identity", "gzip"):
        resp = await client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": encoding})
        assert resp.headers["Content-Type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
        raw = await resp.read()
        text = (gzip.decompress(raw) if encoding == "gzip" else raw).decode()
        assert text.endswith("# EOF\n") and text.count("# EOF") == 1
        families = {f.name: f for f in om_families(text)}  # the strict OpenMetrics parser accepts it
        success = families["tls_probe_success"]
        assert success.type == "gauge"
        assert sorted(s.value for s in success.samples) == [1.0, 1.0]
        probes = families["tls_exporter_probes"]
        assert probes.type == "counter"
        counted = {s.labels["outcome"]: s.value for s in probes.samples if s.name == "tls_exporter_probes_total"}
        assert counted["certificate_found"] == 2
        days = {s.labels["target"]: s.value for s in families["tls_cert_days_until_expiry"].samples}
        assert sorted(round(d) for d in days.values())[0] == 20
        # No `_created` series, in either format (as the Go exporters): counters and histograms alike.
        assert [s.name for f in families.values() for s in f.samples if s.name.endswith("_created")] == []
    text = await (await client.get("/metrics", headers={"Accept-Encoding": "identity"})).text()
    assert "_created" not in text and "tls_exporter_probes_total" in text


async def test_minimal_series_profile(tmp_path: Path, servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context())
    ca = pki.root.cert_path
    path = tmp_path / "config.yml"
    path.write_text(
        f"profiles: {{small: {{series: minimal, scan_protocol_versions: false, revocation: none, trust: '{ca}'}}, "
        f"full: {{scan_protocol_versions: false, revocation: none, trust: '{ca}'}}}}\n"
        "targets:\n"
        f"  - {{address: '127.0.0.1:{port}', protocol: tls, server_name: localhost, profile: small, name: small}}\n"
        f"  - {{address: '127.0.0.1:{port}', protocol: tls, server_name: good.test, profile: full, name: full}}\n"
    )
    exporter = Exporter(str(path), listen="127.0.0.1:0")
    await exporter.startup()
    try:
        await probe_by_hand(exporter)
        s = parse(b"".join(map(gzipped.chunk_data, exporter.render_metrics())).decode())
        per_name: dict[str, int] = {}
        for samples in s.values():
            for labels, _ in samples:
                if "name" in labels:
                    per_name[labels["name"]] = per_name.get(labels["name"], 0) + 1
        assert per_name["small"] == 14
        assert per_name["full"] == 39  # without a version scan (its profile turns it off); with tls_chain_path_info
        small = {f for f, samples in s.items() if any(lbl.get("name") == "small" for lbl, _ in samples)}
        assert small == {
            "tls_probe_success",
            "tls_probe_duration_seconds",
            "tls_probe_timestamp_seconds",
            "tls_cert_not_after_timestamp_seconds",
            "tls_cert_not_before_timestamp_seconds",
            "tls_cert_days_until_expiry",
            "tls_cert_info",
            "tls_cert_hostname_match",
            "tls_chain_valid",
            "tls_chain_days_until_expiry",
            "tls_connection_info",
            "tls_ocsp_status",
            "tls_security_grade",
            "tls_target_distinct_certificates",
        }
        small_value = {f: v for f, samples in s.items() for lbl, v in samples if lbl.get("name") == "small"}
        assert small_value["tls_cert_days_until_expiry"] > 80
        assert small_value["tls_chain_valid"] == 1
    finally:
        await exporter.shutdown()


def test_blocks_join_into_one_valid_member() -> None:
    rng = random.Random(7)
    parts = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 3000))) for _ in range(20)] + [b"x" * 100_000]
    body = gzipped.member(gzipped.block(p) for p in parts)
    assert gzip.decompress(b"".join(body)) == b"".join(parts)
    a, b = b"hello ", b"world" * 1000
    assert gzipped.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text; version=1.0.0", True),
        ("", False),
        ("*/*", False),
        ("text/plain;version=0.0.4", False),
        ("application/openmetrics-text;version=1.0.0;q=0.2,text/plain;q=0.9", False),
        ("application/openmetrics-text;version=2.0.0", False),
    ],
)
def test_openmetrics_negotiation(accept: str, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


async def test_warm_renders_new_results_ahead_of_the_scrape(
    running: tuple[Exporter, TestClient],  # type: ignore[type-arg]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter, client = running
    rendered: list[str] = []
    real = render._render_location

    def counting(*args: object) -> object:
        rendered.append(str(args[2]))  # the location
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "_render_location", counting)
    exporter.renderer.warm()
    assert len(rendered) == 2  # both addresses, before any scrape
    resp = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert value(parse(await resp.text()), "tls_exporter_targets") == 2
    assert len(rendered) == 2  # the scrape found them rendered
    assert exporter.scheduler is not None
    await exporter.scheduler.run_once(exporter.config.targets[0])
    exporter.renderer.warm()
    assert rendered[2:] == [exporter.config.targets[0].target]  # only the new result


def _static_lines(text: str) -> list[str]:
    """A body's lines that do not move with the clock, sorted (groups may order locations differently)."""
    moving = ("tls_cert_days_until_expiry", "tls_chain_days_until_expiry")
    return sorted(line for line in text.splitlines() if not line.startswith(moving))


def _gzip_body(renderer: render.StoreRenderer) -> str:
    blocks = [b for f in renderer.render_families() for b in f.blocks()]
    return gzip.decompress(b"".join(gzipped.member(blocks))).decode()


async def _probed(servers: LoopbackServers, pki: PKI, count: int) -> tuple[list[Target], Config, Store, Pipeline]:
    """``count`` targets on one loopback TLS server, each probed once into a store."""
    port = servers.tls(pki["good"].server_context())
    targets = [make_target(port, target=f"t{i}.test:443", timeout=5) for i in range(count)]
    config = make_config(*targets, profiles=[Profile(scan_protocol_versions=False, revocation=RevocationMode.NONE)])
    store, pipeline = Store(), Pipeline()
    store.apply_config(targets)
    for target in targets:
        store.record(target, await pipeline.probe(target, config))
    return targets, config, store, pipeline


async def test_grouped_lines_stay_those_of_a_fresh_render(servers: LoopbackServers, pki: PKI) -> None:
    # Seven locations in groups of two: lines are sealed into compressed pieces, changed, removed,
    # and every body (plain and gzip) must hold exactly the lines a renderer with no history writes.
    targets, config, store, pipeline = await _probed(servers, pki, 7)
    grouped = render.StoreRenderer(store, lambda: config, group_size=2)

    def check() -> str:
        fresh = _static_lines(render.StoreRenderer(store, lambda: config).render())
        plain = grouped.render()
        assert _static_lines(plain) == fresh
        assert _static_lines(_gzip_body(grouped)) == fresh
        return plain

    check()
    grouped.warm()
    grouped.warm()  # nothing new: the open group is sealed too
    assert len([g for g in grouped._groups if g.plain is None]) == 4
    check()
    before = grouped.compressed
    _gzip_body(grouped)
    assert grouped.compressed - before <= 2  # nothing changed: only days left may be compressed again

    # A new result for t3: only its group's duration and timestamp pieces are compressed again.
    new = await pipeline.probe(targets[3], config)
    store.record(targets[3], new)
    before = grouped.compressed
    body = _gzip_body(grouped)
    assert 2 <= grouped.compressed - before <= 4
    assert value(parse(body), "tls_probe_duration_seconds", target="t3.test:443") == round(new[0].duration, 6)
    check()

    # Removed targets vanish; a group left empty is dropped.
    kept = [t for t in targets if t.target not in ("t0.test:443", "t1.test:443", "t4.test:443")]
    config = make_config(*kept, profiles=[Profile(scan_protocol_versions=False, revocation=RevocationMode.NONE)])
    store.apply_config(kept)
    plain = check()
    assert {lbl["target"] for lbl, _ in parse(plain)["tls_probe_success"]} == {t.target for t in kept}
    assert len(grouped._groups) == 4  # t0 and t1 filled the first group: it is gone (the open one stays)


async def test_one_renderer_follows_a_tier_change_and_reuses_unchanged_tier_lines(
    servers: LoopbackServers, pki: PKI
) -> None:
    port = servers.tls(pki["expiring-20d"].server_context())
    target = make_target(port)
    config = make_config(target, profiles=[Profile(scan_protocol_versions=False, revocation=RevocationMode.NONE)])
    store = Store()
    store.apply_config([target])
    store.record(target, await Pipeline().probe(target, config))
    not_after = pki["expiring-20d"].cert.not_valid_after_utc.timestamp()
    now = [not_after - 20 * 86400]
    renderer = render.StoreRenderer(store, lambda: config, clock=lambda: now[0])

    def tiers() -> dict[str, float]:
        return {labels["tier"]: v for labels, v in parse(renderer.render())["tls_cert_expiry_tier"]}

    assert tiers()["warning"] == 1
    first = renderer._tier_parts
    now[0] += 3600  # an hour later: same tier, the same joined lines
    assert tiers()["warning"] == 1
    assert renderer._tier_parts is first
    now[0] = not_after - 5 * 86400  # five days left: critical
    assert tiers() == {"ok": 0, "info": 0, "warning": 0, "critical": 1, "expired": 0}
    now[0] = not_after + 60
    assert tiers()["expired"] == 1


async def test_plain_body_keeps_sealed_lines_compressed_until_written(servers: LoopbackServers, pki: PKI) -> None:
    # The plain-text body is handed to the writer as chunks: the sealed groups' lines stay compressed
    # blocks (inflated one at a time as they are written), so a scrape never holds the whole text.
    _, config, store, _ = await _probed(servers, pki, 6)
    grouped = render.StoreRenderer(store, lambda: config, group_size=2)
    grouped.warm()
    chunks = [c for f in grouped.render_families() for c in f.parts()]
    blocks = [c for c in chunks if isinstance(c, gzipped.Block)]
    # 3 sealed groups x the families of their lines (info, success, ...): none of them inflated yet.
    assert len(blocks) >= 3 * 10
    body = b"".join(map(gzipped.chunk_data, chunks))
    assert sum(map(gzipped.chunk_size, chunks)) == len(body)  # the Content-Length, known before inflating
    assert _static_lines(body.decode()) == _static_lines(render.StoreRenderer(store, lambda: config).render())
