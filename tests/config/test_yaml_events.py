"""The event builder of exporter.config.load: the same values as composing the document, or it
steps aside (``_NotPlain``) for what only the composer handles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.config import load as loader_module
from exporter.config.load import _FastLoader, _NotPlain, _plain, parse_yaml

REPO = Path(__file__).resolve().parents[2]

PLAIN = [
    "",
    "targets: []\n",
    "a: 1\nb: 1.5\nc: true\nd: no\ne: ~\nf: null\ng: '007'\nh: 0x1F\ni: 0o17\nj: 1_000\nk: .inf\nl: -.NaN\n",
    'when: 2026-12-01\nat: 2026-12-01T10:00:00Z\nname: "quoted \\u00e9"\n',
    "lit: |\n  two\n  lines\nfold: >\n  one\n  line\n",
    "list: [1, two, {three: 3}, [4, [5]]]\nempty_map: {}\nempty_list: []\nblank:\n",
    "- just\n- a\n- list\n",
    "plain scalar\n",
    "1: one\n2.5: two and a half\nx: yes\n",
    "targets:\n  - {address: 'example.com:443', labels: {env: prod, tier: '1'}}\n  - address: '[2001:db8::1]:443'\n",
    "s: 'it''s'\nt: \"tab\\tnew\\nline\"\nglob: '/etc/ssl/*.pem'\n",
]

NOT_PLAIN = [
    "base: &b {interval: 1m}\nother: *b\n",
    "base: &b {interval: 1m}\nmerged:\n  <<: *b\n  timeout: 5s\n",
    "value: !!str 5\n",
    "value: !custom x\n",
    "a: 1\na: 2\n",
    "1: one\ntrue: also one\n",  # equal keys: the strict loader names the duplicate
    "? [1, 2]\n: complex key\n",
    "--- 1\n--- 2\n",
]


def _events(text: str) -> object:
    loader = _FastLoader(text)
    try:
        return _plain(loader)
    finally:
        loader.dispose()


@pytest.mark.parametrize("text", PLAIN)
def test_plain_documents_build_what_composing_builds(text: str) -> None:
    composed = yaml.load(text, Loader=yaml.CSafeLoader)
    built = _events(text)
    assert built == composed or (built != built and composed != composed)  # NaN is not equal to itself
    assert repr(built) == repr(composed)  # same types too (1 and 1.0 and True compare equal)


def test_the_example_configuration_builds_the_same() -> None:
    text = (REPO / "config.example.yml").read_text()
    assert _events(text) == yaml.load(text, Loader=yaml.CSafeLoader)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_what_the_composer_handles_is_left_to_it(text: str) -> None:
    with pytest.raises(_NotPlain):
        _events(text)


def test_parse_yaml_still_expands_anchors_and_refuses_duplicates() -> None:
    assert parse_yaml("base: &b {interval: 1m}\nother: *b\n") == {
        "base": {"interval": "1m"},
        "other": {"interval": "1m"},
    }
    with pytest.raises(yaml.YAMLError, match="duplicate key 'a'"):
        parse_yaml("a: 1\na: 2\n")


def test_a_broken_document_gets_the_composers_message() -> None:
    with pytest.raises(yaml.MarkedYAMLError) as err:
        parse_yaml("targets: [1, 2\n")
    assert err.value.problem_mark is not None


def test_events_are_used_for_a_plain_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # The node-graph loaders are not reached for a plain document (so its 20 MB of nodes are not made).
    def refuse(*args: object) -> object:
        raise AssertionError("composed")

    monkeypatch.setattr(loader_module, "_alias_bomb", refuse)
    assert parse_yaml("targets:\n  - {address: 'example.com:443'}\n") == {"targets": [{"address": "example.com:443"}]}


@pytest.mark.parametrize(
    "text",
    [
        "\ufefftargets:\n  - {address: 'bücher.example:443', name: \"caf\\u00e9 \\U0001F512\", owner: équipe}\n",
        "a: &x [1, 2]\nb: *x\n",  # the composer's path
        "targets: [1, 2\n",  # refused: the same error either way
    ],
)
def test_the_utf8_bytes_give_what_the_text_gives(text: str) -> None:
    # libyaml reads the file's bytes as they are (from a text it first makes a UTF-8 copy).
    def outcome(data: bytes | None) -> object:
        try:
            return parse_yaml(text, data)
        except yaml.YAMLError as exc:
            return str(exc)

    assert outcome(text.encode()) == outcome(None)
