"""Where in the file each configuration error is: ``file:line:column: path: message``, in file order.

The parser reports dotted paths (``targets[3].protocol: unknown protocol 'smpt' ...``), built from
the loaded data. Only when there are errors is the document composed again, with PyYAML's marks,
and each path walked down to its node: a key's own position for a key (``unknown key 'x'`` points
at ``x``), an item's for a list item. An error whose path cannot be followed (a file-level one)
points at the deepest node found, the start of the file at worst.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_UNKNOWN_KEY = re.compile(r"^unknown key '(.*?)'")
_PATH = re.compile(r"^((?:[A-Za-z_][\w-]*|\[\d+\])(?:\.[A-Za-z_][\w./-]*|\[\d+\])*|\(top level\)): (.*)$", re.S)


def _tokens(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _TOKEN.findall(path)]


def _child(node: Any, token: str | int) -> tuple[Any, Any] | None:
    """(key node or None, value node) of ``token`` under ``node``."""
    if isinstance(token, int) and isinstance(node, yaml.SequenceNode):
        return (None, node.value[token]) if token < len(node.value) else None
    if isinstance(token, str) and isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == token:
                return key, value
    return None


def _mark(root: Any, path: str, message: str) -> tuple[int, int]:
    node, at = root, root.start_mark
    tokens = [] if path == "(top level)" else _tokens(path)
    unknown = _UNKNOWN_KEY.match(message)
    if unknown:
        tokens.append(unknown.group(1))  # the offending key itself
    for token in tokens:
        found = _child(node, token)
        if found is None:
            break
        key, node = found
        at = (key or node).start_mark
    return at.line + 1, at.column + 1


def locate(text: str, errors: list[str], file: str) -> list[str]:
    """``errors`` as ``file:line:column: error`` lines, in the order of the file."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    placed = []
    for index, error in enumerate(errors):
        match = _PATH.match(error)
        line, column = (1, 1)
        if root is not None and match is not None:
            line, column = _mark(root, match.group(1), match.group(2))
        placed.append(((line, column, index), f"{file}:{line}:{column}: {error}"))
    return [text for _, text in sorted(placed)]
