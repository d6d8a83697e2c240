"""Read a configuration file: YAML (safe subset) in, validated ``Config`` out.

The file is untrusted input as far as resources go: only a regular file is read, and only when
loading it fits in the memory left (``LOAD_COST`` times its size; no fixed byte limit: 100,000
targets are 8 MB of YAML); nesting deeper than ``MAX_DEPTH`` and documents whose aliases add more than
``MAX_NODES`` nodes when expanded (a "billion laughs" of a few hundred bytes) are refused before anything
is built from them. Every failure, RecursionError and MemoryError included, is a ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import yaml

from exporter.config.locate import locate
from exporter.config.model import Config
from exporter.config.parse import TargetStream, parse_config
from exporter.support import headroom
from exporter.support.errors import ConfigError
from exporter.support.fileio import FileTooLarge, read_regular

# Peak memory of a load per byte of YAML: 17 measured for 100,000 targets (7.5 MB of YAML: 127 MB,
# bench/startup.py --targets 100000), 11 since the load holds neither the text nor the whole
# document (85 MB), with room for longer lines per byte.
LOAD_COST = 24
# What of it a replica of N (--shard) pays whatever N: the bytes, the rest of the document, the
# duplicate check and the `/sd` groups of every shard's targets (4.6 measured in all for 1,000,000
# targets over 10 shards: 345 MB); the targets it keeps cost their share of the rest.
SHARED_LOAD_COST = 10
DEFAULT_LIMIT = 1 << 30  # where the system tells nothing of its memory (not Linux)
MB = 1 << 20
MAX_DEPTH = 64  # mappings and lists inside each other
MAX_NODES = 200_000  # nodes that aliases add when expanded


class Shard(Protocol):
    """The replica a configuration is loaded for: exporter.schedule.shard.Shard, which the config
    layer does not import (the scheduler imports the config)."""

    @property
    def count(self) -> int: ...

    def owns(self, key: str) -> bool: ...


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping instead of keeping the last,
    and bounds nesting depth while composing (PyYAML's composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes under ``node`` counting every alias as a copy (memoised: shared nodes cost once)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a node that refers to itself counts once, never loops
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size
    return size


def _alias_bomb(node: yaml.Node, anchored: bool) -> int | None:
    """The expanded size of a document whose aliases add more than MAX_NODES nodes, else None.
    The document's own nodes do not count: the file-size limit bounds them, and 100,000 targets
    are more than 300,000 nodes. A document without an anchor (no ``&``: not ``anchored``) has
    no alias (one without its anchor does not compose), so nothing to walk: the walk's memo cost
    5 MB and 0.1 s at 10,000 targets."""
    if not anchored:
        return None
    memo: dict[int, int] = {}
    size = _expanded_size(node, memo)
    return size if size - len(memo) > MAX_NODES else None


# libyaml's parser, where PyYAML has it, composes a 10,000-target file several times faster than the
# pure-Python one. It is used only for documents without deep nesting (a cheap pre-scan), and its
# node graph passes the same alias-expansion limit; anything it refuses is read again by the
# pure-Python loader, whose messages the docs show.
_CLoader: Any = getattr(yaml, "CSafeLoader", None)
_FastLoader: Any = None
if _CLoader is not None:
    _FastLoader = type("_FastLoader", (_CLoader,), {})
    _FastLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


_SHALLOW_CHUNK = 1 << 20  # characters split into lines at a time (all at once: 131 MB of lines for 75 MB)


def _shallow(text: str) -> bool:
    """No line opens more than MAX_DEPTH / 2 brackets and no line is indented past MAX_DEPTH / 2
    levels of two spaces: nothing the C composer could recurse deeply on. The text is cut after a
    newline, which always ends a line, so the lines are those of ``text.splitlines()``."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + _SHALLOW_CHUNK)
        end = len(text) if end < 0 else end + 1
        for line in text[start:end].splitlines():
            if line.count("[") + line.count("{") > MAX_DEPTH // 2:
                return False
            if len(line) - len(line.lstrip(" -")) > MAX_DEPTH:
                return False
        start = end
    return True


class _NotPlain(Exception):
    """The document uses what the event builder leaves to the composer: anchors, aliases, tags,
    merge keys, non-scalar or repeated keys, several documents."""


class _Misordered(Exception):
    """A top-level key the sink of `targets:` reads came after the list: read the file again without it."""


