"""The narrow interface the web layer sees: what the exporter can do for an HTTP request.

``exporter.app.Exporter`` provides it; ``exporter.web`` depends on this protocol only, so the
web handlers and the application never import each other.
"""

from __future__ import annotations

from typing import Protocol

from exporter.config.model import Config, Target
from exporter.results import Result
from exporter.web.webconfig import WebConfig


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

    def render_metrics(self, *, openmetrics: bool = False, gzip: bool = False) -> list[bytes]:
        """The /metrics body as chunks to write in order (CPU work: callers run it in a worker thread)."""
        ...

    async def probe(self, target: Target, *, timeout: float) -> list[Result]:
        """One on-demand probe (counted in the exporter's own metrics)."""
        ...

    def probe_text(self, results: list[Result], target: Target) -> str: ...

    def status_page(self) -> str:
        """The `/` page (CPU work: callers run it in a worker thread)."""
        ...

    async def reload(self) -> tuple[bool, str]: ...
