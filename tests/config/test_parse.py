"""Values produced from valid configurations: defaults, inheritance, normalisation, paths."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding
from pki import PKI

from exporter.config import load_config, parse_config, parse_duration
from exporter.config.durations import format_duration
from exporter.config.model import (
    Config,
    Defaults,
    Expect,
    ExpiryTiers,
    FileTarget,
    OwnerRule,
    ProbeSettings,
    Profile,
    SeriesSet,
    Target,
    Threshold,
)

BASE = Path("/srv/tls-exporter")


def parse(text: str, base_dir: Path = BASE) -> Config:
    return parse_config(yaml.safe_load(textwrap.dedent(text)), base_dir=base_dir)


def only_target(text: str, base_dir: Path = BASE) -> Target:
    (target,) = parse(text, base_dir).targets
    return target


# ---- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("90d", 7776000.0),
        ("1d12h", 129600.0),
        ("2m500ms", 120.5),
        (" 10s ", 10.0),
    ],
)
def test_duration_values(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["300", 300, 1.5, None, "", "5 minutes", "5M", "m", "5mm", "-5m", "1h 30m", "5m30"])
def test_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"invalid duration '{text}' (use a number and a unit: ms, s, m, h, d, e.g. 30s or 5m)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "500ms"), (30.0, "30s"), (90.0, "1m30s"), (5400.0, "1h30m"), (86400.0, "1d"), (0.0, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ---- empty and default documents ------------------------------------------------------------


def test_null_document_is_the_default_config() -> None:
    config = parse_config(None, base_dir=BASE)
    assert config == Config()
    assert config.targets == ()
    assert dict(config.profiles) == {"default": Profile()}


def test_empty_file_has_no_targets(tmp_path: Path) -> None:
    for content in ("", "# nothing configured yet\n", "---\n"):
        path = tmp_path / "config.yml"
        path.write_text(content)
        assert load_config(path) == Config(source=str(path))


def test_null_sections_are_empty() -> None:
    config = parse("defaults:\ntargets:\nfiles:\nprofiles:\ncertificate_owners:\nprobe:\n")
    assert config == Config()


def test_defaults_values() -> None:
    config = parse(
        """
        defaults:
          interval: 1m
          timeout: 5s
          profile: strict
          owner: platform
        profiles:
          strict: {}
        """
    )
    assert config.defaults == Defaults(interval=60.0, timeout=5.0, profile="strict", owner="platform")


def test_timeout_equal_to_interval_is_allowed() -> None:
    assert parse("defaults: {interval: 10s, timeout: 10s}").defaults == Defaults(interval=10.0, timeout=10.0)


# ---- targets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "port"),
    [
        ("https", 443),
        ("smtps", 465),
        ("smtp", 25),
        ("submission", 587),
        ("lmtp", 24),
        ("imaps", 993),
        ("imap", 143),
        ("pop3s", 995),
        ("pop3", 110),
        ("ftps", 990),
        ("ftp", 21),
        ("ldaps", 636),
        ("ldap", 389),
        ("postgres", 5432),
        ("mysql", 3306),
        ("sips", 5061),
        ("xmpp", 5222),
        ("xmpp-server", 5269),
        ("sieve", 4190),
        ("nntp", 119),
        ("nntps", 563),
        ("ircs", 6697),
        ("mqtts", 8883),
        ("redis", 6379),
    ],
)
def test_default_port_per_protocol(protocol: str, port: int) -> None:
    target = only_target(f"targets: [{{address: svc.example.com, protocol: {protocol}}}]")
    assert (target.protocol, target.host, target.port) == (protocol, "svc.example.com", port)


@pytest.mark.parametrize(
    ("address", "protocol", "host", "port"),
    [
        ("shop.example.com", "https", "shop.example.com", 443),
        ("shop.example.com:8443", "https", "shop.example.com", 8443),
        ("shop.example.com.", "https", "shop.example.com", 443),
        ("shop.example.com.:465", "smtps", "shop.example.com", 465),
        ("localhost:9443", "tls", "localhost", 9443),
        ("192.0.2.10", "smtp", "192.0.2.10", 25),
        ("192.0.2.10:2525", "smtp", "192.0.2.10", 2525),
        ("::1", "imaps", "::1", 993),
        ("2001:db8::1", "https", "2001:db8::1", 443),
        ("[::1]:4443", "https", "::1", 4443),
        ("[2001:db8::1]", "ldap", "2001:db8::1", 389),
        ("[2001:db8::1]:636", "tls", "2001:db8::1", 636),
        ("xn--bcher-kva.example", "https", "xn--bcher-kva.example", 443),
        ("a.example.com:1", "https", "a.example.com", 1),
        ("a.example.com:65535", "https", "a.example.com", 65535),
    ],
)
def test_address_forms(address: str, protocol: str, host: str, port: int) -> None:
    target = only_target(f'targets: [{{address: "{address}", protocol: {protocol}}}]')
    assert (target.target, target.host, target.port, target.server_name) == (address, host, port, host)


def test_target_defaults() -> None:
    config = parse(
        """
        defaults: {interval: 2m, timeout: 4s, owner: platform}
        targets:
          - address: " shop.example.com "
        """
    )
    assert config.targets == (
        Target(
            target="shop.example.com",
            host="shop.example.com",
            port=443,
            protocol="https",
            server_name="shop.example.com",
            name="shop.example.com",
            owner="platform",
            labels=(),
            all_addresses=True,
            expect=None,
            interval=120.0,
            timeout=4.0,
            profile="default",
        ),
    )
    assert config.targets[0].key == "https://shop.example.com"


def test_target_overrides() -> None:
    target = only_target(
        """
        defaults: {owner: platform}
        profiles: {mail: {min_tls_version: TLSv1.3}}
        targets:
          - address: "[2001:db8::25]:587"
            protocol: SUBMISSION
            server_name: mail.example.com
            name: Mail submission
            owner: ""
            labels: {env: prod, site: fra1}
            all_addresses: false
            interval: 1h
            timeout: 30s
            profile: mail
        """
    )
    assert target == Target(
        target="[2001:db8::25]:587",
        host="2001:db8::25",
        port=587,
        protocol="submission",
        server_name="mail.example.com",
        name="Mail submission",
        owner="",
        labels=(("env", "prod"), ("site", "fra1")),
        all_addresses=False,
        interval=3600.0,
        timeout=30.0,
        profile="mail",
    )
    assert target.key == "submission://[2001:db8::25]:587#mail.example.com"  # the server name is part of it


def test_same_address_with_another_protocol_is_not_a_duplicate() -> None:
    config = parse(
        """
        targets:
          - {address: mail.example.com, protocol: smtp}
          - {address: mail.example.com, protocol: submission}
          - {address: mail.example.com:25, protocol: smtps}
        """
    )
    assert [(t.protocol, t.port) for t in config.targets] == [("smtp", 25), ("submission", 587), ("smtps", 25)]


def test_yaml_anchors_and_merge_keys_work() -> None:
    config = parse(
        """
        targets:
          - &web {address: shop.example.com, owner: web-team, labels: {env: prod}}
          - <<: *web
            address: www.example.com
        """
    )
    assert [(t.host, t.owner, t.labels) for t in config.targets] == [
        ("shop.example.com", "web-team", (("env", "prod"),)),
        ("www.example.com", "web-team", (("env", "prod"),)),
    ]


# ---- expect ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "serial"),
    [
        ("0a1b2c", "a1b2c"),
        ("0A:1B:2C", "a1b2c"),
        ("0x00FF", "ff"),
        ("0X1f", "1f"),
        ("00", "0"),
        (":".join(["3A", *["00"] * 16, "01"]), "3a" + "00" * 16 + "01"),
    ],
)
def test_expect_serial_normalised(given: str, serial: str) -> None:
    target = only_target(f'targets: [{{address: shop.example.com, expect: {{serial: "{given}"}}}}]')
    assert target.expect == Expect(serial=serial)


def test_expect_fingerprint_normalised() -> None:
    digits = "AB" * 32
    with_colons = ":".join(["AB"] * 32)
    for given in (digits, with_colons, digits.lower()):
        target = only_target(f'targets: [{{address: shop.example.com, expect: {{fingerprint_sha256: "{given}"}}}}]')
        assert target.expect == Expect(fingerprint_sha256="ab" * 32)


def test_expect_certificate_pem(pki: PKI) -> None:
    good = pki["good"]
    target = only_target(f"targets: [{{address: localhost, expect: {{certificate: '{good.cert_path}'}}}}]")
    assert target.expect == Expect(serial=good.serial_hex, fingerprint_sha256=good.fingerprint)


def test_expect_certificate_chain_takes_the_first(pki: PKI) -> None:
    good = pki["good"]
    target = only_target(f"targets: [{{address: localhost, expect: {{certificate: '{good.chain_path}'}}}}]")
    assert target.expect == Expect(serial=good.serial_hex, fingerprint_sha256=good.fingerprint)


def test_expect_certificate_der_relative(pki: PKI, tmp_path: Path) -> None:
    good = pki["good"]
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "good.der").write_bytes(good.cert.public_bytes(Encoding.DER))
    target = only_target("targets: [{address: localhost, expect: {certificate: certs/good.der}}]", tmp_path)
    assert target.expect == Expect(serial=good.serial_hex, fingerprint_sha256=good.fingerprint)


# ---- profiles -------------------------------------------------------------------------------


def test_tiers_in_days_and_percent() -> None:
    config = parse(
        """
        profiles:
          days: {expiry_tiers: {info: 60d, warning: 14d, critical: 36h}}
          share: {expiry_tiers: {info: 50%, warning: 33%, critical: 12.5%}}
          warning_only: {expiry_tiers: {warning: 33%}}
          no_info: {expiry_tiers: {info: null, warning: 30d, critical: 7d}}
          mixed: {expiry_tiers: {info: 50%, warning: 20d, critical: 10%}}
        """
    )
    tiers = {name: profile.expiry_tiers for name, profile in config.profiles.items()}
    assert tiers == {
        "default": ExpiryTiers(),
        "days": ExpiryTiers(info=Threshold(days=60.0), warning=Threshold(days=14.0), critical=Threshold(days=1.5)),
        "share": ExpiryTiers(
            info=Threshold(percent=50.0), warning=Threshold(percent=33.0), critical=Threshold(percent=12.5)
        ),
        "warning_only": ExpiryTiers(info=None, warning=Threshold(percent=33.0), critical=None),
        "no_info": ExpiryTiers(info=None, warning=Threshold(days=30.0), critical=Threshold(days=7.0)),
        "mixed": ExpiryTiers(
            info=Threshold(percent=50.0), warning=Threshold(days=20.0), critical=Threshold(percent=10.0)
        ),
    }
    assert ExpiryTiers() == ExpiryTiers(
        info=Threshold(days=90.0), warning=Threshold(days=30.0), critical=Threshold(days=7.0)
    )


def test_profiles_inherit_from_the_built_in_default() -> None:
    config = parse(
        """
        profiles:
          default:
            revocation: crl
            weak_signature_hashes: [MD5, sha1, sha224, sha1]
          strict:
            min_tls_version: tlsv1.3
            min_key_bits: {rsa: 3072}
            scan_interval: 12h
          quiet:
            scan_protocol_versions: false
            revocation: none
            series: minimal
          empty:
        """
    )
    assert dict(config.profiles) == {
        "default": Profile(revocation="crl", weak_signature_hashes=("md5", "sha1", "sha224")),
        "strict": Profile(
            name="strict",
            min_tls_version="TLSv1.3",
            min_key_bits=MappingProxyType({"rsa": 3072, "ec": 256, "dsa": 2048}),
            scan_interval=43200.0,
        ),
        "quiet": Profile(name="quiet", scan_protocol_versions=False, revocation="none", series=SeriesSet.MINIMAL),
        "empty": Profile(name="empty"),
    }
    # `strict` does not take the user's `default` changes: only the built-in values.
    assert config.profiles["strict"].revocation == "ocsp"
    assert config.profiles["strict"].weak_signature_hashes == ("md5", "sha1")


def test_empty_hash_list_disables_the_check() -> None:
    assert parse("profiles: {lax: {weak_signature_hashes: []}}").profiles["lax"].weak_signature_hashes == ()


def test_trust_system_and_bundle(pki: PKI) -> None:
    config = parse(
        f"""
        profiles:
          public: {{trust: system}}
          internal: {{trust: '{pki.root.cert_path}'}}
        """
    )
    assert config.profiles["public"].trust == "system"
    assert config.profiles["internal"].trust == str(pki.root.cert_path)


def test_profile_reference_may_precede_its_definition() -> None:
    config = parse(
        """
        defaults: {profile: strict}
        targets: [{address: shop.example.com}]
        profiles: {strict: {min_tls_version: TLSv1.3}}
        """
    )
    assert config.targets[0].profile == "strict"
    assert config.profile("strict").min_tls_version == "TLSv1.3"


# ---- files, owners, probe -------------------------------------------------------------------


def test_files_values() -> None:
    config = parse(
        """
        defaults: {interval: 10m, owner: platform, profile: appliances}
        profiles: {appliances: {}}
        files:
          - path: /etc/ssl/appliance/server.pem
          - path: certs/*.p12
            name: HSM bundles
            owner: hsm-team
            labels: {site: fra1}
            interval: 1h
            profile: default
            password_env: HSM_P12_PASSWORD
          - path: vpn.p12
            password_file: secrets/vpn.pass
        """
    )
    assert config.files == (
        FileTarget(
            path="/etc/ssl/appliance/server.pem",
            name="/etc/ssl/appliance/server.pem",
            owner="platform",
            interval=600.0,
            profile="appliances",
        ),
        FileTarget(
            path="/srv/tls-exporter/certs/*.p12",
            name="HSM bundles",
            owner="hsm-team",
            labels=(("site", "fra1"),),
            interval=3600.0,
            profile="default",
            password_env="HSM_P12_PASSWORD",
        ),
        FileTarget(
            path="/srv/tls-exporter/vpn.p12",
            name="/srv/tls-exporter/vpn.p12",
            owner="platform",
            interval=600.0,
            profile="appliances",
            password_file="/srv/tls-exporter/secrets/vpn.pass",
        ),
    )


def test_certificate_owners_values() -> None:
    config = parse(
        """
        certificate_owners:
          - match: {subject_cn: "*.payments.example.com"}
            owner: payments
          - match: {san: "*.HR.example.com"}
            owner: hr
          - match: {issuer_cn: "Example Internal CA*"}
            owner: pki-team
          - match: {fingerprint_sha256: "ab12*"}
            owner: security
        """
    )
    assert config.certificate_owners == (
        OwnerRule(field="subject_cn", pattern="*.payments.example.com", owner="payments"),
        OwnerRule(field="san", pattern="*.HR.example.com", owner="hr"),
        OwnerRule(field="issuer_cn", pattern="Example Internal CA*", owner="pki-team"),
        OwnerRule(field="fingerprint_sha256", pattern="ab12*", owner="security"),
    )


def test_probe_allow_values() -> None:
    assert parse("targets: []").probe == ProbeSettings(allow=("*",))
    assert parse("probe: {}").probe == ProbeSettings(allow=("*",))
    assert parse("probe: {allow: []}").probe == ProbeSettings(allow=())
    config = parse('probe: {allow: ["*.example.com", " localhost ", 198.51.100.7/24, "2001:db8::/32"]}')
    assert config.probe == ProbeSettings(allow=("*.example.com", "localhost", "198.51.100.7/24", "2001:db8::/32"))


# ---- the file loader ------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_directory(pki: PKI, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "certs").mkdir(parents=True)
    shutil.copy(pki.root.cert_path, etc / "ca.pem")
    shutil.copy(pki["good"].cert_path, etc / "certs" / "shop.pem")
    path = etc / "config.yml"
    path.write_text(
        textwrap.dedent(
            """
            profiles:
              internal: {trust: ca.pem}
            targets:
              - address: shop.example.com
                profile: internal
                expect: {certificate: certs/shop.pem}
            files:
              - path: certs/*.pem
              - path: ./vpn.p12
                password_file: ../secrets/vpn.pass
            """
        )
    )
    config = load_config(path)
    assert config.source == str(path)
    assert config.profiles["internal"].trust == str(etc / "ca.pem")
    assert config.targets[0].expect == Expect(serial=pki["good"].serial_hex, fingerprint_sha256=pki["good"].fingerprint)
    assert [f.path for f in config.files] == [str(etc / "certs" / "*.pem"), str(etc / "vpn.p12")]
    assert config.files[1].password_file == str(etc / ".." / "secrets" / "vpn.pass")


def test_relative_config_path_resolves_from_the_working_directory(
    pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(pki.root.cert_path, tmp_path / "ca.pem")
    (tmp_path / "config.yml").write_text("profiles: {internal: {trust: ca.pem}}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("config.yml")
    assert config.source == "config.yml"
    assert config.profiles["internal"].trust == str(tmp_path / "ca.pem")
