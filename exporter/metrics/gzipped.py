"""One gzip member built from blocks compressed once: /metrics with ``Accept-Encoding: gzip``.

Each metric family of the exposition is compressed on its own into a raw deflate block that
ends on a byte boundary (``Z_SYNC_FLUSH``, not final), so blocks can be laid end to end; the
member's CRC-32 is combined from the blocks' CRCs (zlib's ``crc32_combine``, which Python does
not expose, is written out below). A family whose lines did not change since the last scrape
reuses its block: a scrape compresses only what moved (the clock and per-probe families).
Families carry a version that moves whenever their bytes change; a block is reused only at
the version it was made from.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

LEVEL = 1  # 70 MB of exposition -> about 3 MB; higher levels cost several times the CPU for ~20% less
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no name, no mtime, unknown OS
_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC-32 polynomial (reflected), as zlib does it."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return p


def _x2n_table() -> tuple[int, ...]:
    table, p = [], 1 << 30  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return tuple(table)


_X2N = _x2n_table()  # x^(2^k) modulo the polynomial


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    p, k, n = 1 << 31, 3, len2  # x^0; the shift is 8 * len2 bits
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


@dataclass(frozen=True, slots=True)
class Block:
    deflated: bytes
    crc: int
    size: int


def block(data: bytes, level: int = LEVEL) -> Block:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return Block(c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data), len(data))


def member(blocks: Iterable[Block]) -> list[bytes]:
    """A complete gzip member (as chunks to write in order) holding the blocks' data in order."""
    out, crc, size = [_HEADER], 0, 0
    for b in blocks:
        out.append(b.deflated)
        crc, size = crc32_combine(crc, b.crc, b.size), size + b.size
    last = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    out.append(last.flush(zlib.Z_FINISH))  # an empty final block
    out.append(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
    return out


class BlockCache:
    """Compressed blocks per family name, reused while the family's version is unchanged."""

    def __init__(self) -> None:
        self._blocks: dict[str, tuple[int, Block]] = {}
        self._lock = threading.Lock()
        self.compressed = 0  # families compressed (for tests and the bench)

    def blocks(self, families: Sequence[tuple[str, Callable[[], Sequence[bytes]], int]]) -> list[Block]:
        """One block per family (name, its parts when needed, version), in order."""
        with self._lock:
            kept: dict[str, tuple[int, Block]] = {}
            out = []
            for name, parts, version in families:
                hit = self._blocks.get(name)
                if hit is None or hit[0] != version:
                    hit = (version, block(b"".join(parts())))
                    self.compressed += 1
                kept[name] = hit
                out.append(hit[1])
            self._blocks = kept
            return out
