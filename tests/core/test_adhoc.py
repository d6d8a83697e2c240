"""/probe targets: a new server name for known parameters is the parsed target under that name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import exporter.sources.adhoc as adhoc
from exporter.config import parse_config
from exporter.config.parse_target import parse_target
from exporter.support.errors import ConfigError

CONFIG = parse_config({"profiles": {"lean": {"revocation": "none"}}}, base_dir=Path.cwd())
# An underscore is judged, not refused: a certificate for foo_bar.example.com gets its verdict.
NAMES = ["a.example.test", "B.Example.Test.", "192.0.2.7", "2001:db8::1", "localhost", "a_b.example.test"]
BAD = ["2001:db8::1%eth0", "a..b", "é.test", "-a.test"]


def _target(server_name: str | None, address: str = "198.51.100.1:8443") -> object:
    return adhoc.adhoc_target(
        address, protocol="tls", server_name=server_name, profile="lean", config=CONFIG, owner=None, name=None
    )


def _parsed(server_name: str | None, address: str = "198.51.100.1:8443") -> object:
    return adhoc._adhoc_target(
        address, protocol="tls", server_name=server_name, profile="lean", config=CONFIG, owner=None, name=None
    )


def _error(make: Callable[[str], object], server_name: str) -> str:
    with pytest.raises(ValueError) as e:
        make(server_name)
    return str(e.value)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per parse of a target by the parser; the caches start empty."""
    for cache in (adhoc._cache, adhoc._bases, adhoc._shapes):
        cache.clear()
    counted: list[int] = []

    def parse(*args: Any, **kwargs: Any) -> Any:
        counted.append(1)
        return parse_target(*args, **kwargs)

    monkeypatch.setattr(adhoc, "parse_target", parse)
    return counted


def test_new_names_are_not_parsed_again_and_give_the_parsers_target(parses: list[int]) -> None:
    first = _target("first.example.test")
    assert len(parses) == 1
    for name in NAMES:
        assert _target(name) == _parsed(name)
    assert len(parses) == 1 + len(NAMES)  # the _parsed calls only
    assert _target(None) == _parsed(None)  # no name: the host is the name, the parser says so
    assert _target(" spaced.example.test ") == _parsed(" spaced.example.test ")  # the parser strips it
    assert len(parses) == 5 + len(NAMES)
    assert _target("first.example.test") is first


def test_a_name_the_parser_refuses_gets_the_parsers_message() -> None:
    adhoc._cache.clear()
    adhoc._bases.clear()
    _target("known.example.test")
    for name in BAD:
        assert _error(_target, name) == _error(_parsed, name)
        assert _error(_target, name).startswith("server_name: ")


ADDRESSES = ["198.51.100.2:8443", "198.51.100.3", "203.0.113.9:443", "198.51.100.9:1", "192.0.2.1:65535"]
NOT_FAST = ["host.example.test:8443", "[2001:db8::2]:8443", "2001:db8::3", "198.51.100.4:", "198.51.100.5:99999"]


@pytest.mark.parametrize("server_name", [None, "named.example.test"])
@pytest.mark.parametrize("name", [None, "a name"])
def test_new_ipv4_addresses_are_not_parsed_again_and_give_the_parsers_target(
    parses: list[int], server_name: str | None, name: str | None
) -> None:
    def probe(address: str, protocol: str = "https") -> object:
        return adhoc.adhoc_target(
            address, protocol=protocol, server_name=server_name, profile="lean", config=CONFIG, owner="o", name=name
        )

    def parsed(address: str, protocol: str = "https") -> object:
        return adhoc._adhoc_target(
            address, protocol=protocol, server_name=server_name, profile="lean", config=CONFIG, owner="o", name=name
        )

    probe("198.51.100.1:8443")
    assert len(parses) == 1
    for address in ADDRESSES:
        assert probe(address) == parsed(address)
    assert len(parses) == 1 + len(ADDRESSES)  # the parsed() calls only
    for address in NOT_FAST:  # the parser has its say: the same target, or the same message
        try:
            expected: object = parsed(address)
        except ValueError as exc:
            expected = str(exc)
        try:
            got: object = probe(address)
        except ValueError as exc:
            got = str(exc)
        assert got == expected
    assert len(parses) == 1 + len(ADDRESSES) + 2 * len(NOT_FAST)
    probe("198.51.100.1:8443", "tls")
    message = "target: protocol 'tls' has no default port: write host:port"
    for make in (probe, parsed):  # no port, and none by default: the parser's message
        with pytest.raises(ValueError, match=message):
            make("198.51.100.6", "tls")


ENTRIES: list[dict[str, object]] = [
    {"address": "198.51.100.1:8443", "protocol": "tls", "server_name": "a.example.test"},
    {"address": "Example.TEST."},
    {"address": "[2001:db8::1]:993", "protocol": "IMAPS"},
    {"address": "a..b:443"},
    {"address": "198.51.100.1", "protocol": "smpt"},
    {"address": "198.51.100.1", "protocol": "tls"},
    {"address": "https://example.test/"},
    {"address": "example.test:99999", "server_name": "é.test"},
]


@pytest.mark.parametrize("entry", ENTRIES)
def test_one_target_is_parsed_as_the_configuration_parser_does(entry: dict[str, object]) -> None:
    """`check` and /probe parse one entry alone (without the whole parser): the same target, the same errors."""
    try:
        whole: object = parse_config({"targets": [entry]}, base_dir=Path.cwd()).targets[0]
    except ConfigError as exc:
        whole = exc.errors
    try:
        alone: object = parse_target(entry, "targets[0]", base_dir=Path.cwd())
    except ConfigError as exc:
        alone = exc.errors
    assert alone == whole
