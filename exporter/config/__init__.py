"""Configuration: the frozen model, its strict parser and the file loader.

The loader and the parser (YAML, every section's parser) are imported on first use of their
names: `check TARGET` imports ``exporter.config.model`` and this package with it, and starts
faster without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.config.durations import parse_duration
    from exporter.config.load import load_config
    from exporter.config.parse import parse_config

_HOMES = {
    "load_config": "exporter.config.load",
    "parse_config": "exporter.config.parse",
    "parse_duration": "exporter.config.durations",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = ["load_config", "parse_config", "parse_duration"]
