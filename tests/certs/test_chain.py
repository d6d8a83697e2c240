from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from certs.posture_kit import DAY, aia, sub_ca
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import Store
from pki import NOW, PKI

from exporter.certs import trust
from exporter.certs.chain import ca_issuer_urls, roles, verify_chain, wrong_order


@pytest.fixture(scope="module")
def store(pki: PKI) -> Store:
    return Store([pki.root.cert])


def test_good_chain_is_valid_with_path_and_roles(pki: PKI, store: Store) -> None:
    good = pki["good"]
    v = verify_chain(good.chain, store, "localhost", NOW)
    assert v.valid is True
    assert v.issues == frozenset()
    assert v.path == (good.cert, pki.intermediate.cert, pki.root.cert)
    assert v.roles == ("leaf", "intermediate")
    assert v.detail == ""


@pytest.mark.parametrize("server_name", ["127.0.0.1", "GOOD.TEST", "good.test.", "::1"])
def test_names_and_ips_match(pki: PKI, store: Store, server_name: str) -> None:
    assert verify_chain(pki["good"].chain, store, server_name, NOW).valid is True


def test_hostname_mismatch_is_judged_apart_from_trust(pki: PKI, store: Store) -> None:
    v = verify_chain(pki["wrong-host"].chain, store, "localhost", NOW)
    assert v.valid is False
    assert v.issues == {"hostname_mismatch"}
    assert v.path[-1] == pki.root.cert  # trust itself is fine


def test_expired_leaf(pki: PKI, store: Store) -> None:
    v = verify_chain(pki["expired"].chain, store, "localhost", NOW)
    assert (v.valid, v.issues) == (False, {"expired"})
    assert "not valid at validation time" in v.detail


def test_not_yet_valid_leaf(pki: PKI, store: Store) -> None:
    v = verify_chain(pki["not-yet-valid"].chain, store, "localhost", NOW)
    assert (v.valid, v.issues) == (False, {"not_yet_valid"})


