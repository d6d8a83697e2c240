"""DANE and CAA through the real pipeline, against a real DNSSEC-signed zone.

Knot DNS serves the zones (``test.`` signed, ``unsigned.`` not, ``bogus.`` signed under a trust
anchor that does not match), Unbound validates (world.py). Loopback TLS servers (and one STARTTLS
SMTP server) serve leaves of the test PKI; an exporter configured with ``dns.resolver`` = Unbound
probes them, and the tests read its metrics and its verdict (the inventory; ``check`` once).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.resolver
import pytest
from helpers import Samples, parse, probe_by_hand
from pki import PKI, Issued
from servers import LoopbackServers

from exporter.app import Exporter
from exporter.certs.dane import record_for
from exporter.judge.dns import DnsError, DnsLookup
from exporter.outputs.inventory import InventoryEntry
from exporter.results import Step, StepStatus
from exporter.support.deadline import Deadline

from .world import DnsWorld, Zone

CA_DOMAIN = "ca.tls-exporter.test"  # the CAA domain of the test PKI's issuer (O=tls-exporter tests)


def tlsa(name: str, issued: Issued, usage: int, selector: int, matching: int) -> str:
    """A zone file line publishing ``issued``'s certificate (or key) at ``name``."""
    r = record_for(issued.cert, usage, selector, matching)
    return f"{name} TLSA {usage} {selector} {matching} {r.data.hex()}"


