"""`--shard=I/N`: which share of the configured targets this instance probes.

A target belongs to shard ``sha256(key) mod N``: the split depends on nothing but the key and N,
so it is the same after a restart, a reload or on another machine, and adding a target moves no
other. ``auto/N`` takes I from the trailing ``-K`` of the host name, as a StatefulSet names its
pods (``tls-exporter-2``).
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass

_SPEC = re.compile(r"(?P<index>auto|[0-9]+)/(?P<count>[0-9]+)")
_ORDINAL = re.compile(r"-([0-9]+)$")
HINT = "expected I/N with 0 <= I < N (e.g. 0/3), or auto/N"


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    count: int = 1

    def owns(self, key: str) -> bool:
        return self.count == 1 or bucket(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def bucket(key: str, count: int) -> int:
    """The shard of ``key`` among ``count``: the first 8 bytes of its SHA-256, modulo ``count``."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count


def parse_shard(spec: str, hostname: str | None = None) -> Shard:
    """``I/N`` or ``auto/N`` -> Shard; a ValueError names the flag and what is wrong."""
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise ValueError(f"--shard: invalid value {spec!r} ({HINT})")
    count = int(match["count"])
    if count < 1:
        raise ValueError(f"--shard: invalid value {spec!r}: N must be at least 1")
    if match["index"] == "auto":
        host = socket.gethostname() if hostname is None else hostname
        ordinal = _ORDINAL.search(host.split(".", 1)[0])
        if ordinal is None:
            raise ValueError(
                f"--shard={spec}: host name {host!r} does not end in -K (a StatefulSet pod name such as "
                "tls-exporter-2); give the index as I/N"
            )
        index = int(ordinal[1])
        if index >= count:
            raise ValueError(
                f"--shard={spec}: host name {host!r} gives index {index}, not below {count} "
                "(does the StatefulSet have more replicas than N?)"
            )
        return Shard(index, count)
    index = int(match["index"])
    if index >= count:
        raise ValueError(f"--shard: invalid value {spec!r}: I must be below N ({HINT})")
    return Shard(index, count)
