"""HTTP handlers: /metrics, /probe, /, /api/v1/inventory, /api/v1/discovery, health, readiness and reload."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from exporter.metrics import gzipped
from exporter.metrics.text import CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, accepts_gzip, wants_openmetrics
from exporter.outputs.query import InventoryQuery
from exporter.outputs.rules import runbook_html
from exporter.sources.adhoc import adhoc_target
from exporter.support.deadline import Deadline
from exporter.support.netpolicy import NOT_ALLOWED, PROBE_SCOPE, Patterns
from exporter.support.textsafe import utf8_safe
from exporter.web.guard import install
from exporter.web.sd import sd_handler
from exporter.web.service import Service

log = logging.getLogger("exporter.web")
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
SCRAPE_TIMEOUT_OFFSET = 0.5
MAX_CONCURRENT_PROBES = 64  # /probe requests in flight; more get 503 at once, never an unbounded queue
PROBE_PARAMETERS = ("target", "protocol", "server_name", "profile", "owner", "name", "debug")
# What people coming from blackbox_exporter or ssl_exporter type, and what to type instead.
PARAMETER_HINTS = {"module": "use protocol= (e.g. protocol=smtp; see the protocol table)"}


def unknown_parameters(names: list[str]) -> str | None:
    """A 400 message naming every unknown /probe parameter, with a hint where one helps."""
    unknown = sorted({n for n in names if n not in PROBE_PARAMETERS})
    if not unknown:
        return None
    parts = [f"{n} ({PARAMETER_HINTS[n]})" if n in PARAMETER_HINTS else n for n in unknown]
    return f"unknown parameter(s): {', '.join(parts)}; /probe takes {', '.join(PROBE_PARAMETERS)}"


class Handlers:
    def __init__(self, service: Service, *, max_probes: int = MAX_CONCURRENT_PROBES) -> None:
        self.service = service
        self.max_probes = max_probes
        self.probes_in_flight = 0

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
        gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
        chunks = await self.service.metrics_body(openmetrics=openmetrics, gzip=gzip)
        headers = {
            "Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE,
            "Vary": "Accept, Accept-Encoding",
        }
        if gzip:
            headers["Content-Encoding"] = "gzip"
        response = web.StreamResponse(headers=headers)
        response.content_length = sum(map(gzipped.chunk_size, chunks))
        await response.prepare(request)
        for chunk in chunks:  # written one by one: the body is never joined into one copy
            await response.write(gzipped.chunk_data(chunk))
        await response.write_eof()
        return response

    async def probe(self, request: web.Request) -> web.Response:
        q = request.query
        config = self.service.config
        unknown = unknown_parameters(list(q.keys()))
        if unknown is not None:
            return web.Response(status=400, text=f"{unknown}\n")
        try:
            target = adhoc_target(
                q.get("target", ""),
                protocol=q.get("protocol"),
                server_name=q.get("server_name"),
                profile=q.get("profile"),
                owner=q.get("owner"),
                name=q.get("name"),
                config=config,
            )
            timeout = _timeout(request.headers.get(SCRAPE_TIMEOUT_HEADER), target.timeout)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        deadline = Deadline(timeout)
        allowed = Patterns.of(config.probe.allow)
        # The name (or IP literal) here, before any lookup; the addresses a name resolves to are
        # checked once, by the source, on the very addresses it would connect to.
        refusal = allowed.allows(target.host, ())
        if refusal is not None:
            return web.Response(status=403, text=f"target {NOT_ALLOWED}: {refusal}\n")
        if self.probes_in_flight >= self.max_probes:
            return web.Response(
                status=503, text=f"too many /probe requests in flight (limit {self.max_probes}); retry later\n"
            )
        self.probes_in_flight += 1
        # Its connections, and the fetches its certificates name, stay within probe.allow.
        scope = PROBE_SCOPE.set(allowed)
        try:
            results = await self.service.probe(target, timeout=timeout)
        finally:
            PROBE_SCOPE.reset(scope)
            self.probes_in_flight -= 1
        refused = next((r.detail for r in results if r.detail.startswith(NOT_ALLOWED)), None)
        if refused is not None:  # the name resolved outside probe.allow: nothing was connected to
            return web.Response(status=403, text=f"target {refused}\n")
        # Rendered fresh from this request's results: nothing goes stale.
        text = self.service.probe_text(results, target, owner="owner" in q, name="name" in q)
        if q.get("debug", "").lower() in ("1", "true", "yes"):
            steps = "\n".join(line for r in results for line in r.log)
            head = (
                f"Probe of {target.target} ({target.protocol}, server name {target.server_name}, "
                f"timeout {deadline.seconds:g}s)\n\nLogs for the probe:\n{steps}\n\n"
                f"Verdict:\n{self.service.verdict_text(results, target)}\n\nMetrics that would have been returned:\n"
            )
            return web.Response(text=head + text, content_type="text/plain")
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def status(self, request: web.Request) -> web.Response:
        try:
            query = InventoryQuery.parse(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        page = await asyncio.to_thread(self.service.status_page, query)
        # A file name's undecodable bytes must not turn the page into a 500.
        return web.Response(text=utf8_safe(page), content_type="text/html")

    async def inventory(self, request: web.Request) -> web.Response:
        """The inventory as JSON, filtered as the page filters (?owner=&verdict=&protocol=&q=&discovery=)."""
        try:
            query = InventoryQuery.parse(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")

        def render() -> str:
            return json.dumps([e.as_json() for e in query.select(self.service.inventory())], separators=(",", ":"))

        return web.Response(text=await asyncio.to_thread(render), content_type="application/json")

    async def discovery(self, request: web.Request) -> web.Response:
        """Per discovery scan, its last run and the endpoints whose connection it accepted."""
        if request.query:
            return web.Response(status=400, text=f"unknown parameter(s): {', '.join(sorted(request.query))}\n")

        def render() -> str:
            return json.dumps(self.service.discovery_json(), separators=(",", ":"))

        return web.Response(text=await asyncio.to_thread(render), content_type="application/json")

    async def runbook(self, request: web.Request) -> web.Response:
        """What an alert means, what it does to users and how to fix it (docs/alerts.md, served here)."""
        page = runbook_html(request.match_info["alert"])
        if page is None:
            return web.Response(status=404, text="no such alert\n")
        return web.Response(text=page, content_type="text/html")

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(self, request: web.Request) -> web.Response:
        if not self.service.ready:
            return web.Response(status=503, text="not ready\n")
        return web.Response(text="OK\n")

    async def reload(self, request: web.Request) -> web.Response:
        if not self.service.enable_lifecycle:  # as Prometheus: state changes over HTTP are opt-in
            return web.Response(status=403, text="Lifecycle API is not enabled (start with --web.enable-lifecycle)\n")
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
    app.router.add_get("/api/v1/inventory", h.inventory)
    app.router.add_get("/api/v1/discovery", h.discovery)
    app.router.add_get("/runbooks/{alert}", h.runbook)
    app.router.add_get("/-/healthy", h.healthy)
    app.router.add_get("/-/ready", h.ready)
    app.router.add_post("/-/reload", h.reload)
    app.router.add_post("/alertmanager/snmp", service.alertmanager_snmp)
    return app
