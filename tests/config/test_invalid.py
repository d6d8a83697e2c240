"""Every invalid configuration fixture is rejected with exactly the errors listed, in order.

Paths inside messages are written ``<DIR>`` (the fixtures' directory) and ``<FILE>`` (the
fixture itself) so the table does not depend on where the checkout lives.
"""

# ruff: noqa: E501  (the table holds whole error lines, verbatim)
from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import load_config
from exporter.support.errors import ConfigError

CONFIGS = Path(__file__).parent.parent / "data" / "configs"

EXPECTED: dict[str, list[str]] = {
    "invalid-bare-number.yml": [
        "targets[0].timeout: invalid duration '10' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "targets[1].timeout: invalid duration '2sec' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
    ],
    "invalid-certificate-owners.yml": [
        "certificate_owners[0].match: give exactly one of subject_cn, san, issuer_cn, fingerprint_sha256",
        "certificate_owners[1].match: unknown key 'subject'",
        "certificate_owners[1].match: give exactly one of subject_cn, san, issuer_cn, fingerprint_sha256",
        "certificate_owners[2]: missing required key 'owner'",
        "certificate_owners[3].owner: must not be empty",
        "certificate_owners[4]: missing required key 'match'",
        "certificate_owners[5]: expected a mapping",
    ],
    "invalid-defaults-timeout.yml": [
        "defaults: timeout (1m) must not exceed interval (30s)",
    ],
    "invalid-duplicate-key.yml": [
        "<FILE>: line 5, column 1: invalid YAML: duplicate key 'targets'",
    ],
    "invalid-duplicate-target.yml": [
        "targets[4]: duplicate of targets[1] (same protocol, address and server name)",
        "targets[6]: duplicate of targets[5] (same protocol, address and server name)",
    ],
    "invalid-duration.yml": [
        "defaults.interval: invalid duration '5 minutes' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
    ],
    "invalid-expect.yml": [
        "targets[0].expect: give exactly one of certificate, serial, fingerprint_sha256",
        "targets[1].expect.serial: invalid serial 'xyz' (hex digits, colons or 0x allowed)",
        "targets[2].expect.fingerprint_sha256: invalid fingerprint 'AB:CD:EF' (64 hex digits, colons allowed)",
        "targets[3].expect.serial: expected a string (quote it)",
        "targets[4].expect.certificate: cannot read '<DIR>/certs/missing.pem': No such file or directory",
        "targets[5].expect.certificate: '<DIR>/not-a-certificate.pem' is not a PEM or DER certificate",
        "targets[6].expect: give exactly one of certificate, serial, fingerprint_sha256",
        "targets[7].expect: unknown key 'sha1'",
        "targets[7].expect: give exactly one of certificate, serial, fingerprint_sha256",
    ],
    "invalid-files.yml": [
        "files[0]: missing required key 'path'",
        "files[1]: give at most one of password_env, password_file",
        "files[2].owner: expected a string",
        "files[2].interval: invalid duration 'hourly' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "files[3]: duplicate of files[2] (same path)",
        "files[4]: unknown key 'timeout'",
        "files[4].password_env: invalid environment variable name 'VPN PASSWORD'",
    ],
    "invalid-host.yml": [
        "targets[0].address: invalid host name 'shop_example.com'",
        "targets[1].address: invalid IPv4 address '192.0.2.300'",
        "targets[2].address: invalid host name '-bad.example.com'",
        "targets[3].address: invalid host name 'shop.example.com 443'",
    ],
    "invalid-ipv6.yml": [
        "targets[0].address: invalid address '[::1' (use host, host:port, an IPv4 address, ::1 or [::1]:443)",
        "targets[1].address: invalid address '[2001:db8::zz]:443' (use host, host:port, an IPv4 address, ::1 or [::1]:443)",
        "targets[2].address: invalid address '2001:db8::1::2' (use host, host:port, an IPv4 address, ::1 or [::1]:443)",
        "targets[3].address: invalid port '99999' (1-65535)",
    ],
    "invalid-labels.yml": [
        "targets[0].labels: label 'owner' is set by the exporter; choose another name",
        "targets[0].labels: invalid label name '1dc' (letters, digits and _, not starting with a digit)",
        "targets[0].labels: invalid label name '__meta_zone' (names starting with __ are reserved)",
        "targets[0].labels.replicas: expected a string",
        "targets[0].labels: invalid label name 'team-name' (letters, digits and _, not starting with a digit)",
        "targets[1].labels: expected a mapping",
    ],
    "invalid-many.yml": [
        "defaults: unknown key 'ownr'",
        "defaults.interval: invalid duration '5 minutes' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "defaults.profile: unknown profile 'strict'",
        "profiles.web.expiry_tiers: info (30d) must not be less than warning (90d)",
        "profiles.web.revocation: unknown value 'sometimes' (one of ocsp, crl, none)",
        "targets[1].protocol: unknown protocol 'smpt'",
        "targets[2].address: invalid port '70000' (1-65535)",
        "targets[3]: unknown key 'adress'",
        "targets[3]: missing required key 'address'",
        "targets[4].labels: label 'job' is set by the exporter; choose another name",
        "targets[4]: duplicate of targets[0] (same protocol, address and server name)",
        "files[0].profile: unknown profile 'web2'",
        "certificate_owners[0].match: unknown key 'cn'",
        "certificate_owners[0].match: give exactly one of subject_cn, san, issuer_cn, fingerprint_sha256",
        "probe.allow[0]: invalid CIDR range '192.0.2.0/40'",
    ],
    "invalid-not-mapping.yml": [
        "(top level): expected a mapping",
    ],
    "invalid-percent-order.yml": [
        "profiles.acme.expiry_tiers: info (20%) must not be less than warning (40%)",
        "profiles.mixed.expiry_tiers: info (60d) must not be less than critical (90d)",
    ],
    "invalid-port.yml": [
        "targets[0].address: invalid port '70000' (1-65535)",
        "targets[1].address: invalid port '' (1-65535)",
        "targets[2].address: invalid port 'pg' (1-65535)",
        "targets[3].address: invalid port '0' (1-65535)",
    ],
    "invalid-probe-types.yml": [
        "probe.allow: expected a list",
    ],
    "invalid-probe.yml": [
        "probe: unknown key 'deny'",
        "probe.allow[1]: invalid CIDR range '192.0.2.0/33'",
        "probe.allow[2]: expected a string",
        "probe.allow[3]: must not be empty",
        "probe.allow[4]: invalid CIDR range '2001:db8::/129'",
    ],
    "invalid-profile-types.yml": [
        "profiles.strict: expected a mapping",
        "profiles.web.expiry_tiers: expected a mapping",
        "profiles.web.trust: expected a string",
        "profiles.web.min_key_bits: expected a mapping",
        "profiles.web.weak_signature_hashes: expected a list",
    ],
    "invalid-profile-values.yml": [
        "profiles.strict: unknown key 'expiry'",
        "profiles.strict.min_key_bits: unknown key 'ed25519'",
        "profiles.strict.min_key_bits.rsa: expected a positive integer",
        "profiles.strict.min_key_bits.ec: expected a positive integer",
        "profiles.strict.weak_signature_hashes[1]: unknown value 'sha3-256' (one of md5, sha1, sha224, sha256, sha384, sha512)",
        "profiles.strict.min_tls_version: unknown value 'TLSv1.4' (one of SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)",
        "profiles.strict.revocation: unknown value 'oscp' (one of ocsp, crl, none)",
        "profiles.strict.scan_protocol_versions: expected a boolean",
        "profiles.strict.scan_interval: invalid duration '6 hours' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "profiles.strict.series: unknown value 'small' (one of default, minimal)",
    ],
    "invalid-section-types.yml": [
        "defaults: expected a mapping",
        "profiles: expected a mapping",
        "targets: expected a list",
        "files: expected a list",
        "certificate_owners: expected a list",
        "probe: expected a mapping",
    ],
    "invalid-syntax.yml": [
        "<FILE>: line 4, column 4: invalid YAML: expected <block end>, but found '<block sequence start>'",
    ],
    "invalid-target-timeout.yml": [
        "targets[1]: timeout (30s) must not exceed interval (20s)",
        "targets[2]: timeout (10s) must not exceed interval (5s)",
    ],
    "invalid-target-types.yml": [
        "defaults.owner: expected a string",
        "targets[0]: expected a mapping",
        "targets[1].protocol: expected a string",
        "targets[1].address: expected a string",
        "targets[1].name: expected a string",
        "targets[1].all_addresses: expected a boolean",
        "targets[2].address: must not be empty",
        "targets[3].server_name: invalid server name 'mail example com'",
    ],
    "invalid-tier-order.yml": [
        "profiles.default.expiry_tiers: info (7d) must not be less than warning (30d)",
    ],
    "invalid-tier-values.yml": [
        "profiles.default.expiry_tiers.info: must be greater than 0 (got '0d')",
        "profiles.default.expiry_tiers.warning: invalid threshold '30' (use days left like 30d, or a share of the lifetime like 33%)",
        "profiles.default.expiry_tiers.critical: invalid percentage '150%' (more than 0% and at most 100%)",
        "profiles.short.expiry_tiers.warning: invalid percentage '0%' (more than 0% and at most 100%)",
        "profiles.short.expiry_tiers.critical: invalid threshold '3 days' (use days left like 30d, or a share of the lifetime like 33%)",
    ],
    "invalid-tls-without-port.yml": [
        "targets[1].address: protocol 'tls' has no default port: write host:port",
        "targets[2].address: protocol 'tls' has no default port: write host:port",
    ],
    "invalid-top-level-key.yml": [
        "(top level): unknown key 'target'",
    ],
    "invalid-trust.yml": [
        "profiles.internal.trust: cannot read '<DIR>/certs/missing-ca.pem': No such file or directory",
        "profiles.partner.trust: '<DIR>/not-a-certificate.pem' contains no PEM certificate",
        "profiles.other.trust: cannot read '<DIR>/certs': Is a directory",
    ],
    "invalid-typo-key.yml": [
        "targets[0]: unknown key 'adress'",
        "targets[0]: missing required key 'address'",
    ],
    "invalid-unknown-profile.yml": [
        "defaults.profile: unknown profile 'strict'",
        "targets[0].profile: unknown profile 'strcit'",
        "files[1].profile: unknown profile 'legacy'",
    ],
    "invalid-unknown-protocol.yml": [
        "targets[3].protocol: unknown protocol 'smpt'",
    ],
    "invalid-url-address.yml": [
        "targets[0].address: invalid address 'https://shop.example.com/' (no URL scheme: set protocol instead)",
    ],
    "invalid-zero-duration.yml": [
        "defaults.interval: must be greater than 0 (got '0s')",
        "targets[0].timeout: must be greater than 0 (got '0ms')",
    ],
}


