"""One gzip member built from blocks compressed once: /metrics with ``Accept-Encoding: gzip``.

Each piece of the exposition (a family's header; its lines for one group of locations) is
compressed on its own into a raw deflate block that ends on a byte boundary (``Z_SYNC_FLUSH``,
not final), so blocks can be laid end to end; the member's CRC-32 is combined from the blocks'
CRCs (zlib's ``crc32_combine``, which Python does not expose, is written out below). The
renderer (exporter/metrics/render.py) keeps the blocks and makes a new one only for lines that
changed; this module only makes, reads and joins them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
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


def _shift(length: int) -> int:
    """x^(8 * length) modulo the polynomial: the operator that moves a CRC past ``length`` bytes."""
    p, k, n = 1 << 31, 3, length  # x^0; the shift is 8 * length bits
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    return _multmodp(_shift(len2), crc1) ^ crc2


@dataclass(frozen=True, slots=True)
class Block:
    deflated: bytes
    crc: int
    size: int
    shift: int  # _shift(size), computed once so that joining blocks costs one product each


def block(data: bytes, level: int = LEVEL) -> Block:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return Block(c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data), len(data), _shift(len(data)))


def inflate(b: Block) -> bytes:
    """The data of one block."""
    return zlib.decompressobj(-15).decompress(b.deflated)


Chunk = bytes | Block
"""A piece of a plain-text body: bytes, or a block inflated only when it is written (a scrape of
10,000 endpoints never holds its 60 MB of text at once)."""


def chunk_size(chunk: Chunk) -> int:
    return chunk.size if isinstance(chunk, Block) else len(chunk)


def chunk_data(chunk: Chunk) -> bytes:
    return inflate(chunk) if isinstance(chunk, Block) else chunk


def member(blocks: Iterable[Block]) -> list[bytes]:
    """A complete gzip member (as chunks to write in order) holding the blocks' data in order."""
    out, crc, size = [_HEADER], 0, 0
    for b in blocks:
        out.append(b.deflated)
        crc, size = _multmodp(b.shift, crc) ^ b.crc, size + b.size
    last = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    out.append(last.flush(zlib.Z_FINISH))  # an empty final block
    out.append(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
    return out
