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

from exporter.config.model import Config, FileTarget, Target
from exporter.metrics.internal import SelfMetrics
from exporter.probe import Prober
from exporter.probers.file import read_target
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


class Scheduler:
    def __init__(
        self,
        store: Store,
        prober: Prober,
        metrics: SelfMetrics,
        *,
        concurrency: int = 256,
    ) -> None:
        self.store, self.prober, self.metrics = store, prober, metrics
        self.semaphore = asyncio.Semaphore(concurrency)
        self.config = Config()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._items: dict[str, Target | FileTarget] = {}

    def apply(self, config: Config) -> None:
        """Start, keep or stop target loops to match ``config``."""
        self.config = config
        self.store.apply_config(config)
        wanted: dict[str, Target | FileTarget] = {t.key: t for t in config.targets}
        wanted.update({f"file://{f.path}": f for f in config.files})
        self._items = wanted
        for key in list(self._tasks):
            self._tasks.pop(key).cancel()  # restart all: intervals or timeouts may have changed
        for key, item in wanted.items():
            window = min(item.interval, FIRST_PROBE_WINDOW)
            self._tasks[key] = asyncio.create_task(self._loop(key, phase(key, window)), name=f"probe {key}")
        self.metrics.targets.set(len(wanted))

    async def _loop(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            item = self._items.get(key)
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
                config = self.config
                file_results = await read_target(
                    item, config.profile(item.profile), config.certificate_owners, time.time()
                )
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
