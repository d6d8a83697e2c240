"""Discovery scans against real loopback servers on addresses of 127.83.0.0/28.

Every address of the range is on loopback (127.0.0.0/8): a TLS server, a plain HTTP server, a
silent one, one that answers a TLS alert, an SMTP server that speaks STARTTLS, and a counting
server inside an excluded range; every other pair is refused. Nothing outside loopback is ever
connected to: the probe is wrapped and every address it is asked for is asserted in scope.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.serialization import Encoding
from fakes import Expect, ScriptedServer, Send, StartTLS
from helpers import parse, probe_by_hand, states, value
from pki import PKI
from prometheus_client import CollectorRegistry, generate_latest
from servers import Listener
from smtp_sink import SmtpSink

from exporter.app import Exporter
from exporter.config.discovery import DiscoveredEndpoint, Scan, endpoint_key, parse_discovery
from exporter.config.model import Config, Defaults
from exporter.config.reader import Reader
from exporter.metrics.discovery import DiscoveryCollector
from exporter.schedule.discovery import DiscoveryScheduler
from exporter.schedule.shard import Shard
from exporter.sources.discovered import Discovery, PairResult, RunResult, ScanState
from exporter.sources.discovery import TokenBucket, probe_pair, run_scan
from exporter.support.errors import Outcome
from exporter.web.handlers import make_app

NET = "127.83.0"
TIMEOUT = 1.0
SMTP_SCRIPT = (
    Send(b"220 mail.example.test ESMTP\r\n"),
    Expect(b"EHLO tls-exporter.invalid\r\n"),
    Send(b"250-mail.example.test\r\n250 STARTTLS\r\n"),
    Expect(b"STARTTLS\r\n"),
    Send(b"220 go ahead\r\n"),
    StartTLS(),
)


async def until(condition: Callable[[], bool], tries: int = 500) -> None:
    """Let the loop run until ``condition`` holds (a bounded number of short sleeps)."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    tls_port: int  # implicit TLS (protocol tls)
    smtp_port: int  # STARTTLS (protocols: {smtp_port: smtp})
    excluded_connections: list[int] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)

    def scan(self, **overrides: object) -> Scan:
        values: dict[str, object] = {
            "name": "lab",
            "networks": [f"{NET}.0/28"],
            "ports": [self.tls_port, self.smtp_port],
            "exclude": [f"{NET}.8/29"],
            "protocols": {self.smtp_port: "smtp"},
            "rate": 2000,
            "timeout": "1s",
            "interval": "10s",
            "owner": "netops",
            "labels": {"site": "lab"},
            "forget_after": "1h",
        }
        values.update(overrides)
        return parse_scan(values)


def parse_scan(values: dict[str, object]) -> Scan:
    reader = Reader(Path("."))
    scans = parse_discovery(reader, [values], Defaults(), ())
    assert reader.errors == []
    return scans[0]


async def serving(lab: Lab, host: str, port: int, handler: object, tls: ssl.SSLContext | None = None) -> None:
    listener = Listener(handler, ssl_context=tls)  # type: ignore[arg-type]
    await listener.start(host, port)
    lab.listeners.append(listener)


@pytest.fixture
async def lab(pki: PKI) -> AsyncIterator[Lab]:
    lab = Lab(tls_port=free_port(f"{NET}.2"), smtp_port=free_port(f"{NET}.6"))

    async def tls_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(65536), 5)

    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 5)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def alert(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 5)
        writer.write(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))
        await writer.drain()

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lab.excluded_connections.append(1)
        await asyncio.wait_for(reader.read(4096), 5)

    smtp = ScriptedServer(SMTP_SCRIPT, tls=pki["expiring-20d"].server_context(), host=f"{NET}.6", port=lab.smtp_port)
    await smtp.__aenter__()
    try:
        await serving(lab, f"{NET}.2", lab.tls_port, tls_answer, pki["good"].server_context())
        await serving(lab, f"{NET}.3", lab.tls_port, plain_http)
        await serving(lab, f"{NET}.4", lab.tls_port, silent)
        await serving(lab, f"{NET}.5", lab.tls_port, alert)
        await serving(lab, f"{NET}.9", lab.tls_port, counting)  # excluded (127.83.0.8/29)
        await serving(lab, f"{NET}.9", lab.smtp_port, counting)
        yield lab
    finally:
        await asyncio.gather(*(listener.close() for listener in lab.listeners))
        await smtp.__aexit__(None, None, None)


