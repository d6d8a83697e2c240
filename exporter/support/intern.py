"""Equal immutable values held once: ten thousand endpoints serving the same chain keep one report.

A table maps each value to the first equal one seen, so holders keep that one. It is swept by
its owner from the values still held (``sweep``), once it has grown well past them, so a value
nobody holds any more does not stay alive for long, and the table stays within twice the live
values plus a little.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

SLACK = 1024  # values the table may hold beyond twice the live ones before a sweep


class Interner(Generic[T]):
    def __init__(self) -> None:
        self._table: dict[T, T] = {}

    def __call__(self, value: T) -> T:
        """The first held value equal to ``value`` (``value`` itself when there is none)."""
        return self._table.setdefault(value, value)

    def __len__(self) -> int:
        return len(self._table)

    def due(self, live: int) -> bool:
        """The table has grown past twice ``live`` values (plus some slack): time to sweep."""
        return len(self._table) > 2 * live + SLACK

    def sweep(self, held: Iterable[T]) -> None:
        """Keep only ``held`` (the values still referenced by the owner)."""
        table: dict[T, T] = {}
        for value in held:
            table.setdefault(value, value)
        self._table = table