async def smtp_starttls(ctx: ssl.SSLContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An SMTP server up to STARTTLS, then the TLS handshake (RFC 3207)."""
    try:
        writer.write(b"220 mx1.test ESMTP\r\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), 5)
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                writer.write(b"250-mx1.test\r\n250 STARTTLS\r\n")
            elif verb == b"STARTTLS":
                writer.write(b"220 2.0.0 go ahead\r\n")
                await writer.drain()
                await writer.start_tls(ctx)
                await asyncio.wait_for(reader.read(1024), 5)
                return
            else:
                writer.write(b"502 5.5.2 what\r\n")
            await writer.drain()
    except (TimeoutError, OSError, ssl.SSLError):
        pass
    finally:
        writer.close()


@dataclass
class Lab:
    world: DnsWorld
    servers: LoopbackServers
    pki: PKI
    ports: dict[str, int]
    leaves: dict[str, Issued]
    roll_ctx: ssl.SSLContext
    directory: Path


@pytest.fixture(scope="module")
def lab(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("dnsfacts")
    names = {
        "ee": ("ee.test", "alias.test", "loop.test", "huge.test", "mx.bogus"),
        "ta": ("ta.test",),
        "full": ("full.test",),
        "wrong": ("wrong.test",),
        "roll-old": ("roll.test",),
        "roll-new": ("roll.test",),
        "roll-other": ("roll.test",),
        "unsigned": ("mx.unsigned",),
        "none": ("none.test",),
        "mx": ("mx1.test",),
        "permit": ("permit.test",),
        "forbid": ("forbid.test",),
        "child": ("www.parent.test",),
        "cnamehost": ("cnamehost.test", "fallback.test"),
    }
    leaves = {case: pki.issue(f"dnsfacts-{case}", sans=sans) for case, sans in names.items()}
    servers = LoopbackServers()
    try:
        ports = {
            case: servers.tls(leaves[case].server_context())
            for case in ("ee", "ta", "full", "wrong", "unsigned", "none", "permit", "forbid", "child", "cnamehost")
        }
        roll_ctx = leaves["roll-old"].server_context()
        ports["roll"] = servers.tls(roll_ctx)
        mx_ctx = leaves["mx"].server_context()

        async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await smtp_starttls(mx_ctx, reader, writer)

        ports["mx"] = servers.start(smtp)
        p = ports
        huge = [f"_{p['ee']}._tcp.huge TLSA 3 1 1 {i:064x}" for i in range(80)]
        signed = Zone(
            "test.",
            [
                tlsa(f"_{p['ee']}._tcp.ee", leaves["ee"], 3, 1, 1),
                tlsa(f"_{p['ta']}._tcp.ta", pki.intermediate, 2, 1, 1),
                tlsa(f"_{p['full']}._tcp.full", leaves["full"], 3, 0, 1),
                tlsa(f"_{p['wrong']}._tcp.wrong", leaves["ee"], 3, 1, 1),  # another server's key
                # A rollover: the new key's record is published before the switch, next to the old one.
                tlsa(f"_{p['roll']}._tcp.roll", leaves["roll-old"], 3, 1, 1),
                tlsa(f"_{p['roll']}._tcp.roll", leaves["roll-new"], 3, 1, 1),
                tlsa(f"_{p['mx']}._tcp.mx1", leaves["mx"], 3, 1, 1),
                f"_{p['ee']}._tcp.alias CNAME _{p['ee']}._tcp.ee.test.",
                # The host is a CNAME (validated): the final name's records come first ...
                "cnamehost CNAME realhost.test.",
                "realhost A 127.0.0.1",
                tlsa(f"_{p['cnamehost']}._tcp.realhost", leaves["cnamehost"], 3, 1, 1),
                tlsa(f"_{p['cnamehost']}._tcp.cnamehost", leaves["ee"], 3, 1, 1),  # not used: shadowed
                # ... and without records there, the host's own name's.
                "fallback CNAME realhost2.test.",
                "realhost2 A 127.0.0.1",
                tlsa(f"_{p['cnamehost']}._tcp.fallback", leaves["cnamehost"], 3, 1, 1),
                f"_{p['ee']}._tcp.loop CNAME a.loop.test.",
                f"a.loop CNAME _{p['ee']}._tcp.loop.test.",
                *huge,
                "none A 127.0.0.1",
                f'permit CAA 0 issue "{CA_DOMAIN}"',
                'permit CAA 0 issue "letsencrypt.org"',
                'permit CAA 0 iodef "mailto:security@permit.test"',
                'forbid CAA 0 issue "letsencrypt.org"',
                f'parent CAA 0 issue "{CA_DOMAIN}"',
                "www.parent A 127.0.0.1",
            ],
        )
        unsigned = Zone("unsigned.", [tlsa(f"_{p['unsigned']}._tcp.mx", leaves["unsigned"], 3, 1, 1)], signed=False)
        bogus = Zone("bogus.", [tlsa(f"_{p['ee']}._tcp.mx", leaves["ee"], 3, 1, 1)], anchor_wrong_key=True)
        world = DnsWorld(directory / "dns", [signed, unsigned, bogus]).start()
        try:
            yield Lab(world, servers, pki, ports, leaves, roll_ctx, directory)
        finally:
            world.stop()
    finally:
        servers.stop()


def config(
    lab: Lab, targets: list[tuple[str, str, int, str]], *, resolver: str | None = None, timeout: str = "8s"
) -> Path:
    """A configuration: (name, server_name, port, protocol) targets under a profile with dane and caa."""
    lines = [
        f"defaults: {{interval: 1h, timeout: {timeout}}}",
        "profiles:",
        "  default:",
        f"    trust: '{lab.pki.root.cert_path}'",
        "    revocation: none",
        "    scan_protocol_versions: false",
        "    dane: true",
        "    caa: true",
        f"dns: {{resolver: '{resolver or lab.world.resolver}'}}",
        f"caa_issuer_domains: {{'TLS-Exporter Tests': {CA_DOMAIN}}}",  # matched case-insensitively
        "targets:",
    ]
    for name, server_name, port, protocol in targets:
        lines.append(
            f"  - {{name: {name}, address: '127.0.0.1:{port}', protocol: {protocol}, server_name: {server_name}}}"
        )
    path = lab.directory / f"config-{len(list(lab.directory.glob('config-*')))}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Seen:
    samples: Samples
    entries: dict[str, InventoryEntry]

    def metric(self, metric: str, name: str, **labels: str) -> float:
        """The one sample of ``metric`` of the target ``name`` (with ``labels``)."""
        want = {"name": name, **labels}
        found = [v for lbls, v in self.samples.get(metric, []) if all(lbls.get(k) == w for k, w in want.items())]
        assert len(found) == 1, f"{metric}{want}: {len(found)} samples: {self.samples.get(metric)}"
        return found[0]

    def absent(self, metric: str, name: str) -> bool:
        return not [s for s in self.samples.get(metric, []) if s[0].get("name") == name]

    def codes(self, name: str) -> set[str]:
        return {f.code for f in self.entries[name].findings}


async def probe(path: Path) -> Seen:
    exporter = Exporter(str(path), listen="127.0.0.1:0")
    await exporter.startup()
    try:
        await probe_by_hand(exporter)
        samples = parse(exporter.renderer.render())
        entries = {e.name: e for e in exporter.inventory()}
    finally:
        await exporter.shutdown()
    return Seen(samples, entries)


CASES = [
    ("ee", "ee.test", "ee", "tls"),
    ("ta", "ta.test", "ta", "tls"),
    ("full", "full.test", "full", "tls"),
    ("wrong", "wrong.test", "wrong", "tls"),
    ("unsigned", "mx.unsigned", "unsigned", "tls"),
    ("none", "none.test", "none", "tls"),
    ("mx", "mx1.test", "mx", "smtp"),
    ("alias", "alias.test", "ee", "tls"),
    ("cnamehost", "cnamehost.test", "cnamehost", "tls"),
    ("fallback", "fallback.test", "cnamehost", "tls"),
    ("loop", "loop.test", "ee", "tls"),
    ("huge", "huge.test", "ee", "tls"),
    ("bogus", "mx.bogus", "ee", "tls"),
    ("permit", "permit.test", "permit", "tls"),
    ("forbid", "forbid.test", "forbid", "tls"),
    ("child", "www.parent.test", "child", "tls"),
]


@pytest.fixture(scope="module")
def seen(lab: Lab) -> Seen:
    path = config(lab, [(name, sn, lab.ports[port], proto) for name, sn, port, proto in CASES])
    return asyncio.run(probe(path))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("ee", "3 1 1: SHA-256 of the leaf's key"),
        ("ta", "2 1 1: SHA-256 of the intermediate's key, served in the chain"),
        ("full", "3 0 1: SHA-256 of the whole leaf"),
        ("mx", "3 1 1 of an SMTP server, after STARTTLS"),
        ("alias", "the TLSA name is a CNAME to the records of ee"),
        ("cnamehost", "the host is a CNAME: the records of its final name (the host's own do not match)"),
        ("fallback", "the host is a CNAME to a name without records: the host's own records"),
    ],
)
def test_a_matching_tlsa_record_in_a_signed_zone(seen: Seen, name: str, why: str) -> None:
    assert seen.metric("tls_dane_tlsa_records", name) == 1, why
    assert seen.metric("tls_dane_match", name) == 1, why
    assert seen.metric("tls_dane_dnssec_validated", name) == 1, why
    assert seen.entries[name].verdict == "ok", seen.entries[name].findings
    assert seen.entries[name].findings == ()


def test_a_record_of_another_key_is_a_critical_mismatch(seen: Seen) -> None:
    assert seen.metric("tls_dane_tlsa_records", "wrong") == 1
    assert seen.metric("tls_dane_match", "wrong") == 0
    assert seen.metric("tls_dane_dnssec_validated", "wrong") == 1
    entry = seen.entries["wrong"]
    assert entry.verdict == "critical"
    assert [(f.code, f.severity) for f in entry.findings] == [("dane_mismatch", "critical")]
    assert f"_{entry.location.rsplit(':', 1)[1]}._tcp.wrong.test." in entry.findings[0].text


def test_records_of_an_unsigned_zone_match_but_are_not_validated(seen: Seen) -> None:
    assert seen.metric("tls_dane_match", "unsigned") == 1
    assert seen.metric("tls_dane_dnssec_validated", "unsigned") == 0
    assert seen.entries["unsigned"].verdict == "warning"
    assert seen.codes("unsigned") == {"dane_not_validated"}
    # No CAA set on mx.unsigned or unsigned.: every CA may issue, and there is no tls_caa_info.
    assert seen.metric("tls_caa_permits_issuer", "unsigned") == 1
    assert seen.absent("tls_caa_info", "unsigned")


def test_no_tlsa_record_is_zero_records_and_no_match_series(seen: Seen) -> None:
    assert seen.metric("tls_dane_tlsa_records", "none") == 0
    assert seen.absent("tls_dane_match", "none")
    assert seen.metric("tls_dane_dnssec_validated", "none") == 1  # a validated denial
    assert seen.codes("none") == set()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("loop", "SERVFAIL"),  # Unbound refuses a CNAME loop itself (read_answer's own check: test_dns_answers.py)
        ("huge", "80 TLSA records at _"),  # over TCP: 80 records do not fit the 1232-byte UDP answer
        ("bogus", "SERVFAIL"),  # signed, but not with the key the resolver trusts
    ],
)
def test_a_lookup_that_fails_is_an_assessment_error_of_the_dns_step(seen: Seen, name: str, reason: str) -> None:
    entry = seen.entries[name]
    step = dict(entry.steps)[Step.DNS]
    assert step.status is StepStatus.ERROR
    assert reason in step.reason, step.reason
    assert seen.metric("tls_assessment_error", name, step="dns") == 1
    assert seen.absent("tls_dane_tlsa_records", name)
    assert seen.absent("tls_dane_match", name)
    assert not seen.codes(name) & {"dane_mismatch", "dane_not_validated", "caa_not_permitted"}
    assert dict(entry.steps)[Step.CHAIN].status is StepStatus.COMPLETED  # the other steps stand


def test_caa_naming_the_issuer_permits_it(seen: Seen) -> None:
    assert seen.metric("tls_caa_permits_issuer", "permit") == 1
    (labels,) = [lbls for lbls, v in seen.samples["tls_caa_info"] if lbls["name"] == "permit" and v == 1]
    assert (labels["issue"], labels["issuewild"], labels["iodef"]) == (
        f"{CA_DOMAIN},letsencrypt.org",
        "",
        "mailto:security@permit.test",
    )
    assert seen.codes("permit") == set()


def test_caa_naming_another_ca_forbids_the_issuer(seen: Seen) -> None:
    assert seen.metric("tls_caa_permits_issuer", "forbid") == 0
    (labels,) = [lbls for lbls, _ in seen.samples["tls_caa_info"] if lbls["name"] == "forbid"]
    assert labels["issue"] == "letsencrypt.org"
    entry = seen.entries["forbid"]
    assert entry.verdict == "warning"
    assert [(f.code, f.severity) for f in entry.findings] == [("caa_not_permitted", "warning")]
    assert "letsencrypt.org" in entry.findings[0].text and "tls-exporter tests" in entry.findings[0].text


def test_caa_of_the_parent_name_applies_to_a_name_without_its_own(seen: Seen) -> None:
    assert seen.metric("tls_caa_permits_issuer", "child") == 1
    (labels,) = [lbls for lbls, _ in seen.samples["tls_caa_info"] if lbls["name"] == "child"]
    assert labels["issue"] == CA_DOMAIN
    assert seen.codes("child") == set()


def test_a_key_rollover_with_both_records_published_matches_before_and_after(lab: Lab) -> None:
    path = config(lab, [("roll", "roll.test", lab.ports["roll"], "tls")])
    old = lab.leaves["roll-old"]
    lab.roll_ctx.load_cert_chain(old.chain_path, old.key_path)
    before = asyncio.run(probe(path))
    new = lab.leaves["roll-new"]
    lab.roll_ctx.load_cert_chain(new.chain_path, new.key_path)  # the switch: new handshakes get the new key
    after = asyncio.run(probe(path))
    other = lab.leaves["roll-other"]
    lab.roll_ctx.load_cert_chain(other.chain_path, other.key_path)  # a key no record names
    stray = asyncio.run(probe(path))
    assert before.entries["roll"].headline is not None and after.entries["roll"].headline is not None
    assert before.entries["roll"].headline.serial == old.serial_hex
    assert after.entries["roll"].headline.serial == new.serial_hex
    for seen in (before, after):
        assert seen.metric("tls_dane_tlsa_records", "roll") == 2
        assert seen.metric("tls_dane_match", "roll") == 1
        assert seen.codes("roll") == set()
    assert stray.metric("tls_dane_match", "roll") == 0
    assert stray.codes("roll") == {"dane_mismatch"}


def test_a_resolver_that_never_answers_fails_the_step_within_the_probes_deadline(lab: Lab) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read: every query is lost
    silent.bind(("127.0.0.1", 0))
    try:
        resolver = f"127.0.0.1:{silent.getsockname()[1]}"
        path = config(lab, [("ee", "ee.test", lab.ports["ee"], "tls")], resolver=resolver, timeout="3s")
        seen = asyncio.run(probe(path))
    finally:
        silent.close()
    entry = seen.entries["ee"]
    assert entry.outcome == "certificate_found"  # the probe itself is unharmed
    step = dict(entry.steps)[Step.DNS]
    assert step.status is StepStatus.ERROR
    assert "deadline" in step.reason or "no answer" in step.reason, step.reason
    assert seen.metric("tls_assessment_error", "ee", step="dns") == 1


def test_concurrent_lookups_of_one_name_share_one_query_and_the_ttl_keeps_it(lab: Lab) -> None:
    host, port = lab.world.resolver.rsplit(":", 1)
    servers = [(host, int(port))]
    name = f"_{lab.ports['ee']}._tcp.ee.test."

    async def run() -> tuple[int, int, list[bool]]:
        lookup = DnsLookup()
        answers = await asyncio.gather(*(lookup.tlsa(name, servers, Deadline(5)) for _ in range(8)))
        first = lookup.queries
        again = await lookup.tlsa(name, servers, Deadline(5))
        await lookup.close()
        return first, lookup.queries, [a.secure and len(a.records) == 1 for a in [*answers, again]]

    first, total, ok = asyncio.run(run())
    assert ok == [True] * 9
    assert (first, total) == (1, 1)  # one query for eight callers, none for the cached answer


def test_an_answer_too_large_for_udp_is_asked_again_over_tcp_then_refused(lab: Lab) -> None:
    host, port = lab.world.resolver.rsplit(":", 1)
    name = f"_{lab.ports['ee']}._tcp.huge.test."

    async def run() -> tuple[str, int]:
        lookup = DnsLookup()
        try:
            await lookup.tlsa(name, [(host, int(port))], Deadline(5))
        except DnsError as exc:
            return str(exc), lookup.queries
        finally:
            await lookup.close()
        return "", lookup.queries

    error, queries = asyncio.run(run())
    assert error == f"{name} TLSA: {host}:{port}: 80 TLSA records at {name}, more than 64"
    assert queries == 2  # UDP (truncated: 80 records do not fit 1232 bytes), then TCP


def test_check_shows_the_same_findings(lab: Lab) -> None:
    cases = [
        ("wrong", "wrong.test", "wrong"),
        ("unsigned", "mx.unsigned", "unsigned"),
        ("forbid", "forbid.test", "forbid"),
    ]
    path = config(lab, [(name, sn, lab.ports[port], "tls") for name, sn, port in cases])
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config.file", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    doc = json.loads(out.stdout)
    assert out.returncode == 2, out.stderr  # the worst: the critical DANE mismatch
    found = {
        t["name"]: ({f["code"] for f in t["results"][0]["findings"]}, t["results"][0]["verdict"])
        for t in doc["targets"]
    }
    assert found == {  # the verdict function of the exporter, so the same codes as the inventory above
        "wrong": ({"dane_mismatch"}, "critical"),
        "unsigned": ({"dane_not_validated"}, "warning"),
        "forbid": ({"caa_not_permitted"}, "warning"),
    }
    text = subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "dane_mismatch" in text and "caa_not_permitted" in text, text
    wrong = f"_{lab.ports['wrong']}._tcp.wrong.test."
    assert f"  DANE:      1 TLSA record(s) at {wrong}, DNSSEC-validated; the chain DOES NOT MATCH\n" in text
    assert "  CAA:       at forbid.test: issue letsencrypt.org; DOES NOT PERMIT the issuer\n" in text
    assert "  CAA:       no CAA set on the name or its parents (every CA may issue)\n" in text  # mx.unsigned
    facts = {t["name"]: t["results"][0]["dns"] for t in doc["targets"]}
    assert facts["wrong"] == {
        "tlsa_name": wrong,
        "tlsa_records": 1,
        "dane_match": False,
        "dnssec_validated": True,
        "caa_name": None,
        "caa": None,
        "caa_permits_issuer": True,
    }
    assert (facts["unsigned"]["dane_match"], facts["unsigned"]["dnssec_validated"]) == (True, False)
    assert facts["forbid"]["caa"] == {"issue": "letsencrypt.org", "issuewild": "", "iodef": ""}
    assert (facts["forbid"]["caa_name"], facts["forbid"]["caa_permits_issuer"]) == ("forbid.test", False)


def test_without_dns_resolver_the_systems_resolver_is_asked(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `dns.resolver`: the resolvers of the system's configuration (dnspython reads resolv.conf;
    here a stand-in names Unbound, so nothing leaves loopback)."""
    host, port = lab.world.resolver.rsplit(":", 1)

    class SystemConfiguration:
        def __init__(self) -> None:
            self.nameservers = [host]
            self.port = int(port)

    monkeypatch.setattr(dns.resolver, "Resolver", SystemConfiguration)
    name = f"_{lab.ports['ee']}._tcp.ee.test."

    async def run() -> tuple[int, bool]:
        lookup = DnsLookup()
        try:
            answer = await lookup.tlsa(name, [], Deadline(5))
        finally:
            await lookup.close()
        return len(answer.records), answer.secure

    assert asyncio.run(run()) == (1, True)
