"""The configuration sections of plug-in sources: top-level key -> the parser of its jobs.

A source beyond `targets:` and `files:` brings its section here (one line) and its job class and
parser in a module of its own beside it; ``Config.sections`` holds the jobs it parsed, and the
source's ``jobs()`` reads them back. See docs/extending.md.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.config.bundles import parse_bundles
from exporter.config.model import Defaults, Job
from exporter.config.reader import Reader

SectionParser = Callable[[Reader, object, Defaults], tuple[Job, ...]]

SECTIONS: dict[str, SectionParser] = {
    "bundles": parse_bundles,
}