class TargetSink(Protocol):
    """Takes the entries of the top-level `targets:` list one at a time as they are read, so that
    the document never holds them all (exporter.config.parse.TargetStream)."""

    @property
    def needs(self) -> tuple[str, ...]: ...  # top-level keys it reads: they must come before the list

    def add(self, item: object) -> None: ...
    def done(self) -> object: ...  # what the document holds in place of the list


# A sink for the list, made from the top-level mapping as read when the list starts.
Sinks = Callable[[dict[object, object]], TargetSink]
_STR_TAG = "tag:yaml.org,2002:str"
_STREAM_STRINGS = 4096  # strings shared between streamed entries, at most (the window is then emptied)


def _plain(loader: Any, targets: Sinks | None = None) -> object:
    """The single document of ``loader`` (libyaml's parser and PyYAML's safe constructors) built
    straight from the parser's events: no node graph is kept, where composing a 10,000-target
    file first held 20 MB of nodes and marks. Plain documents only (``_NotPlain`` otherwise).
    With ``targets``, the entries of a top-level `targets:` list go to its sink as they are built."""
    loader.get_event()  # stream start
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # document start
    value = _plain_value(loader, {}, targets)
    loader.get_event()  # document end
    if not loader.check_event(yaml.StreamEndEvent):
        raise _NotPlain("several documents")
    return value


def _plain_value(loader: Any, strings: dict[str, str], targets: Sinks | None = None) -> object:
    """One value; ``strings`` keeps one copy of each string (keys and values such as a protocol
    repeat on every target: 100,000 targets held 500,000 copies of a few words). ``targets``: see
    ``_plain`` (the top-level mapping's only)."""
    event = loader.get_event()
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
        raise _NotPlain("anchor or alias")
    if isinstance(event, yaml.ScalarEvent):
        if event.tag is not None and event.tag != "!":
            raise _NotPlain("tag")
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR_TAG:  # what the str constructor returns, without a node (most scalars are strings)
            value: str = event.value
            return strings.setdefault(value, value)
        construct = loader.yaml_constructors.get(tag)
        if construct is None:  # `<<` resolves to the merge tag, which only the composer handles
            raise _NotPlain(f"tag {tag}")
        start: Any = event.start_mark  # libyaml's marks, which PyYAML's stubs do not name
        end: Any = event.end_mark
        return construct(loader, yaml.ScalarNode(tag, event.value, start, end, event.style))
    if event.tag is not None and event.tag != "!":
        raise _NotPlain("tag")
    if isinstance(event, yaml.SequenceStartEvent):
        items = []
        while not loader.check_event(yaml.SequenceEndEvent):
            items.append(_plain_value(loader, strings))
        loader.get_event()
        return items
    if isinstance(event, yaml.MappingStartEvent):
        mapping: dict[object, object] = {}
        sink, before = None, set[object]()
        while not loader.check_event(yaml.MappingEndEvent):
            if not loader.check_event(yaml.ScalarEvent):
                raise _NotPlain("a key that is not a scalar")
            key = _plain_value(loader, strings)
            if key in mapping:
                raise _NotPlain("a repeated key")
            if key == "targets" and targets is not None and loader.check_event(yaml.SequenceStartEvent):
                sink, before = targets(mapping), set(mapping)
                mapping[key] = _streamed(loader, sink)
            else:
                mapping[key] = _plain_value(loader, strings)
        loader.get_event()
        if sink is not None and any(k in mapping and k not in before for k in sink.needs):
            raise _Misordered
        return mapping
    raise _NotPlain(type(event).__name__)


def _streamed(loader: Any, sink: TargetSink) -> object:
    """The entries of a list handed to ``sink`` one at a time; what it makes of them."""
    event = loader.get_event()
    if event.anchor is not None or (event.tag is not None and event.tag != "!"):
        raise _NotPlain("anchor or tag")
    strings: dict[str, str] = {}
    while not loader.check_event(yaml.SequenceEndEvent):
        if len(strings) > _STREAM_STRINGS:
            strings.clear()  # each entry's own strings would otherwise all stay (an address each)
        sink.add(_plain_value(loader, strings))
    loader.get_event()
    return sink.done()


def _read_plain(source: str | bytes, targets: Sinks | None) -> object:
    loader = _FastLoader(source)
    try:
        return _plain(loader, targets)
    finally:
        loader.dispose()


