"""Discovery against real servers: postfix, dovecot and slapd on loopback, found by a scan.

One scan of 127.0.0.1 over the servers' ports (their protocols given by `protocols:`, as ports
that are not the well-known ones), a port nobody listens on, and postfix's port without TLS:
every TLS port is found with the fixture PKI's ``good`` leaf through its real STARTTLS dialogue
or implicit TLS, the port without TLS says so, the closed one is refused.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pki import PKI

from exporter.config.discovery import parse_discovery
from exporter.config.model import Defaults
from exporter.config.reader import Reader
from exporter.sources.discovered import Discovery
from exporter.sources.discovery import run_scan
from exporter.support.errors import Outcome

from .realservers import RealServer

pytestmark = pytest.mark.interop

ROLES = {  # (server fixture, RealServer.ports role) -> the exporter's protocol
    ("real_postfix", "smtp"): "smtp",
    ("real_postfix", "submission"): "submission",
    ("real_postfix", "smtps"): "smtps",
    ("real_postfix", "smtp-notls"): "smtp",
    ("real_dovecot", "imap"): "imap",
    ("real_dovecot", "imaps"): "imaps",
    ("real_dovecot", "pop3"): "pop3",
    ("real_dovecot", "pop3s"): "pop3s",
    ("real_slapd", "ldap"): "ldap",
    ("real_slapd", "ldaps"): "ldaps",
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_scan_finds_the_real_servers_through_their_dialogues(request: pytest.FixtureRequest, pki: PKI) -> None:
    servers: dict[str, RealServer] = {name: request.getfixturevalue(name) for name, _ in ROLES}
    ports = {role: servers[name].ports[role] for name, role in ROLES}
    protocols = {ports[role]: protocol for (_, role), protocol in ROLES.items()}
    closed = closed_port()
    reader = Reader(Path("."))
    (scan,) = parse_discovery(
        reader,
        [{"name": "interop", "networks": ["127.0.0.1/32"], "ports": [*protocols, closed],
          "protocols": protocols, "timeout": "10s", "interval": "1h", "rate": 50}],
        Defaults(),
        (),
    )  # fmt: skip
    assert reader.errors == []
    result = await run_scan(scan)
    discovery = Discovery()
    discovery.record(scan, result, 0.0, 1.0)
    found = discovery.state("interop").endpoints
    logs = "\n".join(s.all_logs() for s in servers.values())
    for (_, role), protocol in ROLES.items():
        endpoint = found[("127.0.0.1", ports[role])]
        assert endpoint.protocol == protocol, role
        if role == "smtp-notls":
            assert endpoint.outcome is Outcome.STARTTLS_UNSUPPORTED, (role, logs)
            continue
        assert endpoint.outcome is Outcome.CERTIFICATE_FOUND, (role, endpoint, logs)
        assert endpoint.certificate is not None
        assert endpoint.certificate.serial == pki["good"].serial_hex, role
        assert endpoint.certificate.fingerprint_sha256 == pki["good"].fingerprint, role
    assert ("127.0.0.1", closed) not in found
    assert dict(result.outcomes) == {
        "certificate_found": len(ROLES) - 1,
        "starttls_unsupported": 1,
        "connection_refused": 1,
    }
