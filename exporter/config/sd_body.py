"""The `/sd` body: every configured target as a Prometheus `http_sd_config` group.

One group per target. Its `targets` entry becomes `__address__`; the `__param_*` labels become the
`/probe` query of the scrape, so a Prometheus that relabels `__address__` to the exporter (and
spreads the groups over replicas with `hashmod`) probes each target exactly as configured.

A replica started with `--shard` keeps only its share of the targets, yet its `/sd` lists every
target of the file, as any replica's does: the loader writes each entry's group here as it checks
it, compressed as it goes (``SdBody``), and never builds the others' targets.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _quoted  # json.dumps' own string writer

from exporter.config.model import Target

Group = dict[str, object]


class SdBody:
    """The JSON list of groups, written as text (a million groups through ``json.dumps`` cost 10 s
    of a sharded load, as text 2 s) and gzip-compressed as they come (level 1: twice as fast as
    the default and the body is still a small fraction of the JSON). ``default_profile``: a group
    names its target's profile only when it is another (/probe would otherwise judge by it)."""

    def __init__(self, default_profile: str) -> None:
        self._default_profile = default_profile
        self._zip = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
        self._parts = [self._zip.compress(b"[")]
        self._separator = ""

    def add_target(self, t: Target) -> None:
        self.add(t.target, t.protocol, t.server_name, t.owner, t.name, t.labels, t.profile)

    def add(
        self,
        target: str,
        protocol: str,
        server_name: str,
        owner: str,
        name: str,
        labels: Iterable[tuple[str, str]],
        profile: str,
    ) -> None:
        """One target's group: `__param_*` for /probe's query, its owner, name and labels, and its
        profile when it is not the default one."""
        extra = "".join(f",{_quoted(k)}:{_quoted(v)}" for k, v in labels)
        if profile != self._default_profile:
            extra += f',"__param_profile":{_quoted(profile)}'
        text = (
            f'{self._separator}{{"targets":[{_quoted(target)}],"labels":{{"__param_target":{_quoted(target)},'
            f'"__param_protocol":{_quoted(protocol)},"__param_server_name":{_quoted(server_name)},'
            f'"owner":{_quoted(owner)},"name":{_quoted(name)}{extra}}}}}'
        )
        self._separator = ","
        if part := self._zip.compress(text.encode()):
            self._parts.append(part)

    def gzipped(self) -> bytes:
        """The finished body (the writer takes no more groups)."""
        self._parts += [self._zip.compress(b"]"), self._zip.flush()]
        return b"".join(self._parts)
