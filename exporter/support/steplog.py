"""A probe's step-by-step log: what /probe?debug=true returns and what `check` prints."""

from __future__ import annotations

import time


class StepLog:
    def __init__(self) -> None:
        self._start = time.monotonic()
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(f"{time.monotonic() - self._start:8.4f}s  {message}")

    def extend(self, lines: tuple[str, ...] | list[str]) -> None:
        for line in lines:
            self(line)
