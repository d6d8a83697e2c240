"""`load_config(..., shard=)`: a replica keeps only its share of `targets:`, and still refuses
exactly what every other replica refuses, with the same messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporter.config import load_config, parse_config
from exporter.config.model import Config, Target, target_key
from exporter.metrics.internal import SelfMetrics
from exporter.pipeline import Pipeline
from exporter.schedule.scheduler import Scheduler
from exporter.schedule.shard import Shard
from exporter.schedule.store import Store
from exporter.support import headroom
from exporter.support.errors import ConfigError

SHARDS = 3


def _entries() -> list[str]:
    """Targets of several protocols, ports, server names and spellings, and one address probed
    under two server names (whose series then carry `server_name`)."""
    entries = [f"{{address: 'host-{i}.example.test:{443 + i % 3}', owner: team-{i % 4}}}" for i in range(120)]
    entries += [f"{{address: '198.51.100.{i}:25', protocol: smtp}}" for i in range(60)]
    entries += [
        f"{{address: '[2001:db8::{i:x}]:8443', protocol: tls, server_name: svc-{i}.example.test}}" for i in range(30)
    ]
    entries += [
        "{address: 'shared.example.test:443', server_name: a.example.test}",
        "{address: 'shared.example.test:443', server_name: b.example.test}",
    ]
    return entries


def _write(path: Path, entries: list[str], extra: str = "") -> Path:
    path.write_text(
        "defaults: {interval: 5m, timeout: 10s}\n"
        "targets:\n" + "".join(f"  - {e}\n" for e in entries) + f"files:\n  - {{path: {path.parent}/*.pem}}\n{extra}"
    )
    return path


def _errors(path: Path, shard: Shard | None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, shard=shard)
    return caught.value.errors


def _scheduled(config: Config, shard: Shard) -> list[str]:
    scheduler = Scheduler(Store(), Pipeline(), SelfMetrics(CollectorRegistry()), shard=shard)
    return [job.key for job in scheduler.jobs(config) if isinstance(job, Target)]


def test_each_shard_keeps_exactly_the_targets_the_scheduler_gives_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.yml", _entries())
    everything = load_config(path)
    assert everything.targets_in_file is None and len(everything.targets) == 212
    shares = []
    for index in range(SHARDS):
        shard = Shard(index, SHARDS)
        config = load_config(path, shard=shard)
        # The same targets, built the same way (label_server_name included), in file order.
        assert config.targets == tuple(t for t in everything.targets if shard.owns(t.key))
        assert [t.key for t in config.targets] == _scheduled(everything, shard) == _scheduled(config, shard)
        assert config.targets_in_file == 212
        assert config.files == everything.files  # files are every replica's own
        assert 30 <= len(config.targets) <= 110  # a real share each
        shares.append([t.key for t in config.targets])
    union = [key for share in shares for key in share]
    assert sorted(union) == sorted(t.key for t in everything.targets)  # every target exactly once


def test_one_shard_of_one_is_the_whole_configuration(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.yml", _entries())
    assert load_config(path, shard=Shard(0, 1)) == load_config(path)


def test_two_server_names_of_one_address_label_both_whichever_shard_holds_them(tmp_path: Path) -> None:
    # Find two server names whose targets land in different shards: each replica sees only its own,
    # and still labels it, as the replica holding both would.
    names = next(
        (a, b)
        for a in (f"a{i}.example.test" for i in range(50))
        for b in (f"b{i}.example.test" for i in range(50))
        if Shard(0, 2).owns(target_key("https", "same.example.test", "same.example.test", a))
        and not Shard(0, 2).owns(target_key("https", "same.example.test", "same.example.test", b))
    )
    entries = [f"{{address: same.example.test, server_name: {name}}}" for name in names]
    path = _write(tmp_path / "config.yml", entries)
    for index in range(2):
        (target,) = load_config(path, shard=Shard(index, 2)).targets
        assert target.server_name == names[index] and target.label_server_name


def _other_shards_entry(shard: Shard, make: str) -> str:
    """An entry ``make.format(i)`` that ``shard`` does not own (its key decides)."""
    for i in range(100):
        entry = make.format(i)
        if not shard.owns(
            target_key("tls", f"bad-{i}.example.test:443", f"bad-{i}.example.test", f"bad-{i}.example.test")
        ):
            return entry
    raise AssertionError("no entry outside the shard")


@pytest.mark.parametrize(
    "make",
    [
        "{{address: 'bad-{0}.example.test:443', protocol: tls, labels: {{job: x}}}}",  # a reserved label
        "{{address: 'bad-{0}.example.test:443', protocol: tls, timeout: 10m}}",  # longer than the interval
        "{{address: 'bad-{0}.example.test:443', protocol: tls, profile: missing}}",
        "{{address: 'bad-{0}.example.test:443', protocol: tls, colour: red}}",
    ],
)
def test_a_bad_target_of_another_shard_fails_every_shard_with_the_same_errors(tmp_path: Path, make: str) -> None:
    entries = _entries()
    entries.insert(7, _other_shards_entry(Shard(0, SHARDS), make))
    path = _write(tmp_path / "config.yml", entries)
    expected = _errors(path, None)
    assert len(expected) == 1 and "targets[7]" in expected[0] and expected[0].startswith(f"{path}:10:")
    for index in range(SHARDS):
        assert _errors(path, Shard(index, SHARDS)) == expected


def test_an_entry_without_a_key_fails_every_shard_the_same_way(tmp_path: Path) -> None:
    entries = [
        *_entries(),
        "{address: 'https://nope.example.test'}",
        "{protocol: tls}",
        "{address: 'x:1', protocol: smpt}",
    ]
    path = _write(tmp_path / "config.yml", entries)
    expected = _errors(path, None)
    assert len(expected) == 3
    for index in range(SHARDS):
        assert _errors(path, Shard(index, SHARDS)) == expected


def test_duplicates_split_over_shards_fail_every_shard(tmp_path: Path) -> None:
    # The same endpoint spelt two ways: two keys (the key is the address as written), one target.
    shard = Shard(0, 2)
    spellings = next(
        (a, b)
        for a in (f"dup-{i}.example.test" for i in range(100))
        for b in (a.upper() + ":443", a + ".:443")
        if shard.owns(target_key("https", a, a, a)) != shard.owns(target_key("https", b, a, a))
    )
    entries = [*_entries()[:5], f"{{address: '{spellings[0]}'}}", f"{{address: '{spellings[1]}'}}"]
    path = _write(tmp_path / "config.yml", entries)
    expected = _errors(path, None)
    assert expected == [f"{path}:9:5: targets[6]: duplicate of targets[5] (same protocol, address and server name)"]
    for index in range(2):
        assert _errors(path, Shard(index, 2)) == expected


def test_a_config_with_anchors_is_split_the_same_way(tmp_path: Path) -> None:
    # Anchors and aliases take the composer's path, where a node may be shared: the parser then
    # leaves the document as it is, and the split is the same.
    entries = [
        *_entries(),
        "{address: anchored.example.test, labels: &team {team: a}}",
        "{address: aliased.example.test, labels: *team}",
    ]
    path = _write(tmp_path / "config.yml", entries)
    everything = load_config(path)
    assert [t.labels for t in everything.targets[-2:]] == [(("team", "a"),)] * 2
    for index in range(SHARDS):
        shard = Shard(index, SHARDS)
        assert load_config(path, shard=shard).targets == tuple(t for t in everything.targets if shard.owns(t.key))


def test_the_document_is_left_as_it_was_unless_handed_over(tmp_path: Path) -> None:
    doc: dict[str, object] = {"targets": [{"address": "a.example.test"}, {"address": "b.example.test"}]}
    kept = parse_config(doc, base_dir=tmp_path)
    assert doc == {"targets": [{"address": "a.example.test"}, {"address": "b.example.test"}]}
    # load_config hands over a document without anchors: each entry goes once checked.
    assert parse_config(doc, base_dir=tmp_path, release=True) == kept
    assert doc == {"targets": [None, None]}


def test_defaults_and_profiles_after_the_targets_still_apply(tmp_path: Path) -> None:
    # The entries are checked while they are read, against what came before them: when defaults or
    # profiles come after, the file is read again the usual way, and the result is the same.
    path = tmp_path / "config.yml"
    path.write_text(
        "targets:\n"
        + "".join(f"  - {{address: 'late-{i}.example.test', profile: strict}}\n" for i in range(40))
        + "defaults: {interval: 1h, owner: ops}\n"
        "profiles:\n  strict: {min_key_bits: {rsa: 3072}}\n"
    )
    everything = parse_config(yaml.safe_load(path.read_text()), base_dir=tmp_path)
    assert {(t.interval, t.owner, t.profile) for t in everything.targets} == {(3600.0, "ops", "strict")}
    for index in range(2):
        shard = Shard(index, 2)
        assert load_config(path, shard=shard).targets == tuple(t for t in everything.targets if shard.owns(t.key))


def test_errors_of_targets_read_as_a_stream_keep_their_place_among_the_others(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "defaults: {interval: soon}\n"
        "profiles:\n  strict: {colour: red}\n"
        "targets:\n"
        "  - {address: 'a.example.test', timeout: 1h}\n"
        "  - {address: 'b.example.test', protocol: smpt}\n"
        "  - {address: 'A.example.test.:443'}\n"
        "files:\n  - {name: no-path}\n"
    )
    plain = _errors_of_document(path)
    assert [e.split(":")[0] for e in plain] == [
        "defaults.interval", "profiles.strict", "targets[0]", "targets[1].protocol", "targets[2]", "files[0]",
    ]  # fmt: skip
    for shard in (None, Shard(0, 2), Shard(1, 2)):
        assert [re.sub(r"^.*?:\d+:\d+: ", "", e) for e in _errors(path, shard)] == plain


def _errors_of_document(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_load(path.read_text()), base_dir=path.parent)
    return caught.value.errors


def test_a_replica_of_several_needs_less_memory_left_to_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yml"
    path.write_text("targets: [{address: a.example.test}]\n" + "#" * (6 << 20) + "\n")
    monkeypatch.setattr(headroom, "available_bytes", lambda: 100 << 20)
    size = path.stat().st_size
    assert (
        _errors(path, None)
        == _errors(path, Shard(0, 1))
        == [
            f"{path}: cannot read: loading this {size} byte configuration takes about {size * 24 >> 20} MB of memory, "
            "and 100 MB are left"
        ]
    )
    # 10 for what every replica reads and checks, 14/N for its share of the targets.
    assert len(load_config(path, shard=Shard(0, 10)).targets) + len(load_config(path, shard=Shard(1, 10)).targets) <= 1
    assert _errors(path, Shard(0, 2)) == [
        f"{path}: cannot read: loading this {size} byte configuration takes about {size * 17 >> 20} MB of memory, "
        "and 100 MB are left"
    ]


LAB = "{address: 'lab.example.test:8443', profile: strict, labels: %s}"
LAB_GROUP = {
    "targets": ["lab.example.test:8443"],
    "labels": {
        "__param_target": "lab.example.test:8443",
        "__param_protocol": "https",
        "__param_server_name": "lab.example.test",
        "owner": "",
        "name": "lab.example.test:8443",
        "env": "lab",
        "__param_profile": "strict",
    },
}


@pytest.mark.parametrize("layout", ["streamed", "defaults after the list", "anchors"])
def test_every_replica_lists_every_target_in_sd(tmp_path: Path, layout: str) -> None:
    """`/sd` is the file's, not the replica's share: Prometheus may ask any replica (a Service)."""
    from exporter.web.sd import sd_groups

    defaults, profiles = "defaults: {interval: 5m, timeout: 10s}\n", "profiles:\n  strict: {revocation: none}\n"
    entries = [*_entries(), LAB % "{env: lab}"]
    if layout == "anchors":  # not a plain document: built whole, then checked as a list
        entries[-1] = LAB % "&lab {env: lab}"
        entries.append("{address: 'lab2.example.test:8443', labels: *lab}")
    listed = "targets:\n" + "".join(f"  - {e}\n" for e in entries)
    path = tmp_path / "config.yml"
    # streamed: the entries are checked as they are read; defaults after the list: read again whole
    path.write_text(
        listed + profiles + defaults if layout == "defaults after the list" else defaults + profiles + listed
    )
    whole = sd_groups(load_config(path))
    assert len(whole) == len(entries)
    assert LAB_GROUP in whole
    for index in range(SHARDS):
        config = load_config(path, shard=Shard(index, SHARDS))
        assert len(config.targets) < len(entries)  # its share only ...
        assert sd_groups(config) == whole  # ... and every target in /sd, in file order
