"""Probes and OCSP fetches through real proxies (tinyproxy: HTTP CONNECT; danted: SOCKS5), with the
targets reachable only through them (see ``proxy_world`` for how and why a network namespace)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from certs.posture_kit import aia, ocsp_response
from cryptography.x509 import ocsp
from pki import PKI, Issued
from proxy_world import (
    BACKEND,
    HTTP_PASSWORD,
    HTTP_USER,
    SOCKS_PASSWORD,
    SOCKS_USER,
    Danted,
    Namespace,
    Tinyproxy,
    add_socks_user,
    host_placeholder,
    relay,
)
from servers import LoopbackServers, closed_port

from exporter.certs.revocation import ocsp_request
from exporter.config import parse_config
from exporter.config.model import Config, Target
from exporter.judge.assess import Assessor
from exporter.judge.fetch import Fetcher, FetchError, fetch_via
from exporter.judge.scan import Scanner
from exporter.pipeline import Pipeline
from exporter.results import Result
from exporter.sources.tls import TLSSource
from exporter.support.proxyurl import parse_proxy_url


@dataclass
class World:
    pki: PKI
    leaf: Issued
    ns: Namespace
    servers: LoopbackServers
    tls_port: int  # an implicit-TLS server, inside the namespace
    smtp_port: int  # SMTP with STARTTLS, inside the namespace
    ocsp_port: int  # an OCSP responder, inside the namespace
    closed_port: int  # nothing listens there, inside the namespace
    tinyproxy: Tinyproxy
    tinyproxy_auth: Tinyproxy
    danted: Danted
    danted_auth: Danted
    urls: dict[str, str]  # proxy name -> proxy_url as the exporter is configured
    ocsp_hits: list[str]

    def config(self, proxy: str | None, *, address: str = "", protocol: str = "tls", timeout: str = "8s") -> Config:
        address = address or f"{BACKEND}:{self.tls_port if protocol == 'tls' else self.smtp_port}"
        via = f"    proxy_url: {self.urls.get(proxy, proxy)}\n" if proxy else ""
        text = (
            "profiles:\n  default:\n"
            f"    trust: {self.pki.root.cert_path}\n"
            "    scan_protocol_versions: false\n" + via + "targets:\n"
            f"  - {{address: '{address}', protocol: {protocol}, timeout: {timeout}, interval: 1m}}\n"
        )
        import yaml

        return parse_config(yaml.safe_load(text), base_dir=Path("/"))


@pytest.fixture(scope="module")
def world(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("proxies")
    workdir.chmod(0o755)  # danted's children run as nobody and write the log there
    ns = Namespace()
    servers = LoopbackServers()
    started: list[Tinyproxy | Danted] = []
    held = []
    try:
        ocsp_sock = ns.listen()
        ocsp_port = int(ocsp_sock.getsockname()[1])
        leaf = pki.issue(
            "proxied",
            sans=(BACKEND,),
            extensions=[aia(ocsp_url=f"http://{BACKEND}:{ocsp_port}/ocsp")],
        )
        hits: list[str] = []

        async def ocsp_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            path = head.split(" ")[1]
            hits.append(head.split("\r\n")[0])
            der = base64.b64decode(urllib.parse.unquote(path.rsplit("/", 1)[1]))
            req = ocsp.load_der_ocsp_request(der)
            body = ocsp_response(leaf.cert, pki.intermediate, "good" if req.serial_number else "unknown")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()

        servers.start(ocsp_handler, sock=ocsp_sock)

        async def tls_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with _quiet():
                await asyncio.wait_for(reader.read(65536), 10)

        tls_sock = ns.listen()
        tls_port = int(tls_sock.getsockname()[1])
        servers.start(tls_handler, sock=tls_sock, ssl_context=leaf.server_context())

        async def smtp_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with _quiet():
                writer.write(b"220 backend.proxied.test ESMTP\r\n")
                await reader.readline()  # EHLO
                writer.write(b"250-backend.proxied.test\r\n250 STARTTLS\r\n")
                await reader.readline()  # STARTTLS
                writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                await writer.drain()
                await writer.start_tls(leaf.server_context())
                await asyncio.wait_for(reader.read(65536), 10)

        smtp_sock = ns.listen()
        smtp_port = int(smtp_sock.getsockname()[1])
        servers.start(smtp_handler, sock=smtp_sock)
        # The same ports on the host: held so that a direct probe is refused, never answered by chance.
        held = [host_placeholder(p) for p in (tls_port, smtp_port)]

        add_socks_user(ns)
        ports = [tls_port, smtp_port]  # tinyproxy refuses CONNECT to any other port (the OCSP one too)
        tp = Tinyproxy(ns, workdir, ports)
        started.append(tp)
        tpa = Tinyproxy(ns, workdir, ports, auth=True)
        started.append(tpa)
        dn = Danted(ns, workdir)
        started.append(dn)
        dna = Danted(ns, workdir, auth=True)
        started.append(dna)
        r = {name: relay(servers, ns, p.port) for name, p in (("tp", tp), ("tpa", tpa), ("dn", dn), ("dna", dna))}
        urls = {
            "http": f"http://127.0.0.1:{r['tp']}",
            "http-auth": f"http://{HTTP_USER}:{HTTP_PASSWORD}@127.0.0.1:{r['tpa']}",
            "socks5": f"socks5://127.0.0.1:{r['dn']}",
            "socks5-auth": f"socks5://{SOCKS_USER}:{SOCKS_PASSWORD}@127.0.0.1:{r['dna']}",
        }
        yield World(
            pki, leaf, ns, servers, tls_port, smtp_port, ocsp_port, ns.free_port(), tp, tpa, dn, dna, urls, hits
        )
    finally:
        for proxy in started:
            proxy.stop()
        servers.stop()
        for sock in held:
            if sock is not None:
                sock.close()
        ns.close()


class _quiet:
    """Server handlers end however the client leaves; that is the client's business here."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (OSError, TimeoutError, asyncio.IncompleteReadError))  # type: ignore[arg-type]


