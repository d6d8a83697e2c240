"""`GET /sd`: the configured targets as Prometheus `http_sd_config` JSON.

One group per target. Its `targets` entry becomes `__address__`; the `__param_*` labels become the
`/probe` query of the scrape, so a Prometheus that relabels `__address__` to the exporter (and
spreads the groups over replicas with `hashmod`) probes each target exactly as configured.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from exporter.config.model import Config

Group = dict[str, object]


def sd_groups(config: Config) -> list[Group]:
    groups: list[Group] = []
    for t in config.targets:
        labels = {
            "__param_target": t.target,
            "__param_protocol": t.protocol,
            "__param_server_name": t.server_name,
            "owner": t.owner,
            "name": t.name,
            **dict(t.labels),
        }
        if t.profile != config.defaults.profile:  # /probe would otherwise judge by the default profile
            labels["__param_profile"] = t.profile
        groups.append({"targets": [t.target], "labels": labels})
    return groups


def sd_handler(config: Callable[[], Config]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response(sd_groups(config()))

    return handle
