"""One time budget for a whole probe: resolve, connect, dialogue, handshake, judgement and close.

Every step asks the same ``Deadline`` how long it may still take, so the sum of the steps can
never exceed the budget (a per-step timeout would let five slow steps take five budgets).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Deadline:
    __slots__ = ("end", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        """Seconds until the deadline (never negative), at most ``cap`` when given."""
        left = max(0.0, self.end - time.monotonic())
        return left if cap is None else min(left, cap)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.end

    async def run(self, awaitable: Awaitable[T], cap: float | None = None) -> T:
        """Await within what is left (and ``cap``); raises TimeoutError when the time runs out.

        ``asyncio.timeout`` rather than ``wait_for``: the work runs in the caller's task, so a
        connection that completes just as the time runs out is never lost unclosed.
        """
        async with asyncio.timeout(self.left(cap)):
            return await awaitable

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g}s, {self.left():.3f}s left)"