async def probe(config: Config, *, assessor: Assessor | None = None) -> Result:
    pipeline = Pipeline(assessor=assessor)
    try:
        (result,) = await pipeline.probe(config.targets[0], config)
    finally:
        await pipeline.close()
    return result


PROXIES = ["http", "http-auth", "socks5", "socks5-auth"]


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("protocol", ["tls", "smtp"])
async def test_probe_through_the_proxy(world: World, proxy: str, protocol: str) -> None:
    result = await probe(world.config(proxy, protocol=protocol))
    port = world.tls_port if protocol == "tls" else world.smtp_port
    assert result.outcome.value == "certificate_found", result.detail
    assert result.location == f"{BACKEND}:{port}"  # the name: the proxy resolved it, not us
    assert result.report is not None
    assert result.report.leaf.serial == world.leaf.serial_hex
    assert f"not resolving {BACKEND}" in "\n".join(result.log)
    assert any("through the proxy" in line and "***" in line for line in result.log) == proxy.endswith("auth")
    seen = {"http": world.tinyproxy, "http-auth": world.tinyproxy_auth}.get(proxy)
    if seen is not None:
        assert f"CONNECT {BACKEND}:{port}" in seen.requests()
    else:
        log = (world.danted if proxy == "socks5" else world.danted_auth).requests()
        assert f"127.0.0.1.{port}" in log


async def test_direct_probes_fail(world: World) -> None:
    """Without the proxy the target cannot be reached: the name does not resolve, the port is shut."""
    by_name = await probe(world.config(None))
    assert (by_name.outcome.value, by_name.report) == ("dns_error", None)
    by_address = await probe(world.config(None, address=f"127.0.0.1:{world.tls_port}"))
    assert (by_address.outcome.value, by_address.report) == ("connection_refused", None)


@pytest.mark.parametrize(
    ("proxy", "port", "detail"),
    [
        ("http", "ocsp", "proxy refused CONNECT: 403 Access violation"),
        ("http-bad-password", "tls", "proxy refused CONNECT: 401 Unauthorized"),
        ("socks5", "closed", "SOCKS5 proxy: connection refused by the target (rep 5)"),
        ("socks5-bad-password", "tls", "user name or password refused"),
        ("socks5-no-credentials", "tls", "no acceptable method: it wants credentials"),
    ],
)
async def test_proxy_refusals(world: World, proxy: str, port: str, detail: str) -> None:
    urls = {
        **world.urls,
        "http-bad-password": world.urls["http-auth"].replace(HTTP_PASSWORD, "wrong"),
        "socks5-bad-password": world.urls["socks5-auth"].replace(SOCKS_PASSWORD, "wrong"),
        "socks5-no-credentials": world.urls["socks5-auth"].replace(f"{SOCKS_USER}:{SOCKS_PASSWORD}@", ""),
    }
    number = {"ocsp": world.ocsp_port, "tls": world.tls_port, "closed": world.closed_port}[port]
    result = await probe(world.config(urls[proxy], address=f"{BACKEND}:{number}"))
    assert result.outcome.value == "network_error"
    assert detail in result.detail
    assert "wrong" not in result.detail and "wrong" not in "\n".join(result.log)  # passwords never shown


