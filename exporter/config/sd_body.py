"""The `/sd` body: every configured target as a Prometheus `http_sd_config` group.

One group per target. Its `targets` entry becomes `__address__`; the `__param_*` labels become the
`/probe` query of the scrape, so a Prometheus that relabels `__address__` to the exporter (and
spreads the groups over replicas with `hashmod`) probes each target exactly as configured.

A replica started with `--shard` keeps only its share of the targets, yet its `/sd` lists every
target of the file, as any replica's does: the loader writes each entry's group here as it checks
it, compressed as it goes (``SdBody``), and never builds the others' targets.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable

Group = dict[str, object]


def sd_group(
    *,
    target: str,
    protocol: str,
    server_name: str,
    owner: str,
    name: str,
    labels: Iterable[tuple[str, str]],
    profile: str,
    default_profile: str,
) -> Group:
    merged: dict[str, str] = {
        "__param_target": target,
        "__param_protocol": protocol,
        "__param_server_name": server_name,
        "owner": owner,
        "name": name,
        **dict(labels),
    }
    if profile != default_profile:  # /probe would otherwise judge by the default profile
        merged["__param_profile"] = profile
    return {"targets": [target], "labels": merged}


class SdBody:
    """The JSON list of groups, gzip-compressed as the groups come (a million targets' groups are
    about 250 MB of JSON, a few tens of MB compressed)."""

    def __init__(self) -> None:
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
        self._parts = [self._zip.compress(b"[")]
        self._separator = b""

    def add(self, group: Group) -> None:
        data = self._separator + json.dumps(group, separators=(",", ":")).encode()
        self._separator = b","
        if part := self._zip.compress(data):
            self._parts.append(part)

    def gzipped(self) -> bytes:
        """The finished body (the writer takes no more groups)."""
        self._parts += [self._zip.compress(b"]"), self._zip.flush()]
        return b"".join(self._parts)