def parse_yaml(text: str, data: bytes | None = None, targets: Sinks | None = None) -> object:
    """The document in ``text``, within the limits; yaml.YAMLError or ValueError otherwise.
    ``data``, the UTF-8 bytes ``text`` was decoded from, if the caller has them: libyaml reads
    bytes as they are, where from a text it first makes a UTF-8 copy, and the text is let go (a
    caller that passes it as a temporary then holds none of it) until a loader that reads text
    needs it again: 75 MB each for a million targets.
    ``targets`` takes a plain document's top-level `targets:` list entry by entry (``_plain``);
    any other document is built whole, and its list is the parser's to check."""
    anchored = "&" in text
    if _FastLoader is not None and _shallow(text):
        source: str | bytes = text
        if data is not None:
            source, text = data, ""  # decoded again below, for the pure-Python loader
        try:
            try:
                return _read_plain(source, targets)
            except _Misordered:
                return _read_plain(source, None)
        except (_NotPlain, yaml.YAMLError):
            pass  # composed below, with the limits and the messages of the node-graph loaders
        fast = _FastLoader(source)
        try:
            node = fast.get_single_node()
            if node is None:
                return None
            if _alias_bomb(node, anchored) is None:
                return fast.construct_document(node)
        except yaml.YAMLError:
            pass  # the pure-Python loader says what is wrong, in its words
        finally:
            fast.dispose()
        if data is not None:
            text = data.decode("utf-8")
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _alias_bomb(node, anchored)
        if size is not None:
            raise ValueError(f"the document expands to {size} nodes (aliases), over the limit of {MAX_NODES}")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _per_byte(shard: Shard | None) -> tuple[int, int]:
    """The memory a load may take per byte of YAML for the replica ``shard``, as a fraction."""
    count = 1 if shard is None else shard.count
    return SHARED_LOAD_COST * count + LOAD_COST - SHARED_LOAD_COST, count


def read_config_file(path: str | Path, shard: Shard | None = None) -> bytes:
    """The bytes of the configuration file; ConfigError when it cannot be read or when loading it
    (as the replica ``shard``) would not fit in the memory this process has left (its cgroup's
    limit included)."""
    available = headroom.available_bytes()
    cost, count = _per_byte(shard)
    limit = DEFAULT_LIMIT if available is None else available * count // cost
    try:
        return read_regular(path, limit, what="configuration file")
    except FileTooLarge as exc:
        if available is None:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
        try:
            size = max(limit + 1, Path(path).stat().st_size)
        except OSError:
            size = limit + 1
        raise ConfigError(
            [
                f"{path}: cannot read: loading this {size} byte configuration takes about "
                f"{size * cost // count // MB} MB of memory, and {available // MB} MB are left"
            ]
        ) from exc
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc


def load_config(path: str | Path, *, data: bytes | None = None, shard: Shard | None = None) -> Config:
    """Read, parse and validate ``path`` (or its ``data``, already read); relative paths inside it
    are taken from its directory. With a ``shard`` of several, its ``targets`` are that shard's
    share: every target is still validated, so every shard refuses the same file the same way."""
    source = Path(path)
    base_dir = source.parent.absolute()
    owns = None if shard is None or shard.count == 1 else shard.owns
    raw = read_config_file(source, shard) if data is None else data
    try:
        # A SafeLoader subclass: safe_load plus duplicate keys and limits; the entries of `targets:`
        # are checked as they are read, and only this shard's are kept. The text is a temporary:
        # libyaml reads the bytes, and no copy of the file's text stays while the targets are built.
        loaded = parse_yaml(_text(raw, path), raw, lambda top: TargetStream(top, base_dir=base_dir, owns=owns))
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_describe(str(path), exc)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from exc
    except ValueError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from exc
    except RecursionError:
        raise ConfigError([f"{path}: invalid YAML: nested too deeply"]) from None
    except MemoryError:
        raise ConfigError([f"{path}: invalid YAML: too large to load"]) from None
    try:
        # A document without an anchor has no alias: no list in it is shared, so the parser may
        # drop the targets' entries as it goes.
        config = parse_config(loaded, base_dir=base_dir, owns=owns, release=b"&" not in raw)
    except ConfigError as exc:
        raise ConfigError(locate(raw.decode("utf-8"), exc.errors, str(path))) from None
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply"]) from None
    except MemoryError:
        raise ConfigError([f"{path}: too large to load"]) from None
    return replace(config, source=str(path))


def _text(raw: bytes, path: str | Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read: not UTF-8 text"]) from exc


def _describe(path: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
    return f"{where}: invalid YAML: {exc.problem or exc.context}"