class Recorder:
    """The real probe, every pair it is asked for recorded (and asserted in scope)."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan
        self.pairs: list[tuple[str, int]] = []

    async def __call__(self, ip: str, port: int, protocol: str, timeout: float) -> PairResult:
        assert ip.startswith(f"{NET}.") and self.scan.covers(ip) and port in self.scan.ports
        self.pairs.append((ip, port))
        return await probe_pair(ip, port, protocol, timeout)


async def test_a_run_gives_every_pair_its_handshake_outcome_and_never_touches_exclude(lab: Lab) -> None:
    scan = lab.scan()
    assert scan.scope == 8 * 2  # .0-.7 (network address included) times two ports; .8/29 excluded
    probe = Recorder(scan)
    result = await run_scan(scan, probe=probe)

    assert result.scope == 16
    assert sorted(probe.pairs) == sorted((f"{NET}.{i}", p) for i in range(8) for p in scan.ports)
    assert lab.excluded_connections == []  # the excluded server was never connected to
    assert dict(result.outcomes) == {
        "certificate_found": 2,
        "not_tls": 1,
        "handshake_timeout": 1,
        "handshake_failed": 1,
        "connection_refused": 11,
    }
    by_pair = {(r.ip, r.port): r for r in result.accepted}
    assert set(by_pair) == {
        (f"{NET}.2", lab.tls_port),
        (f"{NET}.3", lab.tls_port),
        (f"{NET}.4", lab.tls_port),
        (f"{NET}.5", lab.tls_port),
        (f"{NET}.6", lab.smtp_port),
    }
    smtp = by_pair[(f"{NET}.6", lab.smtp_port)]
    assert (smtp.protocol, smtp.outcome) == ("smtp", Outcome.CERTIFICATE_FOUND)
    assert len(smtp.certificates) >= 1
    assert by_pair[(f"{NET}.3", lab.tls_port)].outcome is Outcome.NOT_TLS
    assert by_pair[(f"{NET}.4", lab.tls_port)].outcome is Outcome.HANDSHAKE_TIMEOUT


async def test_found_endpoints_become_jobs_with_the_scans_labels(lab: Lab, pki: PKI) -> None:
    scan = lab.scan()
    discovery = Discovery()
    result = await run_scan(scan)
    changes = discovery.record(scan, result, started=1000.0, finished=1001.0)

    assert len(changes.endpoints) == 5  # accepted connections
    assert len(changes.new) == 5 and changes.vanished == ()
    config = Config(defaults=Defaults(interval=60.0, timeout=5.0), discovery=(scan,))
    jobs = sorted(discovery.jobs(config), key=lambda j: j.target)
    assert [j.target for j in jobs] == [f"{NET}.2:{lab.tls_port}", f"{NET}.6:{lab.smtp_port}"]
    job = jobs[1]
    assert isinstance(job, DiscoveredEndpoint)
    assert (job.protocol, job.owner, job.profile, job.interval) == ("smtp", "netops", "default", 60.0)
    assert job.labels == (("discovery", "lab"), ("site", "lab"))
    assert job.key == endpoint_key("lab", "smtp", f"{NET}.6", lab.smtp_port)
    found = discovery.state("lab").endpoints[(f"{NET}.6", lab.smtp_port)]
    assert found.certificate is not None
    assert found.certificate.serial == pki["expiring-20d"].serial_hex
    assert found.outcome is Outcome.CERTIFICATE_FOUND
    silent = discovery.state("lab").endpoints[(f"{NET}.4", lab.tls_port)]
    assert (silent.certificate, silent.had_certificate) == (None, False)


def _pair(ip: str, port: int, outcome: Outcome, at: float, certs: tuple[bytes, ...] = ()) -> PairResult:
    return PairResult(ip=ip, port=port, protocol="tls", outcome=outcome, accepted=True, certificates=certs, at=at)


def test_an_endpoint_is_forgotten_after_forget_after_without_being_found(pki: PKI) -> None:
    scan = parse_scan(
        {
            "name": "f",
            "networks": [f"{NET}.0/30"],
            "ports": [4433],
            "rate": 100,
            "forget_after": "1h",
            "interval": "10s",
        }
    )
    discovery = Discovery()
    der = pki["good"].cert.public_bytes(Encoding.DER)

    def run(*pairs: PairResult) -> RunResult:
        return RunResult(scope=4, outcomes={}, accepted=pairs)

    found = _pair(f"{NET}.1", 4433, Outcome.CERTIFICATE_FOUND, 1000.0, (der,))
    discovery.record(scan, run(found), 1000.0, 1000.5)
    # Found again later without a certificate: still known, first_seen kept, still monitored.
    lost = _pair(f"{NET}.1", 4433, Outcome.NOT_TLS, 2000.0)
    discovery.record(scan, run(lost), 2000.0, 2000.5)
    e = discovery.state("f").endpoints[(f"{NET}.1", 4433)]
    assert (e.first_seen, e.last_seen, e.outcome, e.certificate, e.had_certificate) == (
        1000.0,
        2000.0,
        Outcome.NOT_TLS,
        None,
        True,
    )
    # Not found at all: kept until forget_after (1h) has passed since it was last seen.
    changes = discovery.record(scan, run(), 2000.0 + 3500, 2000.0 + 3600)
    assert changes.vanished == () and len(changes.endpoints) == 1
    changes = discovery.record(scan, run(), 2000.0 + 3601, 2000.0 + 3601)
    assert [v.ip for v in changes.vanished] == [f"{NET}.1"]
    assert discovery.state("f").endpoints == {}


def test_a_reload_keeps_what_was_found_and_drops_what_the_scan_no_longer_covers() -> None:
    scan = parse_scan({"name": "r", "networks": [f"{NET}.0/29"], "ports": [4433, 4434], "interval": "10s"})
    discovery = Discovery()
    pairs = (
        _pair(f"{NET}.1", 4433, Outcome.NO_CERTIFICATE, 1.0),
        _pair(f"{NET}.5", 4433, Outcome.NO_CERTIFICATE, 1.0),
        _pair(f"{NET}.1", 4434, Outcome.NO_CERTIFICATE, 1.0),
    )
    discovery.record(scan, RunResult(scope=16, outcomes={}, accepted=pairs), 1.0, 2.0)
    discovery.retain([scan])  # an unchanged reload
    assert len(discovery.state("r").endpoints) == 3
    narrower = parse_scan(
        {"name": "r", "networks": [f"{NET}.0/29"], "exclude": [f"{NET}.4/30"], "ports": [4433], "interval": "10s"}
    )
    discovery.retain([narrower])
    assert list(discovery.state("r").endpoints) == [(f"{NET}.1", 4433)]
    discovery.retain([])
    assert discovery.snapshot() == {}


def test_shards_split_the_scope_so_that_every_pair_is_scanned_exactly_once() -> None:
    scan = parse_scan({"name": "s", "networks": ["127.84.0.0/24"], "ports": [443, "8000-8002"], "interval": "10s"})
    keys = [endpoint_key("s", scan.protocol(p), ip, p) for ip in scan.iter_addresses() for p in scan.ports]
    assert len(keys) == scan.scope == 256 * 4
    shares = [[k for k in keys if Shard(i, 3).owns(k)] for i in range(3)]
    assert sorted(k for share in shares for k in share) == sorted(keys)
    assert all(len(share) > 200 for share in shares)  # each replica has a fair share


async def test_a_sharded_run_tries_only_its_share() -> None:
    scan = parse_scan({"name": "s", "networks": [f"{NET}.0/28"], "ports": [4433, 4434], "interval": "10s"})
    tried: list[list[tuple[str, int]]] = []
    for index in range(3):
        seen: list[tuple[str, int]] = []

        async def probe(
            ip: str, port: int, protocol: str, timeout: float, seen: list[tuple[str, int]] = seen
        ) -> PairResult:
            seen.append((ip, port))
            return PairResult(ip=ip, port=port, protocol=protocol, outcome=Outcome.CONNECTION_REFUSED, accepted=False)

        result = await run_scan(scan, owns=Shard(index, 3).owns, probe=probe)
        assert result.scope == len(seen) == result.outcomes.get("connection_refused", 0)
        tried.append(seen)
    every = sorted(p for share in tried for p in share)
    assert every == sorted((ip, p) for ip in scan.iter_addresses() for p in scan.ports)


async def test_the_token_bucket_holds_the_connection_rate() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(50.0, burst=5.0, clock=lambda: now[0], sleep=sleep)
    taken = 0
    while now[0] < 10.0:
        await bucket.take()
        taken += 1
    # 10 simulated seconds at 50/s, plus the first token: never more.
    assert 500 <= taken <= 502


async def test_a_run_opens_no_more_connections_than_the_rate_allows() -> None:
    scan = parse_scan({"name": "r", "networks": [f"{NET}.0/27"], "ports": [4433], "rate": 10, "interval": "10s"})
    now = [0.0]
    starts: list[float] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)  # the probes started meanwhile run at the simulated time they started

    async def probe(ip: str, port: int, protocol: str, timeout: float) -> PairResult:
        starts.append(now[0])
        return PairResult(ip=ip, port=port, protocol=protocol, outcome=Outcome.CONNECTION_REFUSED, accepted=False)

    bucket = TokenBucket(scan.rate, clock=lambda: now[0], sleep=sleep)
    await run_scan(scan, probe=probe, bucket=bucket)
    assert len(starts) == 32
    for second in range(4):  # within any one simulated second: at most the rate (plus the first token)
        assert sum(1 for s in starts if second <= s < second + 1) <= 11
    assert now[0] == pytest.approx(3.1, abs=0.01)  # 31 waits of 0.1 s


async def test_a_run_never_starts_twice_and_a_reload_keeps_the_schedule() -> None:
    scan = parse_scan({"name": "t", "networks": [f"{NET}.0/30"], "ports": [4433], "interval": "10s"})
    gate = asyncio.Event()
    in_flight, most = [0], [0]

    async def probe(ip: str, port: int, protocol: str, timeout: float) -> PairResult:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await gate.wait()
        in_flight[0] -= 1
        return PairResult(ip=ip, port=port, protocol=protocol, outcome=Outcome.CONNECTION_REFUSED, accepted=False)

    runs: list[str] = []

    async def on_run(s: Scan, changes: object) -> None:
        runs.append(s.name)

    discovery = Discovery()
    scheduler = DiscoveryScheduler(discovery, probe=probe, on_run=on_run, first_window=0)
    try:
        scheduler.apply([scan])
        await until(lambda: in_flight[0] == 4)
        assert scheduler.is_running("t") and scheduler.runs == {"t": 1}
        with pytest.raises(RuntimeError, match="already in flight"):
            await scheduler.run_once(scan)
        scheduler.apply([scan])  # an unchanged reload: the run in flight goes on, none is added
        for _ in range(20):
            await asyncio.sleep(0)
        assert scheduler.runs == {"t": 1}
        gate.set()
        await until(lambda: runs == ["t"])
        assert not scheduler.is_running("t") and scheduler.runs == {"t": 1}
        assert discovery.state("t").last_run is not None
        assert dict(discovery.state("t").last_run.outcomes) == {"connection_refused": 4}
    finally:
        gate.set()
        await scheduler.stop()


async def test_a_changed_scan_waits_for_the_cancelled_run_to_end() -> None:
    scan = parse_scan({"name": "c", "networks": [f"{NET}.0/30"], "ports": [4433], "interval": "10s"})
    changed = parse_scan({"name": "c", "networks": [f"{NET}.0/31"], "ports": [4433], "interval": "10s"})
    in_flight, most = [0], [0]
    release = asyncio.Event()

    async def probe(ip: str, port: int, protocol: str, timeout: float) -> PairResult:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            await release.wait()
        finally:
            in_flight[0] -= 1
        return PairResult(ip=ip, port=port, protocol=protocol, outcome=Outcome.CONNECTION_REFUSED, accepted=False)

    discovery = Discovery()
    scheduler = DiscoveryScheduler(discovery, probe=probe, first_window=0)
    try:
        scheduler.apply([scan])
        await until(lambda: in_flight[0] == 4)
        scheduler.apply([changed])  # the run in flight is cancelled; the new one waits for its end
        await until(lambda: scheduler.runs == {"c": 2} and in_flight[0] == 2)
        assert most[0] == 4  # the two runs never overlapped (4 + 2 would be 6)
        release.set()
        await until(lambda: discovery.state("c").last_run is not None)
        assert dict(discovery.state("c").last_run.outcomes) == {"connection_refused": 2}
    finally:
        release.set()
        await scheduler.stop()


# -- through the exporter: monitored like targets, on /metrics, the API and the inventory -----


@pytest.fixture
async def exporter_of(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[Exporter]]]:
    made: list[Exporter] = []

    async def make(text: str) -> Exporter:
        path = tmp_path / "config.yml"
        path.write_text(text)
        exporter = Exporter(str(path), listen="127.0.0.1:0")
        await exporter.startup()
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        await exporter.shutdown()


def lab_config(lab: Lab) -> str:
    return f"""
