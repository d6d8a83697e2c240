from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pki import PKI, make_pki
from servers import LoopbackServers


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """A test that runs the CLI in-process (``exporter.cli.main``) points the root logger at the
    stderr pytest captured for that test; once that stream is closed, a later log record from a
    thread of another test printed "--- Logging error --- I/O operation on closed file". Each
    test leaves the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def servers() -> Iterator[LoopbackServers]:
    s = LoopbackServers()
    try:
        yield s
    finally:
        s.stop()