def _errors(name: str) -> list[str]:
    path = CONFIGS / name
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    return [line.replace(str(path), "<FILE>").replace(str(CONFIGS), "<DIR>") for line in caught.value.errors]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_config_reports_exact_errors(name: str) -> None:
    assert _errors(name) == EXPECTED[name]


def test_every_invalid_fixture_is_in_the_table() -> None:
    on_disk = sorted(p.name for p in CONFIGS.glob("invalid-*.yml"))
    assert on_disk == sorted(EXPECTED)
    assert len(on_disk) >= 25


def test_several_mistakes_are_all_reported() -> None:
    # One run of --config.check must list every mistake, across every section.
    errors = _errors("invalid-many.yml")
    assert len(errors) == 15
    sections = {line.split(":")[0].split(".")[0].split("[")[0] for line in errors}
    assert sections == {"defaults", "profiles", "targets", "files", "certificate_owners", "probe"}


def test_error_message_joins_every_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(CONFIGS / "invalid-unknown-protocol.yml"))
    assert str(caught.value) == "targets[3].protocol: unknown protocol 'smpt'"


def test_unreadable_file_names_path_and_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert caught.value.errors == [f"{missing}: cannot read: No such file or directory"]
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.errors == [f"{tmp_path}: cannot read: Is a directory"]


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"defaults:\n  owner: \xe9quipe\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [f"{path}: cannot read: not UTF-8 text"]