async def test_unreachable_and_silent_proxies(world: World, servers: LoopbackServers) -> None:
    port = closed_port()
    result = await probe(world.config(f"http://127.0.0.1:{port}"))
    assert (result.outcome.value, result.detail) == (
        "network_error",
        f"proxy 127.0.0.1:{port} unreachable: connection refused",
    )
    silent = servers.silent()
    for scheme in ("http", "socks5"):
        result = await probe(world.config(f"{scheme}://127.0.0.1:{silent}", timeout="1s"))
        assert result.outcome.value == "connect_timeout"
        assert result.detail == f"connect to {BACKEND}:{world.tls_port} through the proxy 127.0.0.1:{silent} timed out"


@pytest.mark.parametrize("proxy", PROXIES)
async def test_ocsp_is_fetched_through_the_proxy(world: World, proxy: str) -> None:
    """A whole probe: the handshake and the leaf's OCSP responder both only reachable via the proxy."""
    before = len(world.ocsp_hits)
    assessor = Assessor(fetcher=Fetcher(timeout=5))
    result = await probe(world.config(proxy), assessor=assessor)
    assert result.outcome.value == "certificate_found", result.detail
    assert result.report is not None and result.report.assessment is not None
    assessment = result.report.assessment
    assert assessment.ocsp_status == "good", "\n".join(result.log)
    assert assessment.chain_valid is True
    assert len(world.ocsp_hits) == before + 1
    if proxy.startswith("http"):
        tp = world.tinyproxy if proxy == "http" else world.tinyproxy_auth
        assert f"GET http://{BACKEND}:{world.ocsp_port}/ocsp/" in tp.requests()
    else:
        dante = world.danted if proxy == "socks5" else world.danted_auth
        assert f"127.0.0.1.{world.ocsp_port}" in dante.requests()


def _ocsp_der(world: World) -> bytes:
    return ocsp_request(world.leaf.cert, world.pki.intermediate.cert)


async def test_environment_proxy_and_no_proxy(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://{BACKEND}:{world.ocsp_port}/ocsp"
    monkeypatch.setenv("HTTP_PROXY", world.urls["http"].removeprefix("http://"))  # no scheme: http
    monkeypatch.delenv("NO_PROXY", raising=False)
    fetcher = Fetcher(timeout=5)
    try:
        body = await fetcher.ocsp(url, _ocsp_der(world), now=world.pki.root.cert.not_valid_before_utc.timestamp())
        assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.GOOD
    finally:
        await fetcher.close()
    assert world.ocsp_hits[-1].startswith("GET /ocsp/")
    monkeypatch.setenv("NO_PROXY", "localhost,.proxied.test")  # so the fetch goes direct, and fails
    direct = Fetcher(timeout=5)
    try:
        with pytest.raises(FetchError) as failed:
            await direct.ocsp(url, _ocsp_der(world), now=0)
        assert f"Cannot connect to host {BACKEND}:{world.ocsp_port}" in str(failed.value)
        # The profile's proxy_url wins over the environment and its NO_PROXY.
        with fetch_via(parse_proxy_url(world.urls["socks5"])):
            body = await direct.ocsp(url, _ocsp_der(world), now=0)
        assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.GOOD
    finally:
        await direct.close()


async def test_version_scan_through_the_proxy(world: World) -> None:
    config = world.config("socks5")
    target = config.targets[0]
    assert isinstance(target, Target)
    scanner = Scanner(hello_timeout=5)
    try:
        opener = TLSSource().opener(target, f"{BACKEND}:{world.tls_port}", 5, config.profile("default"))
        scan = await scanner.scan_now(("tls", f"{BACKEND}:{world.tls_port}", BACKEND), opener)
    finally:
        await scanner.close()
    accepted = dict(scan.accepted)
    assert accepted["TLSv1.2"] is True and accepted["TLSv1.3"] is True


def test_check_command_through_the_proxy(world: World, tmp_path: Path) -> None:
    """`check` (a separate process, as an operator runs it): STARTTLS, OCSP and the version scan
    all through the SOCKS5 proxy with credentials."""
    config = tmp_path / "proxied.yml"
    config.write_text(
        f"profiles:\n  default:\n    trust: {world.pki.root.cert_path}\n    proxy_url: {world.urls['socks5-auth']}\n"
    )
    address = f"{BACKEND}:{world.smtp_port}"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "check",
            address,
            "--protocol",
            "smtp",
            "--config.file",
            str(config),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    doc = json.loads(out.stdout)
    (result,) = doc["targets"][0]["results"]
    assert (result["address"], result["outcome"]) == (address, "certificate_found"), out.stderr
    assert result["leaf"]["serial"] == world.leaf.serial_hex
    assert (result["chain_valid"], result["ocsp_status"]) == (True, "good")
    assert result["protocols_accepted"]["TLSv1.3"] is True
    assert result["protocols_accepted"]["TLSv1.0"] is False
    assert f"127.0.0.1.{world.ocsp_port}" in world.danted_auth.requests()
    assert SOCKS_PASSWORD not in out.stdout + out.stderr