defaults: {{interval: 1m, timeout: 5s}}
discovery:
  - name: lab
    networks: [{NET}.0/28]
    exclude: [{NET}.8/29]
    ports: [{lab.tls_port}, {lab.smtp_port}]
    protocols: {{{lab.smtp_port}: smtp}}
    rate: 2000
    timeout: 1s
    interval: 1h
    owner: netops
    labels: {{site: lab}}
"""


async def test_discovered_endpoints_are_monitored_with_the_usual_series(lab: Lab, exporter_of, pki: PKI) -> None:
    exporter = await exporter_of(lab_config(lab))
    assert exporter.discoverer is not None and exporter.scheduler is not None
    await exporter.discoverer.stop()  # the test runs the scan itself (its first run is within 30 s)
    (scan,) = exporter.config.discovery
    await exporter.discoverer.run_once(scan)
    await probe_by_hand(exporter)  # the jobs the run added to the schedule, probed once each

    s = parse(b"".join(exporter.render_metrics()).decode())
    smtp = {"discovery": "lab", "target": f"{NET}.6:{lab.smtp_port}"}
    assert value(s, "tls_cert_days_until_expiry", **smtp) == pytest.approx(20, abs=0.01)
    assert value(s, "tls_probe_success", **smtp, protocol="smtp", owner="netops", site="lab") == 1
    good = {"discovery": "lab", "target": f"{NET}.2:{lab.tls_port}", "address": f"{NET}.2:{lab.tls_port}"}
    assert value(s, "tls_cert_days_until_expiry", **good) == pytest.approx(365, abs=0.01)
    assert states(s, "tls_handshake_outcome", "outcome", **good)["certificate_found"] == 1
    # No name was asked for: no host name to mismatch.
    assert "hostname_mismatch" not in states(s, "tls_chain_issue", "issue", **good)
    assert not [lbls for lbls, _ in s.get("tls_cert_hostname_match", []) if lbls.get("discovery")]
    assert {lbls["target"] for lbls, _ in s["tls_probe_success"]} == {good["target"], smtp["target"]}

    outcomes = states(s, "tls_discovery_endpoints", "outcome", discovery="lab")
    assert {k: v for k, v in outcomes.items() if v} == {
        "certificate_found": 2,
        "not_tls": 1,
        "handshake_timeout": 1,
        "handshake_failed": 1,
        "connection_refused": 11,
    }
    assert set(outcomes) == {o.value for o in Outcome}
    assert value(s, "tls_discovery_scope", discovery="lab") == 16
    assert value(s, "tls_discovery_last_run_success", discovery="lab") == 1
    last = discovery_state(exporter).last_run
    assert last is not None
    assert value(s, "tls_discovery_last_run_timestamp_seconds", discovery="lab") == pytest.approx(last.finished)
    assert value(s, "tls_discovery_run_duration_seconds", discovery="lab") == pytest.approx(last.duration)

    client = TestClient(TestServer(make_app(exporter)))
    await client.start_server()
    try:
        resp = await client.get("/api/v1/discovery")
        assert resp.status == 200
        body = await resp.json()
        (entry,) = body["scans"]
        assert (entry["name"], entry["scope"]) == ("lab", 16)
        assert entry["duration_seconds"] == pytest.approx(last.duration, abs=0.001)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["last_run"])
        by_address = {(e["address"], e["port"]): e for e in entry["endpoints"]}
        assert sorted(by_address) == sorted(
            [(f"{NET}.{i}", lab.tls_port) for i in (2, 3, 4, 5)] + [(f"{NET}.6", lab.smtp_port)]
        )
        smtp_entry = by_address[(f"{NET}.6", lab.smtp_port)]
        assert (smtp_entry["protocol"], smtp_entry["outcome"]) == ("smtp", "certificate_found")
        assert smtp_entry["certificate"]["serial"] == pki["expiring-20d"].serial_hex
        assert smtp_entry["certificate"]["fingerprint_sha256"] == pki["expiring-20d"].fingerprint
        assert smtp_entry["first_seen"] == smtp_entry["last_seen"]
        assert by_address[(f"{NET}.3", lab.tls_port)]["certificate"] is None
        assert by_address[(f"{NET}.3", lab.tls_port)]["outcome"] == "not_tls"
        assert (await client.get("/api/v1/discovery?x=1")).status == 400

        resp = await client.get("/api/v1/inventory", params={"discovery": "lab"})
        inventory = await resp.json()
        assert sorted(e["target"] for e in inventory) == sorted([good["target"], smtp["target"]])
        assert {e["labels"]["discovery"] for e in inventory} == {"lab"}
        assert {e["owner"] for e in inventory} == {"netops"}
        assert (await (await client.get("/api/v1/inventory", params={"discovery": "other"})).json()) == []
        page = await (await client.get("/", params={"discovery": "lab"})).text()
        assert page.count('found by <a href="?discovery=lab">discovery lab</a>') == 2  # each with its scan
        assert f"{NET}.6:{lab.smtp_port}" in page
    finally:
        await client.close()


def discovery_state(exporter: Exporter) -> ScanState:
    return exporter.discovery.state("lab")


async def test_a_reload_keeps_the_discovered_targets(lab: Lab, exporter_of, tmp_path: Path) -> None:
    exporter = await exporter_of(lab_config(lab))
    assert exporter.discoverer is not None and exporter.scheduler is not None
    (scan,) = exporter.config.discovery
    await exporter.discoverer.run_once(scan)
    keys = {j.key for j in exporter.scheduler.jobs(exporter.config)}
    assert len(keys) == 2
    # The scan changes (its interval): its next run is scheduled afresh, what it found stays.
    (tmp_path / "config.yml").write_text(lab_config(lab).replace("interval: 1h", "interval: 2h"))
    ok, message = await exporter.reload()
    assert (ok, message) == (True, "configuration reloaded")
    assert {j.key for j in exporter.scheduler.jobs(exporter.config)} == keys
    assert len(exporter.discovery.state("lab").endpoints) == 5
    # A reload that drops the scan stops monitoring what it found.
    (tmp_path / "config.yml").write_text("defaults: {interval: 1m}\n")
    assert (await exporter.reload())[0]
    assert exporter.scheduler.jobs(exporter.config) == []
    assert exporter.discovery.snapshot() == {}


async def test_the_discovery_email_counts_what_needs_attention(lab: Lab, exporter_of, pki: PKI) -> None:
    sink = SmtpSink().start()
    try:
        smtp = f"{{smarthost: '127.0.0.1:{sink.port}', from: tls@example.com, to: [pki@example.com], starttls: false}}"
        exporter = await exporter_of(
            lab_config(lab)
            + f"""
