"""exporter.support.memory: one malloc arena, measured through glibc's own statistics in a child process."""

from __future__ import annotations

import os
import subprocess
import sys

from exporter.support import memory

# A child that (maybe) calls one_arena, then lets 8 threads allocate at once, then prints glibc's
# per-arena statistics (malloc_stats writes "Arena N:" per arena to stderr).
CHILD = """
import ctypes, sys, threading
from exporter.support import memory
print(memory.one_arena() if sys.argv[1] == "one" else "-", flush=True)
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    for _ in range(200):
        blocks = [bytearray(512) for _ in range(500)]
        del blocks
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def arenas(mode: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=environ, timeout=60, check=True
    )
    count = sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))
    return done.stdout.strip(), count


def test_one_arena_keeps_every_thread_in_the_main_arena() -> None:
    said, count = arenas("one")
    assert said == "True"
    assert count == 1


def test_without_it_threads_grow_arenas_of_their_own() -> None:
    # The control: the same child without the call uses several arenas, so the test above can fail.
    said, count = arenas("default")
    assert said == "-"
    assert count > 1


def test_the_operators_malloc_arena_max_wins() -> None:
    assert memory.one_arena({"MALLOC_ARENA_MAX": "4"}) is False
    said, count = arenas("one", MALLOC_ARENA_MAX="2")
    assert said == "False"
    assert count == 2


def test_trim_returns_true_on_glibc() -> None:
    assert memory.trim() is True
