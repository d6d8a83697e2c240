"""Give freed heap memory back to the operating system (glibc's ``malloc_trim``).

A pass over ten thousand endpoints allocates and frees a lot (TLS connections, certificates,
rendered text) in small blocks; glibc keeps the freed pages, so RSS stays near the peak although
Python holds far less. ``malloc_trim(0)`` returns them: measured 300 -> 230 MB after a 10,000
endpoint pass, in about 5 ms. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def trim() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
