"""The chain verdict cache: same verdict as verify_chain, reused only while it still holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Store
from pki import NOW, PKI

from exporter.certs.chain import verify_chain
from exporter.certs.identity import SanMatcher
from exporter.certs.verdicts import MAX_AGE, VerdictCache


def test_a_repeated_chain_is_verified_once_and_gives_the_same_verdict(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    chain = pki["good"].chain
    first = cache.verify(chain, store, "localhost", NOW)
    again = cache.verify(list(chain), store, "localhost", NOW + dt.timedelta(minutes=5))
    assert again == first
    assert (cache.hits, cache.misses) == (1, 1)
    assert first == verify_chain(chain, store, "localhost", NOW)
    assert list(first.path) == [*chain, pki.root.cert] and first.path[0] is chain[0]


def test_a_hit_gives_the_path_of_the_callers_certificates_and_keeps_none_of_them(pki: PKI) -> None:
    """The cache holds no parsed certificate of a probe (3.6 KB each and what they parse: 10,000
    distinct chains were about 140 MB). A hit's path is made of the certificates the caller
    passed (the revocation step finds the leaf's issuer by identity), the store's anchor last."""
    store, cache = Store([pki.root.cert]), VerdictCache()
    first_chain = [x509.load_der_x509_certificate(c.public_bytes(Encoding.DER)) for c in pki["good"].chain]
    first = cache.verify(first_chain, store, "localhost", NOW)
    again_chain = [x509.load_der_x509_certificate(c.public_bytes(Encoding.DER)) for c in pki["good"].chain]
    again = cache.verify(again_chain, store, "localhost", NOW)
    other_name = cache.verify(again_chain, store, "good.test", NOW)  # a new name: the trust part's hit
    assert (cache.hits, cache.trust_hits) == (1, 1) and again.valid is True and other_name.valid is True
    for v in (again, other_name):
        assert len(v.path) == 3 and v.path[0] is again_chain[0] and v.path[1] is again_chain[1]
        assert v.path[2] == pki.root.cert
    assert [c.fingerprint(hashes.SHA256()) for c in again.path] == [c.fingerprint(hashes.SHA256()) for c in first.path]
    # what the cache keeps: positions in the caller's certificates, and the store's anchor
    entries = [*cache._entries.values(), *cache._trust.values()]
    assert len(entries) == 3
    for entry in entries:
        assert entry.verdict.path == () and entry.path[:2] == (0, 1) and entry.path[2] == pki.root.cert
        assert not any(obj is c for obj in entry.path for c in [*first_chain, *again_chain])


def test_verdicts_judged_alike_are_held_once_and_stay_correct(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    good = cache.verify(pki["good"].chain, store, "localhost", NOW)
    rsa = cache.verify(pki["good-rsa"].chain, store, "localhost", NOW)
    mismatch = cache.verify(pki["good-rsa"].chain, store, "other.test", NOW)
    assert (good.valid, rsa.valid, mismatch.valid) == (True, True, False)
    assert good.path[0] is pki["good"].cert and rsa.path[0] is pki["good-rsa"].cert
    kept = [e.verdict for e in cache._entries.values()]
    assert kept[0] is kept[1] and kept[2] is not kept[0]  # two valid chains: one verdict held
    assert kept[2].issues == {"hostname_mismatch"}


def test_fetched_intermediates_are_taken_from_the_caller_too(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    served = pki["good"].chain[:1]
    completed = cache.verify(served, store, "localhost", NOW, extra=[pki.intermediate.cert])
    assert completed.issues == {"incomplete"}
    fetched = x509.load_der_x509_certificate(pki.intermediate.cert.public_bytes(Encoding.DER))
    again = cache.verify(served, store, "localhost", NOW, extra=[fetched])  # a hit
    assert cache.hits == 1 and again == completed and again.path[0] is served[0] and again.path[1] is fetched


def test_server_name_store_and_extra_are_part_of_the_key(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    chain = pki["good"].chain
    assert cache.verify(chain, store, "localhost", NOW).valid is True
    mismatch = cache.verify(chain, store, "other.test", NOW)
    assert mismatch.valid is False and mismatch.issues == {"hostname_mismatch"}
    other_store = Store([pki.intermediate.cert])  # a new store object: verified again
    cache.verify(chain, other_store, "localhost", NOW)
    served = chain[:1]
    assert cache.verify(served, store, "localhost", NOW).issues == {"untrusted_root"}
    completed = cache.verify(served, store, "localhost", NOW, extra=[pki.intermediate.cert])
    assert completed.issues == {"incomplete"}
    assert (cache.hits, cache.misses) == (0, 5)


def test_a_verdict_ends_at_the_next_validity_boundary(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    leaf = pki["expiring-5d"]
    before = cache.verify(leaf.chain, store, "localhost", NOW)
    assert before.valid is True
    expiry = leaf.cert.not_valid_after_utc
    just_before = cache.verify(leaf.chain, store, "localhost", expiry - dt.timedelta(seconds=1))
    assert just_before.valid is True
    after = cache.verify(leaf.chain, store, "localhost", expiry + dt.timedelta(seconds=1))
    assert after.valid is False and after.issues == {"expired"}
    assert cache.misses == 3  # the first, once MAX_AGE had passed, and past the expiry
    assert dt.timedelta(days=5) > MAX_AGE


def test_the_cache_is_bounded(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache(max_entries=2)
    for name in ("good", "good-rsa", "ec-p256"):
        cache.verify(pki[name].chain, store, "localhost", NOW)
    assert len(cache) == 2
    cache.verify(pki["good"].chain, store, "localhost", NOW)  # the oldest went first
    assert (cache.hits, cache.misses) == (0, 4)


def test_a_new_name_reuses_the_trust_part_and_still_gets_its_own_name_verdict(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    chain = pki["good"].chain
    assert cache.verify(chain, store, "localhost", NOW).valid is True
    mismatch = cache.verify(chain, store, "n1.first.test", NOW)
    assert mismatch == verify_chain(chain, store, "n1.first.test", NOW)
    assert mismatch.valid is False and mismatch.issues == {"hostname_mismatch"}
    assert mismatch.reasons == (
        f"hostname_mismatch: certificate 0 ({chain[0].subject.rfc4514_string()}) does not cover n1.first.test",
    )
    assert mismatch.path == verify_chain(chain, store, "localhost", NOW).path  # trust judged all the same
    # the other names the leaf covers, a DNS name and IP addresses: the same trust part again
    for name in ("good.test", "127.0.0.1", "[::1]", "LOCALHOST."):
        assert cache.verify(chain, store, name, NOW) == verify_chain(chain, store, name, NOW)
    assert cache.verify(chain, store, "localhost", NOW).valid is True  # the matching name's verdict is intact
    assert (cache.hits, cache.misses) == (1, 6)
    assert (cache.trust_hits, cache.trust_misses) == (5, 1)


def test_the_mismatch_adds_to_the_chain_issues_and_comes_first(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    chain = pki["expired"].chain
    assert cache.verify(chain, store, "localhost", NOW).issues == {"expired"}
    v = cache.verify(chain, store, "other.test", NOW)
    assert v == verify_chain(chain, store, "other.test", NOW)
    assert v.issues == {"expired", "hostname_mismatch"} and v.valid is False
    assert v.reasons[0].startswith("hostname_mismatch: certificate 0") and v.reasons[1].startswith("expired: ")
    assert v.detail == cache.verify(chain, store, "localhost", NOW).detail != ""
    assert (cache.trust_hits, cache.trust_misses) == (1, 1)


def test_a_name_the_verifier_may_read_otherwise_is_verified_under_that_name(tmp_path: Path) -> None:
    pki = PKI(tmp_path / "wild")
    leaf = pki.issue("wild", sans=("*.example.test", "localhost"))
    store, cache = Store([pki.root.cert]), VerdictCache()
    for name in ("a.example.test", "b.example.test", "localhost", "nope.test"):
        assert cache.verify(leaf.chain, store, name, NOW).valid is (name != "nope.test")
    assert (cache.trust_hits, cache.trust_misses) == (3, 1)  # plain names: one trust part
    odd = "a_b.example.test"  # covered by our matching; not a DNS name to the verifier
    assert cache.verify(leaf.chain, store, odd, NOW) == verify_chain(leaf.chain, store, odd, NOW)
    assert (cache.trust_hits, cache.trust_misses) == (3, 2)


def test_the_trust_part_ends_at_the_validity_boundary_for_every_name(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    leaf = pki["expiring-5d"]
    assert cache.verify(leaf.chain, store, "localhost", NOW).valid is True
    after = leaf.cert.not_valid_after_utc + dt.timedelta(seconds=1)
    v = cache.verify(leaf.chain, store, "new.test", after)
    assert v.issues == {"expired", "hostname_mismatch"}
    assert (cache.trust_hits, cache.trust_misses) == (0, 2)


def test_received_der_gives_the_same_key(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    chain = pki["good"].chain
    first = cache.verify(chain, store, "localhost", NOW)
    ders = [c.public_bytes(Encoding.DER) for c in chain]
    assert cache.verify(chain, store, "localhost", NOW, ders=ders) == first
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_san_matcher_reads_the_sans_once_and_matches_as_rfc_6125_says() -> None:
    m = SanMatcher(("*.example.test", "host.test", "192.0.2.1", "2001:db8::1"))
    cases = {
        "a.example.test": True,
        "A.EXAMPLE.TEST.": True,
        "a.b.example.test": False,  # one label only
        "example.test": False,
        "host.test": True,
        "192.0.2.1": True,
        "[2001:db8::1]": True,
        "2001:DB8:0::1": True,
        "192.0.2.2": False,
        "other.test": False,
    }
    assert {name: m.covers(name) for name in cases} == cases
    dns_ip = SanMatcher(("192.0.2.9",))  # a SAN that reads as an address matches as one
    assert (dns_ip.covers("192.0.2.9"), dns_ip.covers("host.test")) == (True, False)