reports:
  - name: lab-mail
    period: discovery
    discovery: lab
    max_rows: 1
    smtp: {smtp}
  - name: every-scan-markdown
    period: discovery
    format: markdown
    smtp: {smtp}
"""
        )
        assert exporter.discoverer is not None
        await exporter.discoverer.stop()
        (scan,) = exporter.config.discovery
        await exporter.discoverer.run_once(scan)

        mails = sink.snapshot()
        assert len(mails) == 2  # one per report, each once per run
        subject = "4 endpoints need attention: 1 expired or expiring, 3 without a certificate"
        assert [str(m.message["Subject"]).strip() for m in mails] == [subject, subject]
        html, text = mails[0].html(), mails[0].text()
        assert mails[0].recipients == ["pki@example.com"]
        # Expiring: the SMTP endpoint's certificate has 20 days left (the warning tier is 30 days).
        assert f"{NET}.6:{lab.smtp_port}" in html and pki["expiring-20d"].serial_hex in html
        assert "Expired or expiring (1)" in text and "Without a certificate (3)" in text
        assert text.count("... and 2 more") == 1  # max_rows: 1 of the 3 without a certificate
        assert "Every certificate found (2)" in text and "... and 1 more" in text
        assert "Without a certificate (3)</h2>" in html and "... and 2 more" in html
        markdown = mails[1].text()
        assert "## Without a certificate (3)" in markdown and "... and" not in markdown  # no cap there
        for address in (f"{NET}.3:{lab.tls_port}", f"{NET}.4:{lab.tls_port}", f"{NET}.5:{lab.tls_port}"):
            assert address in markdown
        counted = states(
            parse(b"".join(exporter.render_metrics()).decode()),
            "tls_exporter_notifications_total",
            "result",
            channel="email",
        )
        assert counted == {"sent": 2, "error": 0}
    finally:
        sink.stop()


async def test_an_ipv6_scan_finds_the_endpoint_and_names_it_in_brackets(pki: PKI) -> None:
    port, closed = free_port("::1"), free_port("::1")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(65536), 5)

    listener = await Listener(answer, ssl_context=pki["good"].server_context()).start("::1", port)
    try:
        scan = parse_scan({"name": "v6", "networks": ["::1/128"], "ports": [port, closed], "interval": "10s"})
        assert scan.scope == 2
        discovery = Discovery()
        result = await run_scan(scan)
        assert dict(result.outcomes) == {"certificate_found": 1, "connection_refused": 1}
        discovery.record(scan, result, 1.0, 2.0)
        (job,) = discovery.jobs(Config(discovery=(scan,)))
        assert (job.target, job.protocol) == (f"[::1]:{port}", "tls")
        found = discovery.state("v6").endpoints[("::1", port)]
        assert found.certificate is not None and found.certificate.serial == pki["good"].serial_hex
    finally:
        await listener.close()


async def test_a_failed_run_is_recorded_as_failed_and_keeps_what_was_found() -> None:
    scan = parse_scan({"name": "x", "networks": [f"{NET}.0/30"], "ports": [4433], "interval": "10s"})
    calls = [0]

    async def probe(ip: str, port: int, protocol: str, timeout: float) -> PairResult:
        calls[0] += 1
        if calls[0] > 4:  # the second run: a bug on our side
            raise RuntimeError("boom")
        return PairResult(ip=ip, port=port, protocol=protocol, outcome=Outcome.NOT_TLS, accepted=True, at=time.time())

    discovery = Discovery()
    scheduler = DiscoveryScheduler(discovery, probe=probe, first_window=0)
    first = await scheduler.run_once(scan)
    assert first.run.ok and len(first.endpoints) == 4
    second = await scheduler.run_once(scan)
    assert (second.run.ok, second.run.error, second.run.scope) == (False, "RuntimeError: boom", 0)
    assert len(discovery.state("x").endpoints) == 4  # still known
    samples = parse(
        generate_latest(registry_with(DiscoveryCollector(discovery, lambda: (scan,)))).decode()  # type: ignore[no-untyped-call]
    )
    assert value(samples, "tls_discovery_last_run_success", discovery="x") == 0
    assert value(samples, "tls_discovery_scope", discovery="x") == 4  # the whole scope after a failed run
    assert value(samples, "tls_discovery_interval_seconds", discovery="x") == 10
    await scheduler.stop()


def registry_with(collector: DiscoveryCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
