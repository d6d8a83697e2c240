"""HTTP handlers: /metrics, /probe, /, health, readiness and reload."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from aiohttp import web

from exporter.adhoc import adhoc_target
from exporter.metrics.text import CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, accepts_gzip, wants_openmetrics
from exporter.service import Service
from exporter.web.allow import probe_allowed
from exporter.web.guard import install
from exporter.web.sd import sd_handler

log = logging.getLogger("exporter.web")
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
SCRAPE_TIMEOUT_OFFSET = 0.5
MAX_CONCURRENT_PROBES = 64  # /probe requests in flight; more get 503 at once, never an unbounded queue


class Handlers:
    def __init__(self, service: Service, *, max_probes: int = MAX_CONCURRENT_PROBES) -> None:
        self.service = service
        self.max_probes = max_probes
        self.probes_in_flight = 0

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
        gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
        # Rendering is CPU work: off the loop, so probes keep running while a big scrape renders.
        chunks = await asyncio.to_thread(partial(self.service.render_metrics, openmetrics=openmetrics, gzip=gzip))
        headers = {
            "Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE,
            "Vary": "Accept, Accept-Encoding",
        }
        if gzip:
            headers["Content-Encoding"] = "gzip"
        response = web.StreamResponse(headers=headers)
        response.content_length = sum(len(c) for c in chunks)
        await response.prepare(request)
        for chunk in chunks:  # written as they are: the body is never joined into one copy
            await response.write(chunk)
        await response.write_eof()
        return response

    async def probe(self, request: web.Request) -> web.Response:
        q = request.query
        config = self.service.config
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
        if self.probes_in_flight >= self.max_probes:
            return web.Response(
                status=503, text=f"too many /probe requests in flight (limit {self.max_probes}); retry later\n"
            )
        self.probes_in_flight += 1
        try:
            results = await self.service.probe(target, timeout=timeout)
        finally:
            self.probes_in_flight -= 1
        # Rendered fresh from this request's results: nothing goes stale.
        text = self.service.probe_text(results, target)
        if q.get("debug", "").lower() in ("1", "true", "yes"):
            steps = "\n".join(line for r in results for line in r.log)
            head = (
                f"Probe of {target.target} ({target.protocol}, server name {target.server_name}, "
                f"timeout {timeout:g}s)\n\nLogs for the probe:\n{steps}\n\nMetrics that would have been returned:\n"
            )
            return web.Response(text=head + text, content_type="text/plain")
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def status(self, request: web.Request) -> web.Response:
        page = await asyncio.to_thread(self.service.status_page)
        return web.Response(text=page, content_type="text/html")

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(self, request: web.Request) -> web.Response:
        if not self.service.ready:
            return web.Response(status=503, text="not ready\n")
        return web.Response(text="OK\n")

    async def reload(self, request: web.Request) -> web.Response:
        ok, message = await self.service.reload()
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


def make_app(service: Service, *, max_probes: int = MAX_CONCURRENT_PROBES) -> web.Application:
    h = Handlers(service, max_probes=max_probes)
    app = web.Application()
    if service.web_config is not None:
        install(app, service.web_config)  # basic auth and headers on every route
    app.router.add_get(service.telemetry_path, h.metrics)
    app.router.add_get("/sd", sd_handler(lambda: service.config))
    app.router.add_get("/probe", h.probe)
    app.router.add_get("/", h.status)
    app.router.add_get("/-/healthy", h.healthy)
    app.router.add_get("/-/ready", h.ready)
    app.router.add_post("/-/reload", h.reload)
    return app
