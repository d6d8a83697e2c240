"""`--web.config.file` on the real exporter process: TLS, basic auth and headers, tried with real
TLS clients (Python's ssl through http.client, and curl) on loopback.

bcrypt hashes are made here (cost 4, the minimum, so the tests stay quick).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from e2e.harness import ManagedProcess, free_port, require_binary, wait_for
from helpers import parse, value
from pki import PKI

from ops.webkit import Reply, WebPKI, client_context, make_web_pki, request

USER, PASSWORD = "prometheus", "correct horse battery staple"
HEADERS = {"x-frame-options": "deny", "x-content-type-options": "nosniff", "strict-transport-security": "max-age=300"}
# Every route the exporter serves, with the status an authorised request gets.
ROUTES: list[tuple[str, str, int]] = [
    ("GET", "/metrics", 200),
    ("GET", "/probe?target=127.0.0.1:1&protocol=tls", 200),  # a refused probe still answers 200
    ("GET", "/", 200),
    ("GET", "/-/healthy", 200),
    ("GET", "/-/ready", 200),
    ("GET", "/sd", 200),
    ("POST", "/-/reload", 200),
    ("GET", "/no-such-page", 404),
]


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def _serve(tmp: Path, web_config: str, *extra: str) -> tuple[ManagedProcess, int]:
    config, web = tmp / "config.yml", tmp / "web.yml"
    config.write_text("probe: {allow: ['127.0.0.0/8']}\n")
    web.write_text(web_config)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "exporter",
        f"--config.file={config}",
        f"--web.config.file={web}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        *extra,
    ]
    return ManagedProcess("exporter", argv, tmp), port


def _wait_up(proc: ManagedProcess, port: int, ctx: ssl.SSLContext, auth: tuple[str, str] | None) -> None:
    wait_for(
        lambda: request(port, "/-/ready", ctx=ctx, auth=auth).status == 200,
        timeout=30,
        what="exporter ready over TLS",
        proc=proc,
    )


@pytest.fixture(scope="module")
def web(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> WebPKI:
    return make_web_pki(pki, tmp_path_factory.mktemp("web-pki"))


@pytest.fixture(scope="module")
def guarded(web: WebPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One exporter with TLS, one basic-auth user and three headers; yields its port."""
    tmp = tmp_path_factory.mktemp("guarded")
    proc, port = _serve(
        tmp,
        f"tls_server_config: {{cert_file: '{web.server_cert}', key_file: '{web.server_key}'}}\n"
        f"basic_auth_users:\n  {USER}: '{_hash(PASSWORD)}'\n"
        "http_server_config:\n  headers:\n"
        "    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=300\n",
    )
    try:
        _wait_up(proc, port, client_context(web), (USER, PASSWORD))
        yield port
    finally:
        proc.stop()


def _assert_refused(reply: Reply) -> None:
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == 'Basic realm="tls-exporter", charset="UTF-8"'
    assert reply.body == "Unauthorized\n"
    for name, want in HEADERS.items():
        assert reply.headers[name] == want


@pytest.mark.parametrize(("method", "path", "status"), ROUTES)
def test_every_route_refuses_missing_or_wrong_credentials(
    guarded: int, web: WebPKI, method: str, path: str, status: int
) -> None:
    ctx = client_context(web)
    for auth in (None, (USER, "wrong"), ("nobody", PASSWORD), (USER.upper(), PASSWORD)):
        _assert_refused(request(guarded, path, ctx=ctx, auth=auth, method=method))
    ok = request(guarded, path, ctx=ctx, auth=(USER, PASSWORD), method=method)
    assert ok.status == status
    for name, want in HEADERS.items():
        assert ok.headers[name] == want


def test_metrics_over_tls_with_auth(guarded: int, web: WebPKI) -> None:
    reply = request(guarded, "/metrics", ctx=client_context(web), auth=(USER, PASSWORD))
    samples = parse(reply.body)
    assert value(samples, "tls_exporter_shard", index="0", count="1") == 1
    assert value(samples, "process_open_fds") > 0
    assert value(samples, "python_info", implementation="CPython") == 1


