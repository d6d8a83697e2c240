"""What tls-exporter reports against the real server of each protocol equals what openssl sees.

For every (server, protocol, port): ``openssl s_client`` must see the fixture PKI's ``good``
leaf, and ``python -m exporter check 127.0.0.1:PORT --protocol P --server-name localhost --json``
must report ``certificate_found`` with the same serial and SHA-256 fingerprint. The exit code
of ``check`` is not asserted (the fixture CA is not trusted, so it is often 2).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pki import PKI

from .realservers import RealServer, require

pytestmark = pytest.mark.interop

PROBE_TIMEOUT = 60
ATTEMPTS = 3  # a real server that turns a client away under load is asked again


@dataclass(frozen=True)
class Case:
    fixture: str  # the session fixture in conftest.py that runs the server
    protocol: str  # the exporter's protocol name
    role: str  # the key of RealServer.ports
    starttls: str | None  # openssl s_client -starttls argument, None for implicit TLS

    @property
    def id(self) -> str:
        return f"{self.fixture.removeprefix('real_')}-{self.protocol}-{self.role}"


CASES = [
    Case("real_postfix", "smtp", "smtp", "smtp"),
    Case("real_postfix", "submission", "submission", "smtp"),
    Case("real_postfix", "smtps", "smtps", None),
    Case("real_dovecot", "imap", "imap", "imap"),
    Case("real_dovecot", "imaps", "imaps", None),
    Case("real_dovecot", "pop3", "pop3", "pop3"),
    Case("real_dovecot", "pop3s", "pop3s", None),
    Case("real_dovecot", "lmtp", "lmtp", "lmtp"),
    Case("real_vsftpd", "ftp", "ftp", "ftp"),
    Case("real_vsftpd_implicit", "ftps", "ftps", None),
    Case("real_slapd", "ldap", "ldap", "ldap"),
    Case("real_slapd", "ldaps", "ldaps", None),
    Case("real_postgres", "postgres", "postgres", "postgres"),
    Case("real_mariadb", "mysql", "mysql", "mysql"),
    Case("real_prosody", "xmpp", "xmpp", "xmpp"),
    Case("real_prosody", "xmpp-server", "xmpp-server", "xmpp-server"),
    Case("real_prosody", "tls", "xmpps", None),  # XEP-0368 direct TLS, probed as plain implicit TLS
    Case("real_kamailio", "sips", "sips", None),
    Case("real_dovecot", "sieve", "sieve", "sieve"),
    Case("real_innd", "nntp", "nntp", "nntp"),
    Case("real_nnrpd_tls", "nntps", "nntps", None),
    Case("real_ngircd", "ircs", "ircs", None),
    Case("real_mosquitto", "mqtts", "mqtts", None),
    Case("real_redis", "redis", "redis", None),
]

# servers configured without TLS: the exporter must say the upgrade is not offered
NEGATIVE = [
    Case("real_postfix", "smtp", "smtp-notls", "smtp"),
    Case("real_dovecot_notls", "imap", "imap", "imap"),
    Case("real_dovecot_notls", "pop3", "pop3", "pop3"),
    Case("real_dovecot_notls", "lmtp", "lmtp", "lmtp"),
    Case("real_vsftpd_notls", "ftp", "ftp", "ftp"),
    Case("real_slapd_notls", "ldap", "ldap", "ldap"),
    Case("real_dovecot_notls", "sieve", "sieve", "sieve"),
    Case("real_innd_notls", "nntp", "nntp", "nntp"),
]

PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _server(request: pytest.FixtureRequest, case: Case) -> RealServer:
    server = request.getfixturevalue(case.fixture)
    assert isinstance(server, RealServer)
    return server


def _s_client(port: int, starttls: str | None) -> tuple[x509.Certificate | None, str]:
    """One ``openssl s_client -showcerts``: the first certificate it prints (None: none), and its output."""
    openssl = require("openssl")
    cmd = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-showcerts"]
    if starttls:
        cmd += ["-starttls", starttls]
        if starttls in ("xmpp", "xmpp-server"):
            cmd += ["-xmpphost", "localhost"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT)
    output = f"$ {' '.join(cmd)}\n(rc {proc.returncode})\n" + (proc.stdout + b"\n" + proc.stderr).decode(
        errors="replace"
    )
    match = PEM_RE.search(proc.stdout)
    return (x509.load_pem_x509_certificate(match.group(0)) if match else None), output


def s_client_leaf(port: int, starttls: str | None) -> tuple[x509.Certificate, str]:
    """The first certificate ``openssl s_client -showcerts`` prints, and its whole output.

    A real server may turn a connection away under load (INN's nnrpd closed a few without a word
    on a loaded machine): openssl tries again, up to ATTEMPTS times; every attempt is shown."""
    outputs = []
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(1)
        leaf, output = _s_client(port, starttls)
        if leaf is not None:
            return leaf, output
        outputs.append(output)
    pytest.fail("openssl s_client printed no certificate:\n" + "\n".join(outputs), pytrace=False)


def exporter_check(port: int, protocol: str, *extra: str) -> tuple[dict[str, Any], str]:
    """Run the CLI once; return the result for 127.0.0.1:PORT and the raw output (for messages)."""
    cmd = [
        sys.executable,
        "-m",
        "exporter",
        "check",
        f"127.0.0.1:{port}",
        "--protocol",
        protocol,
        "--server-name",
        "localhost",
        "--json",
        *extra,
    ]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    raw = f"$ {' '.join(cmd)}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"check --json did not print JSON\n{raw}", pytrace=False)
    address = f"127.0.0.1:{port}"
    results = [r for t in report.get("targets", []) for r in t.get("results", []) if r.get("address") == address]
    assert len(results) == 1, f"expected exactly one result for {address}\n{raw}"
    return results[0], raw


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_openssl_sees_the_served_leaf(request: pytest.FixtureRequest, pki: PKI, case: Case) -> None:
    server = _server(request, case)
    port = server.ports[case.role]
    leaf, output = s_client_leaf(port, case.starttls)
    good = pki["good"]
    msg = f"{server.name} {case.protocol} on {port}\n{output[-3000:]}\n{server.all_logs()}"
    assert format(leaf.serial_number, "x") == good.serial_hex, msg
    assert leaf.fingerprint(hashes.SHA256()).hex() == good.fingerprint, msg


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_exporter_agrees_with_openssl(request: pytest.FixtureRequest, pki: PKI, case: Case) -> None:
    server = _server(request, case)
    port = server.ports[case.role]
    seen, _ = s_client_leaf(port, case.starttls)
    raws = []
    for _ in range(ATTEMPTS):
        result, raw = exporter_check(port, case.protocol)
        raws.append(raw)
        if result.get("outcome") == "certificate_found" or _s_client(port, case.starttls)[0] is not None:
            break  # a certificate, or a real disagreement: openssl sees one where the exporter did not
        time.sleep(1)  # the server turns every client away just now (load): both try again
    msg = f"{server.name} {case.protocol} on {port}\n" + "\n".join(raws)
    assert result.get("outcome") == "certificate_found", msg
    leaf = result.get("leaf") or {}
    assert leaf.get("serial") == format(seen.serial_number, "x") == pki["good"].serial_hex, msg
    assert leaf.get("fingerprint_sha256") == seen.fingerprint(hashes.SHA256()).hex() == pki["good"].fingerprint, msg


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda c: c.id)
def test_exporter_reports_starttls_unsupported(request: pytest.FixtureRequest, case: Case) -> None:
    server = _server(request, case)
    port = server.ports[case.role]
    result, raw = exporter_check(port, case.protocol)
    assert result.get("outcome") == "starttls_unsupported", f"{server.name} {case.protocol} on {port}\n{raw}"
    assert not result.get("leaf"), raw


def test_a_plaintext_redis_port_is_a_handshake_timeout(real_redis: RealServer) -> None:
    # Redis reads the ClientHello as the start of an inline command and waits for its end.
    port = real_redis.ports["redis-plain"]
    result, raw = exporter_check(port, "redis", "--timeout", "2")
    assert result.get("outcome") == "handshake_timeout", raw
    assert not result.get("leaf"), raw
