"""File reads that cannot hang or flood the exporter.

``read_regular`` opens without blocking (a FIFO would otherwise wait for a writer), refuses
anything but a regular file (FIFOs, devices such as /dev/zero, directories, sockets) with an
error naming the path, and reads at most ``limit`` bytes. ``in_file_thread`` runs blocking file
work on a small pool of its own: a slow disk or a network mount stalls that pool only, never the
threads that render scrapes, resolve names or reload; its threads are daemons, so shutdown never
waits on a read that does not return.
"""

from __future__ import annotations

import asyncio
import errno
import os
import queue
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
MiB = 1024 * 1024
FILE_THREADS = 4


class FileTooLarge(OSError):
    """A file over the size this reader accepts."""


def read_regular(path: str | os.PathLike[str], limit: int, *, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError (naming the path) otherwise."""
    name = os.fsdecode(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{what} is {_kind(st.st_mode)}, not a regular file", name)
        if st.st_size > limit:
            raise FileTooLarge(errno.EFBIG, f"{what} is {st.st_size} bytes, over the {limit} byte limit", name)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may grow while it is read
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileTooLarge(errno.EFBIG, f"{what} grew over the {limit} byte limit while read", name)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def describe(exc: OSError) -> str:
    """``exc`` as one line: what went wrong and the path."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


class DaemonExecutor(Executor):
    """A fixed pool of daemon threads: ``concurrent.futures.ThreadPoolExecutor`` joins its threads
    at exit (and asyncio.run waits for the default one), which a hung read would block for good."""

    def __init__(self, threads: int, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        self._started = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if not self._started:
                for t in self._threads:
                    t.start()
                self._started = True
        future: Future[T] = Future()
        self._queue.put((future, partial(fn, *args, **kwargs)))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, work = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None  # daemon threads: nothing to wait for


class DaemonThreadPool(ThreadPoolExecutor):
    """A ``DaemonExecutor`` that asyncio accepts as the loop's default executor (it must be a
    ThreadPoolExecutor): DNS lookups and rendering run there, and shutdown never waits for them."""

    def __init__(self, threads: int, name: str) -> None:
        super().__init__(max_workers=threads, thread_name_prefix=name)
        self._daemon = DaemonExecutor(threads, name)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._daemon.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


FILE_IO = DaemonExecutor(FILE_THREADS, "file-io")


async def in_file_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the file I/O pool."""
    return await asyncio.get_running_loop().run_in_executor(FILE_IO, partial(fn, *args))
