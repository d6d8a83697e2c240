"""The default table of sources is made at its first look-up (so that `check TARGET` imports the
TLS source alone), and is then what ``make_probers()`` makes: the same names in the same order,
the same kinds of source, the discovery source probing through the table's TLS source."""

from __future__ import annotations

from exporter.sources import NAMES, PROBERS, _Table, make_probers
from exporter.sources.discovery import DiscoverySource


def test_the_table_is_make_probers() -> None:
    made = make_probers()
    assert list(PROBERS) == list(NAMES) == list(made)
    assert len(PROBERS) == len(made)
    assert [type(s) for s in PROBERS.values()] == [type(s) for s in made.values()]
    assert dict(PROBERS) == {name: PROBERS[name] for name in NAMES}  # each made once, then kept
    discovery = PROBERS["discovery"]
    assert isinstance(discovery, DiscoverySource) and discovery.tls is PROBERS["tls"]


def test_an_unknown_source_is_a_key_error() -> None:
    table = _Table()
    assert "tls" in table and "nope" not in table
    assert table.get("nope") is None
