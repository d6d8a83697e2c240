"""The web config file: every invalid fixture is rejected with exactly its errors, in order; a
full valid file gives the values it says; bcrypt variants written by other tools are accepted.

Paths inside messages are written ``<DIR>`` (where the fixture was copied, beside the generated
certificates) and ``<FILE>`` (the fixture itself).
"""

# ruff: noqa: E501  (the table holds whole error lines, verbatim)
from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import bcrypt
import pytest
from pki import PKI

from exporter.support.errors import ConfigError
from exporter.web.webconfig import ClientAuth, load_web_config
from ops.webkit import WebPKI, make_web_pki

FIXTURES = Path(__file__).parent.parent / "data" / "webconfigs"
CLIENT_AUTH = (
    "NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
)

EXPECTED: dict[str, list[str]] = {
    "invalid-top-level.yml": [
        "(top level): unknown key 'tls_server_confg'",
        "rate_limit: not supported by tls-exporter",
    ],
    "invalid-not-mapping.yml": ["(top level): expected a mapping"],
    "invalid-syntax.yml": ["<FILE>:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'"],
    "invalid-duplicate-key.yml": ["<FILE>:2:1: invalid YAML: duplicate key 'basic_auth_users'"],
    "invalid-tls-values.yml": [
        "tls_server_config.cipher_suites: not supported by tls-exporter",
        "tls_server_config: unknown key 'certfile'",
        f"tls_server_config.client_auth_type: unknown client_auth_type 'RequireClientCert' (one of {CLIENT_AUTH})",
        "tls_server_config.min_version: unknown version 'TLS14' (one of TLS10, TLS11, TLS12, TLS13)",
        "tls_server_config.max_version: unknown version '1.2' (one of TLS10, TLS11, TLS12, TLS13)",
    ],
    "invalid-tls-missing.yml": [
        "tls_server_config: missing required key 'key_file'",
        "tls_server_config.cert_file: cannot read '<DIR>/missing.crt': No such file or directory",
        "tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file (the CA that signs client certificates)",
    ],
    "invalid-tls-unverified.yml": [
        "tls_server_config.client_auth_type: RequireAnyClientCert is not supported: Python's TLS verifies every client "
        "certificate it asks for; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file",
    ],
    "invalid-tls-ca-without-policy.yml": [
        "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert (set the policy to use it)",
    ],
    "invalid-tls-versions.yml": ["tls_server_config: min_version TLS13 is above max_version TLS12"],
    "invalid-key-mismatch.yml": [
        "tls_server_config: cannot use cert_file '<DIR>/server.crt' with key_file '<DIR>/other.key': the key does not belong to the certificate",
    ],
    "invalid-not-pem.yml": [
        "tls_server_config: cannot use cert_file '<DIR>/server.key' with key_file '<DIR>/server.key': not a PEM certificate and key",
    ],
    "invalid-bad-ca.yml": [
        "tls_server_config.client_ca_file: '<DIR>/server.key' holds no usable CA certificate: no certificate or crl found",
    ],
    "invalid-basic-auth.yml": [
        "basic_auth_users.alice: not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost and 53 characters)",
        "basic_auth_users.bob: not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost and 53 characters)",
        "basic_auth_users: invalid user name 'carol:x' (non-empty, without ':')",
        "basic_auth_users.dave: not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost and 53 characters)",
        "basic_auth_users.erin: not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost and 53 characters)",
    ],
    "invalid-users-not-mapping.yml": ["basic_auth_users: expected a mapping of user name to bcrypt hash"],
    "invalid-headers.yml": [
        "http_server_config: unknown key 'colour'",
        "http_server_config.http2: expected true or false",
        "http_server_config.headers.X-Frame-Options: invalid value 'allow' (one of deny, sameorigin)",
        "http_server_config.headers: header 'X-Powered-By' cannot be configured (one of Strict-Transport-Security, "
        "X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy)",
        "http_server_config.headers.X-Content-Type-Options: invalid value 'sniff' (one of nosniff)",
        "http_server_config.headers.Strict-Transport-Security: expected a non-empty string",
    ],
}


