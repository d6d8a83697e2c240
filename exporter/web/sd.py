"""`GET /sd`: the configured targets as Prometheus `http_sd_config` JSON (``exporter.config.sd_body``).

Every replica lists every target of the file: a replica started with `--shard` serves the body its
loader wrote for all of them (it keeps only its share of the targets themselves).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from exporter.config.model import Config
from exporter.config.sd_body import Group, SdBody
from exporter.metrics.text import accepts_gzip


def sd_groups(config: Config) -> list[Group]:
    """The groups of ``/sd``, as Python values."""
    groups: list[Group] = json.loads(gzip.decompress(sd_body(config)))
    return groups


def sd_body(config: Config) -> bytes:
    """The `/sd` body, gzip-compressed: the loader's for a shard's replica, else made from the targets."""
    if config.sd_body is not None:
        return config.sd_body
    body = SdBody(config.defaults.profile)
    for t in config.targets:
        body.add_target(t)
    return body.gzipped()


def sd_handler(config: Callable[[], Config]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        body = sd_body(config())
        headers = {"Content-Type": "application/json", "Vary": "Accept-Encoding"}
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            return web.Response(body=body, headers={**headers, "Content-Encoding": "gzip"})
        return web.Response(body=gzip.decompress(body), headers=headers)

    return handle
