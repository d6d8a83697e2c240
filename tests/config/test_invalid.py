"""Every invalid configuration fixture is rejected with exactly the errors listed, in order.

Paths inside messages are written ``<DIR>`` (the fixtures' directory) and ``<FILE>`` (the
fixture itself) so the table does not depend on where the checkout lives.
"""

# ruff: noqa: E501  (the table holds whole error lines, verbatim)
from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.config import load_config
from exporter.support.errors import ConfigError
from exporter.support.protocols import PROTOCOLS

CONFIGS = Path(__file__).parent.parent / "data" / "configs"

EXPECTED: dict[str, list[str]] = {
    "invalid-discovery.yml": [
        "<FILE>:3:30: discovery[0].networks[1]: '10.1.0.1/24' has host bits set (did you mean 10.1.0.0/24?)",
        "<FILE>:3:43: discovery[0].networks[2]: IPv6 network 2001:db8::/64 is larger than a /112 (18,446,744,073,709,551,616 addresses): list the /112 (or smaller) networks to scan explicitly",
        "<FILE>:3:60: discovery[0].networks[3]: 169.254.0.0/24 overlaps fetch.deny range 169.254.0.0/16: 169.254.0.0/24 must never be scanned",
        "<FILE>:3:76: discovery[0].networks[4]: fe80::/120 overlaps fetch.deny range fe80::/10: fe80::/120 must never be scanned",
        "<FILE>:3:90: discovery[0].networks[5]: invalid CIDR network 'nonsense' ('nonsense' does not appear to be an IPv4 or IPv6 network)",
        "<FILE>:3:100: discovery[0].networks[6]: ::ffff:a9fe:a900/120 holds IPv4-mapped addresses (::ffff:0:0/96): write the IPv4 network instead",
        "<FILE>:4:18: discovery[0].ports[1]: invalid port range '9000-8000' (the first port must not exceed the last)",
        "<FILE>:4:31: discovery[0].ports[2]: invalid port '0' (1-65535)",
        "<FILE>:4:34: discovery[0].ports[3]: invalid port 'https' (a port such as 443, or a range such as \"8000-8100\")",
        "<FILE>:5:5: discovery[0].protocols: port 443: unknown protocol 'smpt' (did you mean 'smtp'?) (one of ftp, ftps, https, imap, imaps, ircs, ldap, ldaps, lmtp, mqtts, mysql, nntp, nntps, pop3, pop3s, postgres, redis, sieve, sips, smtp, smtps, submission, tls, xmpp, xmpp-server)",
        "<FILE>:5:5: discovery[0].protocols: port 8443 is not in ports",
        "<FILE>:6:5: discovery[0].interval: must be at least 10s",
        "<FILE>:7:5: discovery[0].rate: expected new connections per second, a number above 0 (got 0)",
        "<FILE>:8:5: discovery[0]: unknown key 'colour'",
        "<FILE>:9:5: discovery[1]: scope of 1,711,276,032 address:port pairs takes 99d46m24s at rate 200/s, longer than interval 1h (raise rate or interval, or narrow networks or ports)",
        "<FILE>:13:5: discovery[2]: missing required key 'name'",
        "<FILE>:18:5: discovery[3].timeout: timeout (1m) must not exceed interval (30s)",
        "<FILE>:23:5: discovery[5].name: duplicate of discovery[4] (same name)",
        # 196,608 pairs at 1,000/s is 200 s, but silent hosts hold 1,024 connections for 3 s each.
        "<FILE>:26:5: discovery[6]: scope of 196,608 address:port pairs takes 9m39s at rate 1000/s (341/s when the hosts are silent: at most 1,024 connections wait out their 3s timeout at once), longer than interval 5m (raise rate or interval, or narrow networks or ports)",
    ],
    "invalid-misspelt.yml": [
        "<FILE>:2:3: defaults: unknown key 'intervall' (did you mean 'interval'?)",
        "<FILE>:5:5: profiles.strict.min_tls_version: unknown value 'TLSv1.4' (did you mean 'TLSv1.3'?) (one of SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)",
        "<FILE>:8:5: targets[0]: unknown key 'protocl' (did you mean 'protocol'?)",
        "<FILE>:11:5: targets[1].profile: unknown profile 'stirct' (did you mean 'strict'?) (one of default, strict)",
    ],
    "invalid-bare-number.yml": [
        "<FILE>:3:5: targets[0].timeout: invalid duration '10' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "<FILE>:6:5: targets[1].timeout: invalid duration '2sec' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
    ],
    "invalid-certificate-owners.yml": [
        "<FILE>:2:5: certificate_owners[0].match: give exactly one of subject_cn, san, issuer_cn, fingerprint_sha256",
        "<FILE>:4:5: certificate_owners[1].match: give exactly one of subject_cn, san, issuer_cn, fingerprint_sha256",
        "<FILE>:4:13: certificate_owners[1].match: unknown key 'subject' (did you mean 'subject_cn'?)",
        "<FILE>:6:5: certificate_owners[2]: missing required key 'owner'",
        "<FILE>:8:5: certificate_owners[3].owner: must not be empty",
        "<FILE>:9:5: certificate_owners[4]: missing required key 'match'",
        "<FILE>:10:5: certificate_owners[5]: expected a mapping",
    ],
    "invalid-defaults-timeout.yml": [
        "<FILE>:1:1: defaults: timeout (1m) must not exceed interval (30s)",
    ],
    "invalid-duplicate-key.yml": [
        "<FILE>:5:1: invalid YAML: duplicate key 'targets'",
    ],
    "invalid-duplicate-target.yml": [
        "<FILE>:8:5: targets[4]: duplicate of targets[1] (same protocol, address and server name)",
        "<FILE>:10:5: targets[6]: duplicate of targets[5] (same protocol, address and server name)",
    ],
    "invalid-duration.yml": [
        "<FILE>:2:3: defaults.interval: invalid duration '5 minutes' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
    ],
    "invalid-expect.yml": [
        "<FILE>:3:5: targets[0].expect: give exactly one of certificate, serial, fingerprint_sha256",
        "<FILE>:5:14: targets[1].expect.serial: invalid serial 'xyz' (hex digits, colons or 0x allowed)",
        "<FILE>:7:14: targets[2].expect.fingerprint_sha256: invalid fingerprint 'AB:CD:EF' (64 hex digits, colons allowed)",
        "<FILE>:10:14: targets[3].expect.serial: expected a string (quote it)",
        "<FILE>:13:14: targets[4].expect.certificate: cannot read '<DIR>/certs/missing.pem': No such file or directory",
        "<FILE>:16:14: targets[5].expect.certificate: '<DIR>/not-a-certificate.pem' is not a PEM or DER certificate",
        "<FILE>:19:5: targets[6].expect: give exactly one of certificate, serial, fingerprint_sha256",
        "<FILE>:22:5: targets[7].expect: give exactly one of certificate, serial, fingerprint_sha256",
        "<FILE>:22:14: targets[7].expect: unknown key 'sha1'",
    ],
    "invalid-files.yml": [
        "<FILE>:2:5: files[0]: missing required key 'path'",
        "<FILE>:3:5: files[1]: give at most one of password_env, password_file",
        "<FILE>:7:5: files[2].interval: invalid duration 'hourly' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "<FILE>:8:5: files[2].owner: expected a string",
        "<FILE>:9:5: files[3]: duplicate of files[2] (same path)",
        "<FILE>:11:5: files[4].password_env: invalid environment variable name 'VPN PASSWORD'",
        "<FILE>:12:5: files[4]: unknown key 'timeout'",
    ],
    "invalid-host.yml": [
        "<FILE>:2:5: targets[0].address: invalid host name 'shop!example.com'",
        "<FILE>:3:5: targets[1].address: invalid IPv4 address '192.0.2.300'",
        "<FILE>:4:5: targets[2].address: invalid host name '-bad.example.com'",
        "<FILE>:5:5: targets[3].address: invalid host name 'shop.example.com 443'",
    ],
    "invalid-ipv6.yml": [
        "<FILE>:2:5: targets[0].address: invalid address '[::1' (use host, host:port, an IPv4 address, ::1 or [::1]:443)",
        "<FILE>:3:5: targets[1].address: invalid address '[2001:db8::zz]:443' (use host, host:port, an IPv4 address, ::1 or [::1]:443)",
        "<FILE>:4:5: targets[2].address: invalid address '2001:db8::1::2' (use host, host:port, an IPv4 address, ::1 or [::1]:443)",
        "<FILE>:5:5: targets[3].address: invalid port '99999' (1-65535)",
    ],
    "invalid-labels.yml": [
        "<FILE>:3:5: targets[0].labels: label 'owner' is set by the exporter; choose another name",
        "<FILE>:3:5: targets[0].labels: invalid label name '1dc' (letters, digits and _, not starting with a digit)",
        "<FILE>:3:5: targets[0].labels: invalid label name '__meta_zone' (names starting with __ are reserved)",
        "<FILE>:3:5: targets[0].labels: invalid label name 'team-name' (letters, digits and _, not starting with a digit)",
        "<FILE>:8:7: targets[0].labels.replicas: expected a string",
        "<FILE>:11:5: targets[1].labels: expected a mapping",
    ],
    "invalid-many.yml": [
        "<FILE>:3:3: defaults.interval: invalid duration '5 minutes' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "<FILE>:4:3: defaults.profile: unknown profile 'strict' (one of default, web)",
        "<FILE>:5:3: defaults: unknown key 'ownr' (did you mean 'owner'?)",
        "<FILE>:8:5: profiles.web.expiry_tiers: info (30d) must not be less than warning (90d)",
        "<FILE>:9:5: profiles.web.revocation: unknown value 'sometimes' (one of ocsp, crl, none)",
        "<FILE>:14:5: targets[1].protocol: unknown protocol 'smpt' (did you mean 'smtp'?) (one of ftp, ftps, https, imap, imaps, ircs, ldap, ldaps, lmtp, mqtts, mysql, nntp, nntps, pop3, pop3s, postgres, redis, sieve, sips, smtp, smtps, submission, tls, xmpp, xmpp-server)",
        "<FILE>:15:5: targets[2].address: invalid port '70000' (1-65535)",
        "<FILE>:17:5: targets[3]: unknown key 'adress' (did you mean 'address'?)",
        "<FILE>:17:5: targets[3]: missing required key 'address'",
        "<FILE>:18:5: targets[4]: duplicate of targets[0] (same protocol, address and server name)",
        "<FILE>:19:5: targets[4].labels: label 'job' is set by the exporter; choose another name",
        "<FILE>:22:5: files[0].profile: unknown profile 'web2' (did you mean 'web'?) (one of default, web)",
        "<FILE>:24:5: certificate_owners[0].match: give exactly one of subject_cn, san, issuer_cn, fingerprint_sha256",
        "<FILE>:24:13: certificate_owners[0].match: unknown key 'cn'",
        "<FILE>:27:11: probe.allow[0]: invalid CIDR range '192.0.2.0/40'",
    ],
    "invalid-not-mapping.yml": [
        "<FILE>:1:1: (top level): expected a mapping",
    ],
    "invalid-percent-order.yml": [
        "<FILE>:3:5: profiles.acme.expiry_tiers: info (20%) must not be less than warning (40%)",
        "<FILE>:5:5: profiles.mixed.expiry_tiers: info (60d) must not be less than critical (90d)",
    ],
    "invalid-port.yml": [
        "<FILE>:2:5: targets[0].address: invalid port '70000' (1-65535)",
        "<FILE>:3:5: targets[1].address: invalid port '' (1-65535)",
        "<FILE>:5:5: targets[2].address: invalid port 'pg' (1-65535)",
        "<FILE>:7:5: targets[3].address: invalid port '0' (1-65535)",
    ],
    "invalid-probe-types.yml": [
        "<FILE>:2:3: probe.allow: expected a list",
    ],
    "invalid-probe.yml": [
        "<FILE>:2:28: probe.allow[1]: invalid CIDR range '192.0.2.0/33'",
        "<FILE>:2:42: probe.allow[2]: expected a string",
        "<FILE>:2:46: probe.allow[3]: must not be empty",
        "<FILE>:2:50: probe.allow[4]: invalid CIDR range '2001:db8::/129'",
        "<FILE>:3:3: probe: unknown key 'deny'",
    ],
    "invalid-profile-types.yml": [
        "<FILE>:2:3: profiles.strict: expected a mapping",
        "<FILE>:4:5: profiles.web.expiry_tiers: expected a mapping",
        "<FILE>:5:5: profiles.web.min_key_bits: expected a mapping",
        "<FILE>:6:5: profiles.web.weak_signature_hashes: expected a list",
        "<FILE>:7:5: profiles.web.trust: expected a string",
    ],
    "invalid-profile-values.yml": [
        "<FILE>:3:20: profiles.strict.min_key_bits.rsa: expected a positive integer",
        "<FILE>:3:32: profiles.strict.min_key_bits: unknown key 'ed25519'",
        "<FILE>:3:46: profiles.strict.min_key_bits.ec: expected a positive integer",
        "<FILE>:4:34: profiles.strict.weak_signature_hashes[1]: unknown value 'sha3-256' (did you mean 'sha256'?) (one of md5, sha1, sha224, sha256, sha384, sha512)",
        "<FILE>:5:5: profiles.strict.min_tls_version: unknown value 'TLSv1.4' (did you mean 'TLSv1.3'?) (one of SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)",
        "<FILE>:6:5: profiles.strict.revocation: unknown value 'oscp' (did you mean 'ocsp'?) (one of ocsp, crl, none)",
        "<FILE>:7:5: profiles.strict.scan_protocol_versions: expected a boolean",
        "<FILE>:8:5: profiles.strict.scan_interval: invalid duration '6 hours' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)",
        "<FILE>:9:5: profiles.strict.series: unknown value 'small' (one of default, minimal)",
        "<FILE>:10:5: profiles.strict: unknown key 'expiry' (did you mean 'expiry_tiers'?)",
    ],
    "invalid-section-types.yml": [
        "<FILE>:1:1: defaults: expected a mapping",
        "<FILE>:2:1: profiles: expected a mapping",
        "<FILE>:3:1: targets: expected a list",
        "<FILE>:5:1: files: expected a list",
        "<FILE>:6:1: certificate_owners: expected a list",
        "<FILE>:7:1: probe: expected a mapping",
    ],
    "invalid-syntax.yml": [
        "<FILE>:4:4: invalid YAML: expected <block end>, but found '<block sequence start>'",
    ],
    "invalid-target-timeout.yml": [
        "<FILE>:7:5: targets[1]: timeout (30s) must not exceed interval (20s)",
        "<FILE>:10:5: targets[2]: timeout (10s) must not exceed interval (5s)",
    ],
    "invalid-target-types.yml": [
        "<FILE>:2:3: defaults.owner: expected a string",
        "<FILE>:4:5: targets[0]: expected a mapping",
        "<FILE>:5:5: targets[1].address: expected a string",
        "<FILE>:6:5: targets[1].name: expected a string",
        "<FILE>:7:5: targets[1].all_addresses: expected a boolean",
        "<FILE>:8:5: targets[1].protocol: expected a string",
        "<FILE>:9:5: targets[2].address: must not be empty",
        "<FILE>:12:5: targets[3].server_name: invalid server name 'mail example com'",
    ],
    "invalid-tier-order.yml": [
        "<FILE>:3:5: profiles.default.expiry_tiers: info (7d) must not be less than warning (30d)",
    ],
    "invalid-tier-values.yml": [
        "<FILE>:4:7: profiles.default.expiry_tiers.info: must be greater than 0 (got '0d')",
        "<FILE>:5:7: profiles.default.expiry_tiers.warning: invalid threshold '30' (use days left like 30d, or a share of the lifetime like 33%)",
        "<FILE>:6:7: profiles.default.expiry_tiers.critical: invalid percentage '150%' (more than 0% and at most 100%)",
        "<FILE>:8:20: profiles.short.expiry_tiers.warning: invalid percentage '0%' (more than 0% and at most 100%)",
        "<FILE>:8:33: profiles.short.expiry_tiers.critical: invalid threshold '3 days' (use days left like 30d, or a share of the lifetime like 33%)",
    ],
    "invalid-tls-without-port.yml": [
        "<FILE>:4:5: targets[1].address: protocol 'tls' has no default port: write host:port",
        "<FILE>:6:5: targets[2].address: protocol 'tls' has no default port: write host:port",
    ],
    "invalid-top-level-key.yml": [
        "<FILE>:3:1: (top level): unknown key 'target' (did you mean 'targets'?)",
    ],
    "invalid-trust.yml": [
        "<FILE>:3:5: profiles.internal.trust: cannot read '<DIR>/certs/missing-ca.pem': No such file or directory",
        "<FILE>:5:5: profiles.partner.trust: '<DIR>/not-a-certificate.pem' contains no PEM certificate",
        "<FILE>:7:5: profiles.other.trust: cannot read '<DIR>/certs': Is a directory",
    ],
    "invalid-typo-key.yml": [
        "<FILE>:2:5: targets[0]: unknown key 'adress' (did you mean 'address'?)",
        "<FILE>:2:5: targets[0]: missing required key 'address'",
    ],
    "invalid-unknown-profile.yml": [
        "<FILE>:2:3: defaults.profile: unknown profile 'strict' (one of default, lenient)",
        "<FILE>:8:5: targets[0].profile: unknown profile 'strcit' (one of default, lenient)",
        "<FILE>:13:5: files[1].profile: unknown profile 'legacy' (one of default, lenient)",
    ],
    "invalid-unknown-protocol.yml": [
        "<FILE>:8:5: targets[3].protocol: unknown protocol 'smpt' (did you mean 'smtp'?) (one of ftp, ftps, https, imap, imaps, ircs, ldap, ldaps, lmtp, mqtts, mysql, nntp, nntps, pop3, pop3s, postgres, redis, sieve, sips, smtp, smtps, submission, tls, xmpp, xmpp-server)",
    ],
    "invalid-url-address.yml": [
        "<FILE>:2:5: targets[0].address: invalid address 'https://shop.example.com/' (no URL scheme: set protocol instead)",
    ],
    "invalid-zero-duration.yml": [
        "<FILE>:2:3: defaults.interval: must be greater than 0 (got '0s')",
        "<FILE>:5:5: targets[0].timeout: must be greater than 0 (got '0ms')",
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
    sections = {line.split(": ")[1].split(".")[0].split("[")[0] for line in errors}
    assert sections == {"defaults", "profiles", "targets", "files", "certificate_owners", "probe"}


def test_error_message_joins_every_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(CONFIGS / "invalid-unknown-protocol.yml"))
    where = CONFIGS / "invalid-unknown-protocol.yml"
    assert str(caught.value) == (
        f"{where}:8:5: targets[3].protocol: unknown protocol 'smpt' (did you mean 'smtp'?) "
        f"(one of {', '.join(sorted(PROTOCOLS))})"
    )


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


def test_each_position_is_where_its_path_is_written() -> None:
    """Read back from the fixtures themselves: at line:column stands the key the path ends with
    (or the offending key of `unknown key`), or the list item a path ending in [n] names."""
    for name in sorted(EXPECTED):
        text = (CONFIGS / name).read_text().splitlines()
        for error in _errors(name):
            located = re.match(r"<FILE>:(\d+):(\d+): (.*)$", error)
            if located is None or located.group(1, 2) == ("1", "1") or located.group(3).startswith("invalid YAML"):
                continue  # a YAML syntax error (its own line and column) or a file-level error
            line, column, rest = located.groups()
            path, message = rest.strip().split(": ", 1)
            at = text[int(line) - 1][int(column) - 1 :]
            unknown = re.match(r"unknown key '(.*?)'", message)
            last = unknown.group(1) if unknown else re.split(r"[.\[]", path)[-1].rstrip("]")
            if last.isdigit():
                before = text[int(line) - 1][: int(column) - 1].rstrip()
                assert before.endswith(("-", "[", ",")), (name, error)  # a block or a flow list's item
            else:
                assert at.startswith(last), (name, error, at)


def test_a_misspelt_key_gets_the_closest_valid_one(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("targets:\n  - address: a.example.com\n    sever_name: b.example.com\n    profile: defualt\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [
        f"{path}:3:5: targets[0]: unknown key 'sever_name' (did you mean 'server_name'?)",
        f"{path}:4:5: targets[0].profile: unknown profile 'defualt' (did you mean 'default'?) (one of default)",
    ]
