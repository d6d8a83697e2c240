"""The event loop the server runs on: uvloop when it is installed (a dependency wherever it installs:
CPython on Linux and macOS), else asyncio's.

uvloop cuts the event-loop glue of every probe (connect, TLS transport, close); measured in
bench/README.md. ``TLS_EXPORTER_EVENT_LOOP=asyncio`` forces the standard loop (to compare, or
to rule uvloop out when chasing a bug); ``uvloop`` insists on it and fails when missing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "TLS_EXPORTER_EVENT_LOOP"
CHOICES = ("auto", "asyncio", "uvloop")


def choice() -> str:
    """Which loop ``run`` uses: "uvloop" or "asyncio"; ValueError for a bad environment value."""
    wanted = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if wanted not in CHOICES:
        raise ValueError(f"{ENV}={wanted!r}: expected one of {', '.join(CHOICES)}")
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if wanted == "uvloop":
            raise ValueError(f"{ENV}=uvloop but uvloop is not installed (pip install uvloop)") from None
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    if choice() == "uvloop":
        import uvloop

        # Typed when uvloop is installed, Any when it is not (mypy then has no stubs): one spelling for both.
        result: T = uvloop.run(main)
        return result
    return asyncio.run(main)