def test_expired_intermediate(tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    old = sub_ca(pki, "Old Intermediate", not_before=NOW - 900 * DAY, not_after=NOW - 5 * DAY)
    leaf = pki.issue("under-old", issuer=old, not_before=NOW - 100 * DAY, not_after=NOW + 100 * DAY)
    v = verify_chain(leaf.chain, Store([pki.root.cert]), "localhost", NOW)
    assert (v.valid, v.issues) == (False, {"expired"})
    assert v.roles == ("leaf", "intermediate")


def test_expired_and_wrong_name_and_untrusted_all_show(tmp_path: Path, store: Store) -> None:
    other = PKI(tmp_path)
    leaf = other.issue("x", sans=("elsewhere.test",), not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    v = verify_chain(leaf.chain, store, "localhost", NOW)
    assert v.issues == {"expired", "hostname_mismatch", "untrusted_root"}


def test_unknown_issuer_is_untrusted_root(tmp_path: Path, store: Store) -> None:
    other = PKI(tmp_path)
    leaf = other.issue("stranger")
    v = verify_chain(leaf.chain, store, "localhost", NOW)
    assert (v.valid, v.issues) == (False, {"untrusted_root"})
    assert v.completable is False  # no AIA to follow
    # Served with its own root, the chain ends at a self-signed unknown root.
    v2 = verify_chain([*leaf.chain, other.root.cert], store, "localhost", NOW)
    assert v2.issues == {"untrusted_root"}
    assert v2.roles == ("leaf", "intermediate", "root")


def test_self_signed_leaf(pki: PKI, store: Store) -> None:
    v = verify_chain(pki["self-signed"].chain, store, "localhost", NOW)
    assert (v.valid, v.issues) == (False, {"self_signed"})
    assert v.roles == ("leaf",)


def test_self_signed_leaf_pinned_in_the_store_is_valid(pki: PKI) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())  # webpki wants an AKI on the EE
    leaf = pki.issue("pinned", self_signed=True, key=key, extensions=[(aki, False)]).cert
    v = verify_chain([leaf], Store([leaf]), "localhost", NOW)
    assert (v.valid, v.issues) == (True, frozenset())


def test_missing_intermediate_is_completable_and_incomplete_with_aia(tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    leaf = pki.issue("bare", extensions=[aia(ca_issuers="http://127.0.0.1:9/ca/inter")])
    store = Store([pki.root.cert])
    served = [leaf.cert]
    v = verify_chain(served, store, "localhost", NOW)
    assert (v.valid, v.issues, v.completable) == (False, {"untrusted_root"}, True)
    assert ca_issuer_urls(leaf.cert) == ("http://127.0.0.1:9/ca/inter",)
    v2 = verify_chain(served, store, "localhost", NOW, extra=[pki.intermediate.cert])
    assert (v2.valid, v2.issues) == (False, {"incomplete"})
    assert v2.path == (leaf.cert, pki.intermediate.cert, pki.root.cert)
    # Extras that do not help leave it untrusted and not completable any more.
    v3 = verify_chain(served, store, "localhost", NOW, extra=[PKI(tmp_path / "other").intermediate.cert])
    assert (v3.issues, v3.completable) == ({"untrusted_root"}, False)


def test_wrong_order_is_reported_but_still_valid(tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    mid = sub_ca(pki, "Mid CA", parent=pki.intermediate)
    leaf = pki.issue("deep", issuer=mid)
    assert [c.subject.rfc4514_string() for c in leaf.chain][1:] == [
        "CN=Mid CA",
        "O=tls-exporter tests,CN=Test Intermediate CA",
    ]
    shuffled = [leaf.cert, pki.intermediate.cert, mid.cert]
    assert wrong_order(shuffled) is True
    assert wrong_order(leaf.chain) is False
    v = verify_chain(shuffled, Store([pki.root.cert]), "localhost", NOW)
    assert (v.valid, v.issues) == (True, {"wrong_order"})


def test_root_and_junk_after_the_chain_are_not_wrong_order(pki: PKI, tmp_path: Path, store: Store) -> None:
    junk = PKI(tmp_path).root.cert
    served = [*pki["good"].chain, pki.root.cert, junk]
    assert roles(served) == ("leaf", "intermediate", "root", "root")
    v = verify_chain(served, store, "localhost", NOW)
    assert (v.valid, v.issues) == (True, frozenset())


def test_sha1_leaf_is_not_trusted(pki: PKI, store: Store) -> None:
    # The openssl CLI dates this fixture from its own clock, a little after pki.NOW.
    v = verify_chain(pki["sha1"].chain, store, "localhost", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    assert v.valid is False
    # Refused for its SHA-1 signature, not for an unknown root: the root is trusted.
    assert v.issues == {"weak_signature"}
    assert "Forbidden signature algorithm" in v.detail
    assert v.reasons == (
        "weak_signature: certificate 0 (O=tls-exporter tests,CN=localhost): signed with SHA1, "
        "which clients no longer accept",
    )


def test_naive_time_is_utc_and_time_decides(pki: PKI, store: Store) -> None:
    naive = NOW.replace(tzinfo=None)
    assert verify_chain(pki["good"].chain, store, "localhost", naive).valid is True
    later = NOW + dt.timedelta(days=400)
    assert verify_chain(pki["good"].chain, store, "localhost", later).issues == {"expired"}


def test_empty_chain(store: Store) -> None:
    v = verify_chain([], store, "x", NOW)
    assert (v.valid, v.issues, v.detail) == (False, frozenset(), "no certificate")


# -- trust stores -------------------------------------------------------------------------------


def test_bundle_is_loaded_per_block_and_cached(pki: PKI, tmp_path: Path) -> None:
    pem = pki.root.cert.public_bytes(serialization.Encoding.PEM)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"junk\n-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n" + pem)
    store, count = trust.load_store_counted(str(bundle))
    assert count == 1
    assert trust.load_store(str(bundle)) is store  # cached
    assert verify_chain(pki["good"].chain, store, "localhost", NOW).valid is True
    # A changed bundle is read again.
    bundle.write_bytes(pem + pki.intermediate.cert.public_bytes(serialization.Encoding.PEM))
    os.utime(bundle, ns=(1, 1))
    store2, count2 = trust.load_store_counted(str(bundle))
    assert (count2, store2 is store) == (2, False)


def test_bad_bundles_raise_trust_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"nothing here")
    with pytest.raises(trust.TrustError, match="no PEM certificate"):
        trust.load_store(str(empty))
    with pytest.raises(trust.TrustError, match=r"missing\.pem"):
        trust.load_store(str(tmp_path / "missing.pem"))


def test_system_trust_uses_the_default_bundle() -> None:
    path = trust.system_bundle_path()
    assert os.path.isfile(path)
    _, count = trust.load_store_counted("system")
    assert count > 50


def test_issued_by_answers_are_remembered_per_pair_and_stay_right(pki: PKI) -> None:
    from exporter.certs import chain

    good, other = pki["good"].cert, pki.issue("issued-by-other", self_signed=True).cert
    calls: list[tuple[str, str]] = []
    real = chain._issued_by

    def counting(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        calls.append((cert.subject.rfc4514_string(), issuer.subject.rfc4514_string()))
        return real(cert, issuer)

    chain._ISSUED.clear()
    chain._issued_by = counting  # type: ignore[assignment]
    try:
        for _ in range(3):  # a fresh parse of the same DER each time, as every probe makes
            leaf = x509.load_der_x509_certificate(good.public_bytes(serialization.Encoding.DER))
            assert chain.issued_by(leaf, pki.intermediate.cert) is True
            assert chain.issued_by(leaf, other) is False
            assert chain.issued_by(leaf, pki.root.cert) is False  # the root signed the intermediate, not the leaf
        assert chain.issued_by(pki.intermediate.cert, pki.root.cert) is True
    finally:
        chain._issued_by = real  # type: ignore[assignment]
    assert len(calls) == 4  # each pair checked once


def test_signed_by_answers_are_remembered_per_pair_and_stay_right(pki: PKI) -> None:
    from exporter.certs import causes

    other = pki.issue("signed-by-other", self_signed=True).cert
    calls: list[int] = []
    real = causes._signed_by

    def counting(cert: x509.Certificate, issuer: x509.Certificate) -> bool | None:
        calls.append(1)
        return real(cert, issuer)

    causes._SIGNED.clear()
    causes._signed_by = counting  # type: ignore[assignment]
    try:
        for _ in range(3):
            leaf = x509.load_der_x509_certificate(pki["good"].cert.public_bytes(serialization.Encoding.DER))
            assert causes.signed_by(leaf, pki.intermediate.cert) is True
            assert causes.signed_by(pki.intermediate.cert, pki.root.cert) is True
            assert causes.signed_by(leaf, other) is False  # another name: refused before any signature check
    finally:
        causes._signed_by = real  # type: ignore[assignment]
    assert len(calls) == 2
