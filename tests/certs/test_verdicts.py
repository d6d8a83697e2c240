"""The chain verdict cache: same verdict as verify_chain, reused only while it still holds."""

from __future__ import annotations

import datetime as dt

from cryptography.x509.verification import Store
from pki import NOW, PKI

from exporter.certs.chain import verify_chain
from exporter.certs.verdicts import MAX_AGE, VerdictCache


def test_a_repeated_chain_is_verified_once_and_gives_the_same_verdict(pki: PKI) -> None:
    store, cache = Store([pki.root.cert]), VerdictCache()
    chain = pki["good"].chain
    first = cache.verify(chain, store, "localhost", NOW)
    again = cache.verify(list(chain), store, "localhost", NOW + dt.timedelta(minutes=5))
    assert again is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert first == verify_chain(chain, store, "localhost", NOW)


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
