"""Bounds that hold whatever the peers send: caches in bytes (least recently used out first),
answers over a size cap not kept, and repeated log lines rate limited with a count."""

from __future__ import annotations

import logging

from certs.posture_kit import RevocationServer, make_crl
from pki import PKI

from exporter.judge.fetch import Fetcher
from exporter.support.logs import RateLimit
from exporter.support.lru import BytesLRU


def test_bytes_lru_keeps_its_bound_and_evicts_the_least_recently_used() -> None:
    cache = BytesLRU[str, int](max_bytes=100, max_item=40)
    for i in range(3):
        cache.put(f"k{i}", i, 30)
    assert cache.get("k0") == 0  # k0 is now the most recently used
    cache.put("k3", 3, 30)  # 120 > 100: the least recently used (k1) goes
    assert cache.get("k1") is None
    assert [cache.get(k) for k in ("k0", "k2", "k3")] == [0, 2, 3]
    assert cache.bytes == 90
    cache.put("big", 9, 41)  # over the item cap: not kept, nothing evicted for it
    assert cache.get("big") is None and cache.bytes == 90 and len(cache) == 3


async def test_rotating_large_crls_stay_within_the_cache_bound(pki: PKI) -> None:
    # A server that names a new CRL URL per leaf, each answer 0.2 MB: the cache keeps 1 MB.
    body = make_crl(pki.intermediate, revoked=range(1, 10_001))
    assert len(body) > 200_000
    server = await RevocationServer().start()
    fetcher = Fetcher(timeout=10, cache_bytes=1024 * 1024, cache_item_bytes=512 * 1024)
    try:
        for i in range(12):
            server.crls[f"r{i}"] = body
            await fetcher.crl(f"{server.base}/crl/r{i}", now=0.0)
            assert fetcher._cache.bytes <= 1024 * 1024
        assert len(fetcher._cache) == 1024 * 1024 // len(body) == 4  # as many as fit in 1 MB
        # The most recent are kept (no download), the oldest were evicted (downloaded again).
        hits = len(server.hits)
        await fetcher.crl(f"{server.base}/crl/r11", now=0.0)
        assert len(server.hits) == hits
        await fetcher.crl(f"{server.base}/crl/r0", now=0.0)
        assert len(server.hits) == hits + 1
        # An answer over the item cap is used, never kept.
        small = Fetcher(timeout=10, cache_bytes=1024 * 1024, cache_item_bytes=100_000)
        await small.crl(f"{server.base}/crl/r0", now=0.0)
        await small.crl(f"{server.base}/crl/r0", now=0.0)
        assert len(small._cache) == 0 and small.requests == 2
        await small.close()
    finally:
        await fetcher.close()
        await server.stop()


def test_repeated_log_lines_are_rate_limited_with_a_count() -> None:
    now = [0.0]
    limit = RateLimit(burst=3, window=10.0, clock=lambda: now[0])
    logger = logging.getLogger("hostile.flood")

    def record(msg: str) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.ERROR, __file__, 1, msg, (), None)

    passed = [limit.filter(record("accept failed: too many open files")) for _ in range(1000)]
    assert passed.count(True) == 3  # the first three of the window
    assert limit.filter(record("accept failed: connection reset"))  # other lines are not held back
    now[0] = 10.0
    after = record("accept failed: too many open files")
    assert limit.filter(after)
    assert after.fields == {"suppressed": 997}  # type: ignore[attr-defined]
