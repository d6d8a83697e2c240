"""The narrow interface the web layer sees: what the exporter can do for an HTTP request.

``exporter.app.Exporter`` provides it; ``exporter.web`` depends on this protocol only, so the
web handlers and the application never import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from exporter.config.model import Config, Target
from exporter.metrics import gzipped
from exporter.outputs.inventory import InventoryEntry
from exporter.outputs.query import InventoryQuery
from exporter.results import Result
from exporter.web.webconfig import WebConfig


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """The last reload was refused: when, and why (the running configuration is older)."""

    at: float  # unix time
    errors: tuple[str, ...]
    loaded_at: float | None  # when the running configuration was loaded


class Service(Protocol):
    @property
    def config(self) -> Config: ...

    @property
    def ready(self) -> bool: ...

    @property
    def web_config(self) -> WebConfig | None:
        """`--web.config.file`: TLS, basic auth and headers for every endpoint."""
        ...

    @property
    def telemetry_path(self) -> str: ...

    @property
    def enable_lifecycle(self) -> bool:
        """`--web.enable-lifecycle`: POST /-/reload is served (SIGHUP always reloads)."""
        ...

    async def metrics_body(self, *, openmetrics: bool = False, gzip: bool = False) -> Sequence[gzipped.Chunk]:
        """The /metrics body as chunks to write in order (rendered in a worker thread; blocks are
        inflated as they are written)."""
        ...

    async def probe(self, target: Target, *, timeout: float) -> list[Result]:
        """One on-demand probe (counted in the exporter's own metrics)."""
        ...

    def probe_text(self, results: list[Result], target: Target, *, owner: bool = False, name: bool = False) -> str:
        """/probe's exposition; ``owner``/``name``: the request gave them, so the series carry them."""
        ...

    def verdict_text(self, results: list[Result], target: Target) -> str:
        """The verdict on each result of an on-demand probe, as `check` makes it (for ?debug=true)."""
        ...

    def inventory(self) -> list[InventoryEntry]:
        """Every address and file with `check`'s verdict and its facts (CPU work: run it in a worker thread)."""
        ...

    def discovery_json(self) -> dict[str, object]:
        """`GET /api/v1/discovery`: per scan, its last run and the endpoints it found (JSON-ready)."""
        ...

    def status_page(self, query: InventoryQuery) -> str:
        """The `/` page with the entries ``query`` selects (CPU work: callers run it in a worker thread)."""
        ...

    @property
    def reload_failure(self) -> ReloadFailure | None:
        """The last reload failed (None once one succeeds): the page shows it."""
        ...

    async def reload(self) -> tuple[bool, str]: ...

    async def alertmanager_snmp(self, request: web.Request) -> web.Response:
        """`POST /alertmanager/snmp`: an Alertmanager webhook payload in, one SNMP trap per alert out."""
        ...
