"""A least-recently-used map bounded in bytes, safe to share between threads.

A cache bounded by entry count is unbounded in memory when one entry can be large (a
certificate with 10,000 names is 300 KB of DER); each entry here carries its size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BytesLRU(Generic[K, V]):
    def __init__(self, max_bytes: int, max_item: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_item = max_bytes // 8 if max_item is None else max_item
        self.bytes = 0
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            self._data.move_to_end(key)
            return hit[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep ``value``, evicting the least recently used; one over ``max_item`` is not kept."""
        if size > self.max_item:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            while self._data and self.bytes + size > self.max_bytes:
                _, (_, dropped) = self._data.popitem(last=False)
                self.bytes -= dropped
            self._data[key] = (value, size)
            self.bytes += size

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)