@pytest.fixture(scope="module")
def web(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> WebPKI:
    return make_web_pki(pki, tmp_path_factory.mktemp("webconfigs"))


def test_every_fixture_is_in_the_table() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.yml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_web_config_reports_exact_errors(name: str, web: WebPKI) -> None:
    path = web.dir / name
    shutil.copy(FIXTURES / name, path)
    with pytest.raises(ConfigError) as info:
        load_web_config(path)
    want = [
        line.replace("<FILE>", str(path))  # a YAML error: file:line:column
        if line.startswith("<FILE>:") and not line.startswith("<FILE>: ")
        else f"{path}: " + line.replace("<FILE>: ", "").replace("<DIR>", str(web.dir))
        for line in EXPECTED[name]
    ]
    assert info.value.errors == want


def test_missing_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_web_config(tmp_path / "web.yml")
    assert info.value.errors == [f"{tmp_path / 'web.yml'}: cannot read: No such file or directory"]


def test_full_valid_file_gives_its_values(web: WebPKI) -> None:
    digest = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    htpasswd_style = digest.replace("$2b$", "$2y$", 1)  # what `htpasswd -B` writes
    path = web.dir / "web.yml"
    path.write_text(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"  # relative to the web config's directory
        f"  key_file: {web.server_key}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: client-ca.crt\n"
        "  min_version: TLS13\n"
        "basic_auth_users:\n"
        f"  alice: {digest}\n"
        f"  bob: '{htpasswd_style}'\n"
        "http_server_config:\n"
        "  http2: false\n"
        "  headers:\n"
        "    x-frame-options: deny\n"
        "    Strict-Transport-Security: max-age=31536000\n"
    )
    config = load_web_config(path)
    assert config.tls is not None
    assert config.tls.cert_file == str(web.server_cert)
    assert config.tls.client_ca_file == str(web.client_ca)
    assert config.tls.client_auth_type is ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT
    assert config.tls.min_version == "TLS13"
    assert dict(config.users) == {"alice": digest.encode(), "bob": htpasswd_style.encode()}
    assert config.headers == (("X-Frame-Options", "deny"), ("Strict-Transport-Security", "max-age=31536000"))
    ctx = config.ssl_context()
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert bcrypt.checkpw(b"s3cret", config.users["bob"])


@pytest.mark.parametrize(
    ("policy", "mode"),
    [("NoClientCert", ssl.CERT_NONE), ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL)],
)
def test_client_auth_policies_map_to_verify_modes(policy: str, mode: ssl.VerifyMode, web: WebPKI) -> None:
    path = web.dir / f"web-{policy}.yml"
    ca = "  client_ca_file: client-ca.crt\n" if policy != "NoClientCert" else ""
    path.write_text(
        f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {policy}\n{ca}"
    )
    ctx = load_web_config(path).ssl_context()
    assert ctx is not None and ctx.verify_mode == mode
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2  # exporter-toolkit's default


def test_empty_file_means_plain_http_without_auth(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("# nothing yet\n")
    config = load_web_config(path)
    assert config.ssl_context() is None and not config.users and config.headers == ()


def test_readme_example_is_valid(web: WebPKI) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### `--web.config.file`") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml\n") + 8)]
    for name, real in {
        "/etc/tls-exporter/tls.crt": web.server_cert,
        "/etc/tls-exporter/tls.key": web.server_key,
        "/etc/tls-exporter/clients-ca.crt": web.client_ca,
    }.items():
        assert name in example
        example = example.replace(name, str(real))
    path = web.dir / "readme-web.yml"
    path.write_text(example)
    config = load_web_config(path)
    assert config.tls is not None and config.tls.client_auth_type is ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT
    assert list(config.users) == ["prometheus"]
    assert [name for name, _ in config.headers] == [
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "X-Frame-Options",
    ]
