"""`--shard`: a stable, balanced split of target keys over N instances, and clear errors."""

from __future__ import annotations

import hashlib

import pytest

from exporter.schedule.shard import Shard, bucket, parse_shard

KEYS = [f"https://host-{i}.example.net:443" for i in range(10_000)]


def test_ten_thousand_keys_over_four_shards_are_balanced_and_disjoint() -> None:
    shards = [Shard(i, 4) for i in range(4)]
    owned = [{k for k in KEYS if s.owns(k)} for s in shards]
    for share in owned:
        assert abs(len(share) - 2500) <= 125, [len(o) for o in owned]  # within 5% of a quarter
    assert set().union(*owned) == set(KEYS)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not owned[i] & owned[j]


def test_split_is_the_sha256_of_the_key_modulo_n() -> None:
    # Fixed by the key alone: the same after a restart, a reload or on another machine.
    key = "smtp://mx1.example.net:25"
    expected = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 3
    assert bucket(key, 3) == expected
    assert [Shard(i, 3).owns(key) for i in range(3)] == [i == expected for i in range(3)]


def test_adding_keys_moves_none_of_the_others() -> None:
    before = {k: bucket(k, 4) for k in KEYS[:1000]}
    after = {k: bucket(k, 4) for k in KEYS[:1000] + [f"tls://new-{i}:443" for i in range(100)]}
    assert all(after[k] == v for k, v in before.items())


def test_single_shard_owns_everything() -> None:
    assert all(Shard().owns(k) for k in KEYS[:100])
    assert str(Shard()) == "0/1"


@pytest.mark.parametrize(
    ("spec", "hostname", "want"),
    [
        ("0/1", None, Shard(0, 1)),
        ("2/3", None, Shard(2, 3)),
        (" 1/4 ", None, Shard(1, 4)),
        ("auto/3", "tls-exporter-2", Shard(2, 3)),
        ("auto/3", "tls-exporter-0.tls-exporter.monitoring.svc.cluster.local", Shard(0, 3)),
        ("auto/12", "my-sharded-exporter-11", Shard(11, 12)),
    ],
)
def test_parse(spec: str, hostname: str | None, want: Shard) -> None:
    assert parse_shard(spec, hostname) == want


@pytest.mark.parametrize(
    ("spec", "hostname", "message"),
    [
        ("3", None, "--shard: invalid value '3' (expected I/N with 0 <= I < N (e.g. 0/3), or auto/N)"),
        ("1/0", None, "--shard: invalid value '1/0': N must be at least 1"),
        ("-1/3", None, "--shard: invalid value '-1/3' (expected I/N with 0 <= I < N (e.g. 0/3), or auto/N)"),
        (
            "3/3",
            None,
            "--shard: invalid value '3/3': I must be below N (expected I/N with 0 <= I < N (e.g. 0/3), or auto/N)",
        ),
        ("a/3", None, "--shard: invalid value 'a/3' (expected I/N with 0 <= I < N (e.g. 0/3), or auto/N)"),
        (
            "auto/3",
            "exporter",
            "--shard=auto/3: host name 'exporter' does not end in -K (a StatefulSet pod name such as tls-exporter-2); "
            "give the index as I/N",
        ),
        (
            "auto/3",
            "tls-exporter-3",
            "--shard=auto/3: host name 'tls-exporter-3' gives index 3, not below 3 "
            "(does the StatefulSet have more replicas than N?)",
        ),
    ],
)
def test_parse_errors(spec: str, hostname: str | None, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_shard(spec, hostname)
    assert str(info.value) == message