def test_plain_http_to_the_tls_port_gets_no_metrics(guarded: int) -> None:
    with pytest.raises(ConnectionError):  # the TLS server closes a connection that does not speak TLS
        request(guarded, "/metrics", ctx=None, auth=(USER, PASSWORD))


def test_curl_with_and_without_credentials(guarded: int, web: WebPKI) -> None:
    curl = require_binary("curl", "curl")
    url = f"https://127.0.0.1:{guarded}/metrics"
    base = [curl, "-sS", "--cacert", str(web.root), "-o", "/dev/null", "-D", "-", "-w", "%{http_code}"]
    good = subprocess.run([*base, "-u", f"{USER}:{PASSWORD}", url], capture_output=True, text=True, timeout=30)
    assert good.returncode == 0 and good.stdout.endswith("200"), good.stderr
    assert "x-frame-options: deny" in good.stdout.lower()
    bad = subprocess.run([*base, "-u", f"{USER}:nope", url], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 0 and bad.stdout.endswith("401"), bad.stderr
    assert 'www-authenticate: basic realm="tls-exporter"' in bad.stdout.lower()


@pytest.fixture(scope="module")
def mtls(web: WebPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One exporter that requires a client certificate signed by the client CA, and no basic auth."""
    tmp = tmp_path_factory.mktemp("mtls")
    proc, port = _serve(
        tmp,
        "tls_server_config:\n"
        f"  cert_file: '{web.server_cert}'\n  key_file: '{web.server_key}'\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: '{web.client_ca}'\n",
        "--web.telemetry-path=/internal/metrics",
        "--shard=2/3",
    )
    try:
        _wait_up(proc, port, client_context(web, with_client_cert=True), None)
        yield port
    finally:
        proc.stop()


def test_client_without_certificate_is_refused(mtls: int, web: WebPKI) -> None:
    # With TLS 1.3 the client's handshake completes before the server has judged its (missing)
    # certificate: the refusal is the server closing the connection before any HTTP answer.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request(mtls, "/-/healthy", ctx=client_context(web))
    # The same server answers a client that presents its certificate.
    assert request(mtls, "/-/healthy", ctx=client_context(web, with_client_cert=True)).body == "OK\n"


def test_client_with_certificate_of_another_ca_is_refused(mtls: int, web: WebPKI, pki: PKI) -> None:
    ctx = client_context(web)
    other = pki["good"]  # signed by the server PKI, not the client CA
    ctx.load_cert_chain(other.chain_path, other.key_path)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request(mtls, "/-/healthy", ctx=ctx)


def test_client_with_certificate_gets_metrics_at_the_telemetry_path(mtls: int, web: WebPKI) -> None:
    ctx = client_context(web, with_client_cert=True)
    reply = request(mtls, "/internal/metrics", ctx=ctx)
    assert reply.status == 200
    assert value(parse(reply.body), "tls_exporter_shard", index="2", count="3") == 1
    assert request(mtls, "/metrics", ctx=ctx).status == 404


def test_curl_needs_the_client_certificate(mtls: int, web: WebPKI) -> None:
    curl = require_binary("curl", "curl")
    url = f"https://127.0.0.1:{mtls}/-/healthy"
    base = [curl, "-sS", "--cacert", str(web.root), "-w", "%{http_code}"]
    without = subprocess.run([*base, url], capture_output=True, text=True, timeout=30)
    assert without.returncode != 0 and "200" not in without.stdout
    cert = ["--cert", str(web.client_cert), "--key", str(web.client_key)]
    with_cert = subprocess.run([*base, *cert, url], capture_output=True, text=True, timeout=30)
    assert with_cert.returncode == 0 and with_cert.stdout == "OK\n200", with_cert.stderr


def test_bad_web_config_stops_the_start_with_its_errors(tmp_path: Path) -> None:
    proc, _ = _serve(tmp_path, "basic_auth_users: {alice: secret}\n")
    try:
        assert proc.wait(30) == 1
        assert f"{tmp_path / 'web.yml'}: basic_auth_users.alice: not a bcrypt hash" in proc.stderr()
    finally:
        proc.stop()


def test_config_check_reports_web_config_errors_too(tmp_path: Path) -> None:
    config, web = tmp_path / "config.yml", tmp_path / "web.yml"
    config.write_text("targets: [{address: '127.0.0.1:443', protocl: tls}]\n")
    web.write_text("tls_server_config: {cert_file: nope.crt, key_file: nope.key}\n")
    argv = [sys.executable, "-m", "exporter", "--config.check", f"--config.file={config}", f"--web.config.file={web}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{config}:1:38: targets[0]: unknown key 'protocl' (did you mean 'protocol'?)",
        f"{config}: 1 error(s)",
        f"{web}: tls_server_config.cert_file: cannot read '{tmp_path}/nope.crt': No such file or directory",
        f"{web}: tls_server_config.key_file: cannot read '{tmp_path}/nope.key': No such file or directory",
        f"{web}: 2 error(s)",
    ]


def test_config_check_accepts_a_good_web_config(tmp_path: Path, web: WebPKI) -> None:
    config, web_file = tmp_path / "config.yml", tmp_path / "web.yml"
    config.write_text("")
    web_file.write_text(
        f"tls_server_config: {{cert_file: '{web.server_cert}', key_file: '{web.server_key}', "
        f"client_auth_type: VerifyClientCertIfGiven, client_ca_file: '{web.client_ca}'}}\n"
        f"basic_auth_users: {{a: '{_hash('x')}', b: '{_hash('y')}'}}\n"
    )
    argv = [
        sys.executable,
        "-m",
        "exporter",
        "--config.check",
        f"--config.file={config}",
        f"--web.config.file={web_file}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"{web_file}: OK (TLS, client certificates VerifyClientCertIfGiven, 2 basic auth users, 0 headers)"
    )


def test_reload_keeps_serving_tls(guarded: int, web: WebPKI) -> None:
    # The listener and its context outlive a configuration reload.
    ctx = client_context(web)
    assert request(guarded, "/-/reload", ctx=ctx, auth=(USER, PASSWORD), method="POST").status == 200
    assert request(guarded, "/-/healthy", ctx=ctx, auth=(USER, PASSWORD)).body == "OK\n"


def _served_serial(port: int, web: WebPKI) -> int:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_context(web).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic, as cert-manager or certbot's deploy hooks do


def test_renewed_certificate_is_served_without_restart(web: WebPKI, pki: PKI, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(web.server_cert, cert)
    shutil.copy(web.server_key, key)
    proc, port = _serve(tmp_path, f"tls_server_config: {{cert_file: '{cert}', key_file: '{key}'}}\n")
    try:
        _wait_up(proc, port, client_context(web), None)
        assert _served_serial(port, web) == pki["web-server"].cert.serial_number
        renewed = pki.issue("web-server-renewed")
        _replace(key, renewed.key_path.read_bytes())
        _replace(cert, renewed.chain_path.read_bytes())
        wait_for(
            lambda: _served_serial(port, web) == renewed.cert.serial_number,
            timeout=30,
            what="the renewed certificate served",
            proc=proc,
        )
        # A half-done rotation (a certificate without its key) keeps the renewed pair in service.
        _replace(cert, pki["good"].chain_path.read_bytes())
        for _ in range(3):
            assert _served_serial(port, web) == renewed.cert.serial_number
        assert "TLS certificate files changed but do not load; serving the previous ones" in proc.stderr()
        assert request(port, "/-/healthy", ctx=client_context(web)).body == "OK\n"
    finally:
        proc.stop()
