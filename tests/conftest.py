from __future__ import annotations

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


@pytest.fixture
def servers() -> Iterator[LoopbackServers]:
    s = LoopbackServers()
    try:
        yield s
    finally:
        s.stop()
