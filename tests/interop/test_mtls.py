"""Client certificates: the profile's `client_cert`/`client_key`, against a real nginx
(`ssl_verify_client on`) and `openssl s_server -Verify` (which refuses the handshake without one).

Where a server refuses us, its chain is still read (TLS 1.2 sends it before asking for ours;
TLS 1.3 completes our side and refuses right after) and reported with the outcome
`handshake_failed` plus the certificate series.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from certs.defects import build
from certs.posture_kit import OpenSSLServer
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from helpers import Samples, make_config, make_target, parse, value
from pki import PKI, Issued

from exporter.config import parse_config
from exporter.config.model import Profile
from exporter.metrics.render import StoreRenderer
from exporter.pipeline import Pipeline
from exporter.results import Result
from exporter.schedule.store import Store
from exporter.support.errors import ConfigError

from .realservers import RealServer, start_nginx

pytestmark = pytest.mark.interop
CLIENT_EXTENSIONS = [
    (x509.BasicConstraints(ca=False, path_length=None), True),
    (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
]


def client_of(pki: PKI, label: str) -> Issued:
    return build(pki, label, issuer=pki.intermediate, extensions=CLIENT_EXTENSIONS, sans=("probe.client.test",))


@pytest.fixture(scope="module")
def clients(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Profile]:
    """Profiles with a client certificate nginx trusts, and one from a CA it does not know."""
    trusted = client_of(pki, "Probe Client")
    stranger = client_of(PKI(tmp_path_factory.mktemp("stranger")), "Stranger Client")
    config = parse_config(
        {
            "profiles": {
                "trusted": {"client_cert": str(trusted.chain_path), "client_key": str(trusted.key_path)},
                "stranger": {"client_cert": str(stranger.chain_path), "client_key": str(stranger.key_path)},
            }
        },
        base_dir=Path.cwd(),
    )
    return {"none": Profile(), "trusted": config.profile("trusted"), "stranger": config.profile("stranger")}


@pytest.fixture(scope="module", params=["TLSv1.2", "TLSv1.3"])
def nginx(request: pytest.FixtureRequest, pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    d = tmp_path_factory.mktemp(f"nginx-{request.param}")
    server = start_nginx(d, pki["good"].chain_path, pki["good"].key_path, pki.root.cert_path, protocols=request.param)
    try:
        yield server
    finally:
        server.stop()


async def probe(port: int, profile: Profile) -> tuple[Result, Samples]:
    target = make_target(port, protocol="tls")
    config = make_config(target, profiles=[profile])
    (result,) = await Pipeline().probe(target, config)
    store = Store()
    store.apply_config(config.targets)
    store.record(target, [result])
    return result, parse(StoreRenderer(store, lambda: config).render())


def assert_refused_but_read(result: Result, s: Samples, pki: PKI) -> None:
    assert result.outcome.value == "handshake_failed", result.detail
    assert result.report is not None and result.report.leaf.serial == pki["good"].serial_hex
    assert value(s, "tls_probe_success") == 0
    assert value(s, "tls_handshake_outcome", outcome="handshake_failed") == 1
    assert value(s, "tls_cert_info", serial=pki["good"].serial_hex) == 1  # the certificate series show
    assert value(s, "tls_cert_days_until_expiry") > 300


async def test_nginx_with_the_trusted_client_certificate(nginx: RealServer, pki: PKI, clients: Any) -> None:
    result, s = await probe(nginx.ports["https"], clients["trusted"])
    assert result.outcome.value == "certificate_found", result.detail
    assert value(s, "tls_probe_success") == 1
    assert value(s, "tls_cert_info", serial=pki["good"].serial_hex) == 1


@pytest.mark.parametrize("client", ["none", "stranger"])
async def test_nginx_without_an_acceptable_client_certificate(
    nginx: RealServer, pki: PKI, clients: Any, client: str
) -> None:
    # nginx completes the TLS handshake whatever the client presents and refuses at the HTTP level
    # (400 "No required SSL certificate was sent" / "The SSL certificate error"): the TLS probe
    # succeeds and reads the server's certificate, in TLS 1.2 and 1.3 alike.
    result, s = await probe(nginx.ports["https"], clients[client])
    assert result.outcome.value == "certificate_found", result.detail
    assert value(s, "tls_cert_info", serial=pki["good"].serial_hex) == 1


@pytest.mark.parametrize("flag", ["-tls1_2", "-tls1_3"])
async def test_a_server_that_requires_a_client_certificate(pki: PKI, tmp_path: Path, clients: Any, flag: str) -> None:
    with OpenSSLServer(
        pki["good"], flag, "-Verify", "1", "-CAfile", str(pki.root.cert_path), workdir=tmp_path
    ) as server:
        result, s = await probe(server.port, clients["none"])
    assert_refused_but_read(result, s, pki)


def test_client_certificate_keys_are_checked_when_the_config_loads(pki: PKI, tmp_path: Path) -> None:
    cert = client_of(pki, "Checked Client").chain_path
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"profiles": {"mtls": {"client_cert": str(cert), "client_key": str(pki["good"].key_path)}}},
            base_dir=tmp_path,
        )
    (message,) = info.value.errors
    assert message.startswith(f"profiles.mtls.client_cert: cannot use '{cert}' with '{pki['good'].key_path}': ")
    with pytest.raises(ConfigError) as half:
        parse_config({"profiles": {"mtls": {"client_cert": str(cert)}}}, base_dir=tmp_path)
    assert half.value.errors == ["profiles.mtls: give both client_cert and client_key, or neither"]
