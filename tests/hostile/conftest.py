from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from exporter.app import Exporter
from exporter.web.handlers import make_app
from hostile.kit import HostileServers


@pytest.fixture
def hostile() -> Iterator[HostileServers]:
    s = HostileServers()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
async def make_client(tmp_path: Path, hostile: HostileServers) -> AsyncIterator[Callable[[str], object]]:
    """An in-process exporter with the given configuration text, behind aiohttp's test server
    (after `hostile`, so it stops before the servers it probes)."""
    made: list[tuple[Exporter, TestClient]] = []  # type: ignore[type-arg]

    async def _make(config_text: str) -> tuple[Exporter, TestClient]:  # type: ignore[type-arg]
        path = tmp_path / "config.yml"
        path.write_text(config_text)
        exporter = Exporter(str(path), listen="127.0.0.1:0", enable_lifecycle=True)
        await exporter.startup()
        client = TestClient(TestServer(make_app(exporter), host="127.0.0.1"))
        await client.start_server()
        made.append((exporter, client))
        return exporter, client

    yield _make  # type: ignore[misc]
    for exporter, client in made:
        await client.close()
        await exporter.shutdown()
