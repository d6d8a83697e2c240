"""Probe every target on its interval, spread evenly, under a global concurrency cap.

Each target gets a stable phase derived from its key, so targets do not all fire at once and
a reload does not reshuffle them; the first probe of every target happens within
``min(interval, 30 s)`` of start or reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

from exporter.config.model import Config, FileTarget, Target
from exporter.metrics.internal import SelfMetrics
from exporter.probe import Prober
from exporter.results import FileResult
from exporter.store import Event, Store

log = logging.getLogger("exporter.scheduler")
FIRST_PROBE_WINDOW = 30.0


def phase(key: str, window: float) -> float:
    """A stable offset in [0, window) for this key."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * window


def log_events(events: list[Event]) -> None:
    for e in events:
        extra = {"target": e.target, **({"address": e.address} if e.address else {}), **dict(e.fields)}
        level = (
            logging.INFO
            if e.kind == "new_certificate" or (e.fields and dict(e.fields).get("to") == "certificate_found")
            else logging.WARNING
        )
        log.log(level, e.message, extra={"fields": extra})


# Reads every path of a `files:` entry (exporter.probers.file); injected to keep this module I/O-free.
FileReader = Callable[[FileTarget, Config, float], Awaitable[list[FileResult]]]


class Scheduler:
    def __init__(
        self,
        store: Store,
        prober: Prober,
        metrics: SelfMetrics,
        *,
        concurrency: int = 256,
        file_reader: FileReader | None = None,
    ) -> None:
        self.store, self.prober, self.metrics = store, prober, metrics
        self.semaphore = asyncio.Semaphore(concurrency)
        self.config = Config()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._file_reader = file_reader

    def apply(self, config: Config) -> None:
        """Start, keep or stop target loops to match ``config``."""
        self.config = config
        self.store.apply_config(config)
        wanted: dict[str, Target | FileTarget] = {t.key: t for t in config.targets}
        wanted.update({f"file://{f.path}": f for f in config.files})
        for key in list(self._tasks):
            self._tasks.pop(key).cancel()  # restart all: intervals or timeouts may have changed
        for key, item in wanted.items():
            window = min(item.interval, FIRST_PROBE_WINDOW)
            self._tasks[key] = asyncio.create_task(self._loop(key, phase(key, window)), name=f"probe {key}")
        self.metrics.targets.set(len(wanted))

    def _current(self, key: str) -> Target | FileTarget | None:
        if key.startswith("file://"):
            return next((f for f in self.config.files if f"file://{f.path}" == key), None)
        return next((t for t in self.config.targets if t.key == key), None)

    async def _loop(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            item = self._current(key)
            if item is None:
                return
            started = time.monotonic()
            try:
                await self.run_once(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one target's bug stop its loop
                log.exception("probe loop error", extra={"fields": {"target": key}})
            await asyncio.sleep(max(0.0, item.interval - (time.monotonic() - started)))

    async def run_once(self, item: Target | FileTarget) -> None:
        async with self.semaphore:
            if isinstance(item, FileTarget):
                if self._file_reader is not None:
                    file_results = await self._file_reader(item, self.config, time.time())
                    log_events(self.store.record_files(item, file_results))
                return
            results = await self.prober.probe_target(item, self.config)
        for r in results:
            self.metrics.observe(r.outcome.value, r.duration)
        log_events(self.store.record(item, results))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            log.info("stopped probing", extra={"fields": {"cancelled": len(tasks)}})
