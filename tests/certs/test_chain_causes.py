"""Every chain failure named by its cause, with the certificate it concerns, against real TLS servers.

Each fixture has exactly one defect; the exporter probes it on a loopback TLS server (the same
pipeline the scheduler runs) and must name that cause, not "untrusted_root".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from certs.defects import DAY, intermediate, key_usage, server_leaf, with_bad_signature
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from helpers import make_config, make_target
from pki import NOW, PKI, Issued
from servers import LoopbackServers

from exporter.config.model import Profile
from exporter.judge.assess import Assessor
from exporter.outputs.verdict import Status, verdict
from exporter.pipeline import Pipeline
from exporter.results import Result

BC_LEAF = (x509.BasicConstraints(ca=False, path_length=None), True)
SERVER_AUTH = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)


def client_auth_only(pki: PKI) -> Issued:
    return server_leaf(
        pki, "client only", extensions=[BC_LEAF, (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)]
    )


def leaf_is_a_ca(pki: PKI) -> Issued:
    return server_leaf(
        pki, "leaf ca", extensions=[(x509.BasicConstraints(ca=True, path_length=None), True), SERVER_AUTH]
    )


def leaf_signs_certificates(pki: PKI) -> Issued:
    return server_leaf(pki, "leaf signer", extensions=[BC_LEAF, SERVER_AUTH, key_usage(key_cert_sign=True)])


def intermediate_not_a_ca(pki: PKI) -> Issued:
    mid = intermediate(pki, "Not A CA", [(x509.BasicConstraints(ca=False, path_length=None), True)])
    return server_leaf(pki, "under not a ca", issuer=mid)


def intermediate_without_basic_constraints(pki: PKI) -> Issued:
    mid = intermediate(pki, "No Basic Constraints", [key_usage(key_cert_sign=True, crl_sign=True)])
    return server_leaf(pki, "under no bc", issuer=mid)


def intermediate_cannot_sign(pki: PKI) -> Issued:
    mid = intermediate(
        pki, "Cannot Sign", [(x509.BasicConstraints(ca=True, path_length=None), True), key_usage(crl_sign=True)]
    )
    return server_leaf(pki, "under cannot sign", issuer=mid)


def constrained_elsewhere(pki: PKI) -> Issued:
    constraints = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.org")], excluded_subtrees=None)
    mid = intermediate(
        pki,
        "Constrained CA",
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            key_usage(key_cert_sign=True, crl_sign=True),
            (constraints, True),
        ],
    )
    return server_leaf(pki, "outside constraints", issuer=mid)


def bad_signature(pki: PKI) -> Issued:
    return with_bad_signature(pki, server_leaf(pki, "tampered"))


def sha1_leaf(pki: PKI) -> Issued:
    return pki.issue_sha1("sha1 leaf")


def unknown_critical_extension(pki: PKI) -> Issued:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    return server_leaf(pki, "odd critical", extensions=[BC_LEAF, SERVER_AUTH, (odd, True)])


def expired(pki: PKI) -> Issued:
    return pki.issue("old", not_before=NOW - 400 * DAY, not_after=NOW - 10 * DAY)


def not_yet_valid(pki: PKI) -> Issued:
    return pki.issue("early", not_before=NOW + 10 * DAY, not_after=NOW + 400 * DAY)


def self_signed(pki: PKI) -> Issued:
    return pki.issue("alone", self_signed=True)


def wrong_host(pki: PKI) -> Issued:
    return pki.issue("elsewhere", sans=("elsewhere.test",))


def unknown_root(pki: PKI) -> Issued:
    stranger = PKI(pki.dir / "stranger")
    return stranger.issue("stranger")


CASES: list[tuple[str, Callable[[PKI], Issued], str, int, str]] = [
    # (cause, fixture, position, words in the reason)
    ("key_usage", client_auth_only, "key_usage", 0, "extendedKeyUsage does not allow TLS server authentication"),
    ("leaf_signer", leaf_signs_certificates, "key_usage", 0, "keyCertSign"),
    ("mid_not_ca", intermediate_not_a_ca, "basic_constraints", 1, "not a CA (basicConstraints CA:FALSE)"),
    ("mid_no_bc", intermediate_without_basic_constraints, "basic_constraints", 1, "without basicConstraints"),
    ("mid_no_keycertsign", intermediate_cannot_sign, "key_usage", 1, "does not allow signing certificates"),
    ("name_constraints", constrained_elsewhere, "name_constraints", 1, "do not permit localhost"),
    ("bad_signature", bad_signature, "bad_signature", 0, "the signature does not verify"),
    ("weak_signature", sha1_leaf, "weak_signature", 0, "signed with SHA1"),
    ("untrusted_root", unknown_root, "untrusted_root", -1, "which the trust store does not hold"),
    ("extension", unknown_critical_extension, "extension", -1, "a critical extension the verifier does not know"),
    ("expired", expired, "expired", 0, "expired on"),
    ("not_yet_valid", not_yet_valid, "not_yet_valid", 0, "is not valid before"),
    ("self_signed", self_signed, "self_signed", 0, "is self-signed and not a trust anchor"),
    ("hostname_mismatch", wrong_host, "hostname_mismatch", 0, "does not cover localhost"),
]


async def probe(servers: LoopbackServers, pki: PKI, leaf: Issued, policy: str | None = None) -> Result:
    target = make_target(servers.tls(leaf.server_context()))
    profile = Profile(
        trust=str(pki.root.cert_path), revocation="none", scan_protocol_versions=False, validation_policy=policy
    )
    pipeline = Pipeline(assessor=Assessor())
    try:
        (result,) = await pipeline.probe(target, make_config(target, profiles=[profile]))
    finally:
        await pipeline.close()
    return result


@pytest.mark.parametrize(("case", "make", "cause", "position", "words"), CASES, ids=[c[0] for c in CASES])
async def test_each_refusal_is_named_by_its_cause(
    tmp_path: Path,
    servers: LoopbackServers,
    case: str,
    make: Callable[[PKI], Issued],
    cause: str,
    position: int,
    words: str,
) -> None:
    pki = PKI(tmp_path / "pki")
    leaf = make(pki)
    result = await probe(servers, pki, leaf)
    assert result.outcome.value == "certificate_found" and result.report is not None
    a = result.report.assessment
    assert a is not None
    assert (a.chain_valid, set(a.chain_issues)) == (False, {cause})
    (reason,) = [r for r in a.chain_reasons if r.startswith(f"{cause}: ")]
    assert words in reason
    if position >= 0:
        subject = (leaf.chain[position] if position < len(leaf.chain) else leaf.cert).subject.rfc4514_string()
        assert f"certificate {position} ({subject})" in reason
    # What a person reads names the cause and the certificate, never the verifier's raw message.
    assert any(line.endswith(f"  chain: {reason}") for line in result.log)
    v = verdict(result, make_target(1), Profile(), result.started_at)
    assert v.status is Status.CRITICAL
    if cause in ("expired", "not_yet_valid", "hostname_mismatch"):  # problems of their own (expiry, host name)
        assert not any(p.startswith(f"chain invalid: {cause}") for p in v.problems)
    else:
        assert any(p.startswith(f"chain invalid: {reason}") for p in v.problems)


async def test_a_ca_certificate_as_the_leaf_is_refused_by_webpki_only(tmp_path: Path, servers: LoopbackServers) -> None:
    """RFC 5280 lets a CA certificate end a path (4.2.1.9); browsers refuse it as a server's
    certificate. Under webpki the refusal names the leaf."""
    pki = PKI(tmp_path / "pki")
    leaf = leaf_is_a_ca(pki)
    result = await probe(servers, pki, leaf, "webpki")
    assert result.report is not None and result.report.assessment is not None
    a = result.report.assessment
    assert a.chain_valid is False and "basic_constraints" in a.chain_issues
    subject = leaf.cert.subject.rfc4514_string()
    assert any(f"basic_constraints: certificate 0 ({subject}): a leaf that is a CA" in r for r in a.chain_reasons)
    result = await probe(servers, pki, leaf, "rfc5280")
    assert result.report is not None and result.report.assessment is not None
    assert result.report.assessment.chain_valid is True


async def test_a_chain_served_out_of_order_is_valid_with_the_issue_named(
    tmp_path: Path, servers: LoopbackServers
) -> None:
    pki = PKI(tmp_path / "pki")
    mid = intermediate(
        pki, "Mid CA", [(x509.BasicConstraints(ca=True, path_length=None), True), key_usage(key_cert_sign=True)]
    )
    leaf = server_leaf(pki, "deep", issuer=mid)
    # Serve leaf, root, intermediate: the intermediate does not follow the leaf.
    leaf.chain_path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (leaf.cert, pki.root.cert, mid.cert)))
    result = await probe(servers, pki, leaf)
    assert result.report is not None and result.report.assessment is not None
    a = result.report.assessment
    assert (a.chain_valid, set(a.chain_issues)) == (True, {"wrong_order"})
    assert a.chain_reasons == ("wrong_order: a certificate is not followed by its issuer (clients accept it)",)
