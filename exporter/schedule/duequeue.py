"""Due times of keys, earliest first: a heap with lazy deletion.

The scheduler holds one entry per job that is waiting for its next probe (a running job has
none). Removing or moving a key does not search the heap: the key's live sequence number
changes, and the stale heap entry is dropped when it reaches the top, or when stale entries
outnumber live ones and the heap is rebuilt. Under 300 bytes a key, against a few kilobytes
for a sleeping task and its timer.
"""

from __future__ import annotations

import heapq
import itertools


class DueQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._live: dict[str, tuple[float, int]] = {}  # key -> (due, sequence) of its one live entry
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def due(self, key: str) -> float | None:
        """When ``key`` is due, or None if it is not queued."""
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def push(self, key: str, when: float) -> None:
        """Queue ``key`` at ``when``, replacing any earlier due time of the same key."""
        seq = next(self._seq)
        self._live[key] = (when, seq)
        heapq.heappush(self._heap, (when, seq, key))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def remove(self, key: str) -> None:
        self._live.pop(key, None)
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def clear(self) -> None:
        self._heap.clear()
        self._live.clear()

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is queued."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[str, float]]:
        """Every key due at or before ``now`` with its due time, earliest first; they leave the queue."""
        out: list[tuple[str, float]] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return out
            when, _, key = heapq.heappop(self._heap)
            del self._live[key]
            out.append((key, when))

    def _drop_stale(self) -> None:
        heap, live = self._heap, self._live
        while heap:
            when, seq, key = heap[0]
            if live.get(key) == (when, seq):
                return
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [(when, seq, key) for key, (when, seq) in self._live.items()]
        heapq.heapify(self._heap)
