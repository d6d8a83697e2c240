"""HTTP handlers: /metrics, /probe, /, health, readiness and reload."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from exporter.adhoc import adhoc_target
from exporter.metrics.collectors import probe_text
from exporter.metrics.text import CONTENT_TYPE
from exporter.notify.lookup import days_left_from_store
from exporter.notify.webhook import SnmpWebhook
from exporter.web.allow import probe_allowed
from exporter.web.status import render_status

if TYPE_CHECKING:
    from exporter.app import Exporter

log = logging.getLogger("exporter.web")
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
SCRAPE_TIMEOUT_OFFSET = 0.5


class Handlers:
    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        # Rendering is CPU work: off the loop, so probes keep running while a big scrape renders.
        targets, own = await asyncio.to_thread(self.exporter.render_metrics)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        response.content_length = len(targets) + len(own)
        await response.prepare(request)
        await response.write(targets)
        await response.write(own)
        await response.write_eof()
        return response

    async def probe(self, request: web.Request) -> web.Response:
        q = request.query
        config = self.exporter.config
        try:
            target = adhoc_target(
                q.get("target", ""),
                protocol=q.get("protocol"),
                server_name=q.get("server_name"),
                profile=q.get("profile"),
                config=config,
            )
            timeout = _timeout(request.headers.get(SCRAPE_TIMEOUT_HEADER), target.timeout)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        if not probe_allowed(target.host, config.probe.allow):
            return web.Response(status=403, text=f"target host '{target.host}' is not allowed by probe.allow\n")
        results = await self.exporter.prober.probe_target(target, config, timeout=timeout)
        for r in results:
            self.exporter.metrics.observe(r.outcome.value, r.duration)
        # Rendered fresh from this request's results: nothing goes stale.
        text = probe_text(results, target, config)
        if q.get("debug", "").lower() in ("1", "true", "yes"):
            steps = "\n".join(line for r in results for line in r.log)
            head = (
                f"Probe of {target.target} ({target.protocol}, server name {target.server_name}, "
                f"timeout {timeout:g}s)\n\nLogs for the probe:\n{steps}\n\nMetrics that would have been returned:\n"
            )
            return web.Response(text=head + text, content_type="text/plain")
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(text=render_status(self.exporter.store, self.exporter.config), content_type="text/html")

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(self, request: web.Request) -> web.Response:
        if not self.exporter.ready:
            return web.Response(status=503, text="not ready\n")
        return web.Response(text="OK\n")

    async def reload(self, request: web.Request) -> web.Response:
        ok, message = await self.exporter.reload()
        return web.Response(status=200 if ok else 500, text=message + "\n")


def _timeout(header: str | None, configured: float) -> float:
    """The smaller of the configured timeout and Prometheus' scrape timeout minus an offset."""
    if header is None:
        return configured
    try:
        scrape = float(header)
    except ValueError:
        raise ValueError(f"{SCRAPE_TIMEOUT_HEADER}: not a number: {header!r}") from None
    return max(0.1, min(configured, scrape - SCRAPE_TIMEOUT_OFFSET))


def make_app(exporter: Exporter) -> web.Application:
    h = Handlers(exporter)
    app = web.Application()
    app.router.add_get("/metrics", h.metrics)
    app.router.add_get("/probe", h.probe)
    app.router.add_get("/", h.status)
    app.router.add_get("/-/healthy", h.healthy)
    app.router.add_get("/-/ready", h.ready)
    app.router.add_post("/-/reload", h.reload)
    snmp = SnmpWebhook(
        lambda: exporter.config.notifications.snmp,
        exporter.metrics.count_notification,
        days_left=days_left_from_store(exporter.store),
    )
    app.router.add_post("/alertmanager/snmp", snmp.handle)
    return app
