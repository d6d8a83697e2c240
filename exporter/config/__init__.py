"""Configuration: the frozen model, its strict parser and the file loader."""

from exporter.config.durations import parse_duration
from exporter.config.load import load_config
from exporter.config.parse import parse_config

__all__ = ["load_config", "parse_config", "parse_duration"]
