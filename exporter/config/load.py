"""Read a configuration file: YAML (safe subset) in, validated ``Config`` out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from exporter.config.model import Config
from exporter.config.parse import parse_config
from exporter.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping instead of keeping the last."""


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

# libyaml's parser when PyYAML has it (Debian's and the wheels do): a 10,000-target file loads in
# a fraction of the pure-Python parser's time. The constructors are the same safe ones; a file
# that does not parse is read again by the pure-Python loader, whose messages the docs show.
_CLoader: type | None = getattr(yaml, "CSafeLoader", None)
_FastStrictLoader: type | None = None
if _CLoader is not None:
    _FastStrictLoader = type("_FastStrictLoader", (_CLoader,), {})
    _FastStrictLoader.add_constructor(  # type: ignore[attr-defined]
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
    )


def _load_yaml(text: str) -> object:
    if _FastStrictLoader is not None:
        try:
            return yaml.load(text, Loader=_FastStrictLoader)
        except yaml.YAMLError:
            pass  # the pure-Python loader says what is wrong, in its words
    return yaml.load(text, Loader=_StrictLoader)


def load_config(path: str | Path) -> Config:
    """Read, parse and validate ``path``; relative paths inside it are taken from its directory."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read: not UTF-8 text"]) from exc
    try:
        data = _load_yaml(text)  # SafeLoader subclasses: safe_load plus duplicate keys
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([f"{path}: {_describe(exc)}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from exc
    config = parse_config(data, base_dir=source.parent.absolute())
    return replace(config, source=str(path))


def _describe(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}invalid YAML: {exc.problem or exc.context}"
