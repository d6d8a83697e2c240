"""The path rules beyond the library (``exporter.certs.pathrules``), through ``verify_chain``: each
chain is built with one defect, judged under the webpki and the rfc5280 policy, and the verdict
must say which rule it breaks and name the certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import Store

from exporter.certs.chain import ChainVerdict, verify_chain
from exporter.certs.tiers import Tier, tier_of
from exporter.config.model import ExpiryTiers

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class Made:
    cert: x509.Certificate
    key: Key


@dataclass
class Spec:
    """What to put in a certificate: sane defaults, each overridable."""

    cn: str | None = "example.com"
    sans: Sequence[x509.GeneralName] = (x509.DNSName("example.com"),)
    ca: bool = False
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,)
    aki: bool = True
    ski: bool = True
    key: Key | None = None
    not_after: dt.datetime = NOW + 300 * DAY
    extra: list[tuple[x509.ExtensionType, bool]] = field(default_factory=list)
    aki_value: x509.AuthorityKeyIdentifier | None = None


def mint(spec: Spec, issuer: Made | None, name: str) -> Made:
    key = spec.key or ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)]
    if spec.cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.cn))
    subject = x509.Name(attrs)
    signer = issuer.key if issuer else key
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 30 * DAY)
        .not_valid_after(spec.not_after)
        .add_extension(x509.BasicConstraints(ca=spec.ca, path_length=None), critical=True)
    )
    if spec.ca:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        b = b.add_extension(usage, critical=True)
    if spec.sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(spec.sans)), critical=False)
    if spec.eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(spec.eku)), critical=False)
    if spec.ski:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if spec.aki_value is not None:
        b = b.add_extension(spec.aki_value, critical=False)
    elif spec.aki and issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)  # type: ignore[arg-type]
    for ext, critical in spec.extra:
        b = b.add_extension(ext, critical=critical)
    return Made(b.sign(signer, hashes.SHA256()), key)  # type: ignore[arg-type]


def root(**kw: object) -> Made:
    return mint(Spec(cn="Rules Root", sans=(), ca=True, eku=None, **kw), None, "root")  # type: ignore[arg-type]


def ica(parent: Made, **kw: object) -> Made:
    return mint(Spec(cn="Rules ICA", sans=(), ca=True, eku=None, **kw), parent, "ica")  # type: ignore[arg-type]


def leaf(parent: Made, **kw: object) -> Made:
    return mint(Spec(**kw), parent, "leaf")  # type: ignore[arg-type]


def judge(chain: Sequence[Made], anchor: Made, policy: str, *, curated: bool = False, name: str = "example.com",
          at: dt.datetime = NOW) -> ChainVerdict:  # fmt: skip
    certs = [m.cert for m in chain]
    return verify_chain(certs, Store([anchor.cert]), name, at, anchors=[anchor.cert], policy=policy, curated=curated)


def assert_refused(v: ChainVerdict, issue: str, *fragments: str) -> None:
    assert not v.valid and issue in v.issues, (v.issues, v.reasons)
    line = next((r for r in v.reasons if r.startswith(f"{issue}: ")), "")
    for fragment in fragments:
        assert fragment in line, v.reasons


def test_a_sane_chain_is_valid_under_both() -> None:
    r = root()
    i = ica(r)
    v_web, v_rfc = (judge([leaf(i), i], r, p) for p in ("webpki", "rfc5280"))
    assert v_web.valid and v_rfc.valid and not v_web.issues and not v_rfc.issues


@pytest.mark.parametrize(
    ("cn", "sans"),
    [
        ("Example.COM", [x509.DNSName("example.com")]),  # a copy is byte for byte
        ("www.example.com", [x509.DNSName("example.com")]),  # not in the SAN at all
        ("0x7F000001", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),  # hex IPv4
        ("2001:0db8::1", [x509.IPAddress(ipaddress.ip_address("2001:db8::1"))]),  # not RFC 5952 text
    ],
)
def test_a_common_name_that_copies_no_san_is_refused_under_webpki(cn: str, sans: list[x509.GeneralName]) -> None:
    r = root()
    name = str(sans[0].value)
    chain = [leaf(r, cn=cn, sans=sans)]
    assert_refused(judge(chain, r, "webpki", name=name), "common_name", "certificate 0", repr(cn), "BR 7.1.4.3")
    assert judge(chain, r, "rfc5280", name=name).valid


def test_common_names_that_copy_a_san_are_fine() -> None:
    r = root()
    v6 = x509.IPAddress(ipaddress.ip_address("2001:db8::1"))
    for cn, san in (("example.com", x509.DNSName("example.com")), ("2001:db8::1", v6)):
        name = str(san.value)
        assert judge([leaf(r, cn=cn, sans=[san])], r, "webpki", name=name).valid, cn
    assert judge([leaf(r, cn=None)], r, "webpki").valid  # no commonName at all


def test_any_eku_alone_is_no_server_eku_under_both() -> None:
    r = root()
    chain = [leaf(r, eku=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,))]
    for policy in ("webpki", "rfc5280"):
        assert_refused(
            judge(chain, r, policy), "key_usage", "certificate 0", "does not allow TLS server authentication"
        )


@pytest.mark.parametrize(
    ("eku", "fragment"),
    [
        ((ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE), "anyExtendedKeyUsage"),
        (None, "no extendedKeyUsage"),
    ],
)
def test_a_leaf_eku_browsers_refuse(eku: tuple[x509.ObjectIdentifier, ...] | None, fragment: str) -> None:
    r = root()
    chain = [leaf(r, eku=eku)]
    assert_refused(judge(chain, r, "webpki"), "key_usage", "certificate 0", fragment)
    assert judge(chain, r, "rfc5280").valid


def test_root_profile_rules_hold_for_a_bundle_not_for_the_system_store() -> None:
    """A root with an EKU, or an AKI naming an issuer: refused when the root comes from a `trust:`
    bundle, taken as shipped from the curated system store (Go Daddy Class 2 has such an AKI)."""
    with_eku = root(extra=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    v = judge([leaf(with_eku)], with_eku, "webpki")
    assert_refused(v, "key_usage", "issuer (", "a root with extendedKeyUsage")
    assert judge([leaf(with_eku)], with_eku, "webpki", curated=True).valid

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rules Root")])
    aki = x509.AuthorityKeyIdentifier(
        key_identifier=x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest,
        authority_cert_issuer=[x509.DirectoryName(name)],
        authority_cert_serial_number=1,
    )
    named = root(key=key, aki_value=aki)
    assert_refused(judge([leaf(named)], named, "webpki"), "key_identifier", "names an issuer or serial")
    assert judge([leaf(named)], named, "webpki", curated=True).valid
    assert judge([leaf(named)], named, "rfc5280").valid


@pytest.mark.parametrize(
    ("bits", "fragment"), [(1024, "1024 bits (at least 2048"), (2052, "2052 bits, not a multiple of 8")]
)
def test_rsa_keys_browsers_refuse(bits: int, fragment: str) -> None:
    r = root()
    chain = [leaf(r, key=rsa.generate_private_key(public_exponent=65537, key_size=bits))]
    assert_refused(judge(chain, r, "webpki"), "key_size", "certificate 0", fragment)
    assert judge(chain, r, "rfc5280").valid


@pytest.mark.parametrize("wildcard", ["*.com", "*.co.uk", "*.s3.amazonaws.com"])
def test_a_wildcard_over_a_public_suffix_is_refused_under_webpki(wildcard: str) -> None:
    r = root()
    host = "www" + wildcard[1:]
    chain = [leaf(r, cn=None, sans=[x509.DNSName(wildcard)])]
    assert_refused(judge(chain, r, "webpki", name=host), "public_suffix", wildcard)
    assert judge([leaf(r, cn=None, sans=[x509.DNSName("*.example.co.uk")])], r, "webpki", name="a.example.co.uk").valid


def test_a_san_that_is_no_host_name_is_refused_under_both() -> None:
    """An underscore is not in the preferred name syntax: the name is judged (not refused as an
    argument) and the chain is refused, naming the SAN."""
    r = root()
    chain = [leaf(r, cn=None, sans=[x509.DNSName("foo_bar.example.com")])]
    for policy in ("webpki", "rfc5280"):
        v = judge(chain, r, policy, name="foo_bar.example.com")
        assert_refused(v, "name_syntax", "certificate 0", "'foo_bar.example.com' is not a host name")


def test_key_identifiers_are_required_under_both() -> None:
    r = root()
    no_aki = [leaf(r, aki=False)]
    for policy in ("webpki", "rfc5280"):
        assert_refused(judge(no_aki, r, policy), "key_identifier", "certificate 0", "no authorityKeyIdentifier")
    i = ica(r, ski=False)
    for policy in ("webpki", "rfc5280"):
        assert_refused(
            judge([leaf(i), i], r, policy), "key_identifier", "certificate 1", "without subjectKeyIdentifier"
        )


def test_name_constraints_must_be_critical_under_rfc5280_only() -> None:
    nc = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None)
    r = root()
    i = ica(r, extra=[(nc, False)])
    chain = [leaf(i), i]
    assert_refused(judge(chain, r, "rfc5280"), "criticality", "certificate 1", "nameConstraints not marked critical")
    assert judge(chain, r, "webpki").valid  # browsers accept it


def test_policy_constraints_must_be_critical() -> None:
    pc = x509.PolicyConstraints(require_explicit_policy=None, inhibit_policy_mapping=0)
    r = root()
    i = ica(r, extra=[(pc, False)])
    for policy in ("webpki", "rfc5280"):
        assert_refused(judge([leaf(i), i], r, policy), "criticality", "certificate 1", "policyConstraints")


def test_serial_number_zero_is_refused() -> None:
    r = root()
    good = leaf(r)
    tbs = good.cert.tbs_certificate_bytes
    serial = good.cert.serial_number.to_bytes((good.cert.serial_number.bit_length() + 8) // 8, "big")
    encoded = bytes([0x02, len(serial)]) + serial
    assert tbs.count(encoded) == 1
    zero = tbs.replace(encoded, b"\x02\x01\x00")
    # The lengths of the TBS and the certificate shrink: re-encode both around the new body.
    body = _der(0x30, _strip(zero))
    signature = r.key.sign(body, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]
    algorithm = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
    der = _der(0x30, body + algorithm + _der(0x03, b"\x00" + signature))
    cert = x509.load_der_x509_certificate(der)
    assert cert.serial_number == 0
    for policy in ("webpki", "rfc5280"):
        assert_refused(judge([Made(cert, good.key)], r, policy), "serial_number", "certificate 0", "serial number 0")


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _strip(tlv: bytes) -> bytes:
    """The value of a DER TLV."""
    first = tlv[1]
    if first < 0x80:
        return tlv[2 : 2 + first]
    n = first & 0x7F
    length = int.from_bytes(tlv[2 : 2 + n], "big")
    return tlv[2 + n : 2 + n + length]


def test_not_after_is_inclusive() -> None:
    """RFC 5280 4.1.2.5: valid through notAfter. At that very second the chain still verifies and
    the tier is not `expired`; a second later both say expired."""
    r = root()
    end = NOW + 2 * DAY
    chain = [leaf(r, not_after=end)]
    cert = chain[0].cert
    at_end = cert.not_valid_after_utc
    assert judge(chain, r, "webpki", at=at_end).valid
    after = judge(chain, r, "webpki", at=at_end + dt.timedelta(seconds=1))
    assert not after.valid and "expired" in after.issues
    start, stop = cert.not_valid_before_utc.timestamp(), at_end.timestamp()
    assert tier_of(start, stop, stop, ExpiryTiers()) is Tier.CRITICAL
    assert tier_of(start, stop, stop + 1, ExpiryTiers()) is Tier.EXPIRED
