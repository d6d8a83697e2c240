"""Probe every job on its interval, spread evenly; record results and log their events.

Each job gets a stable phase derived from its key, so jobs do not all fire at once and a
reload does not reshuffle them; the first probe of every job happens within
``min(interval, 30 s)`` of start or reload. A reload restarts only the jobs that changed
(the entry itself or its profile): unchanged jobs keep their schedule and their results.
The concurrency cap counts connections (it lives in the network source), not jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time

from exporter.config.model import Config, Job, Profile, Target
from exporter.eventlog import log_events
from exporter.metrics.internal import SelfMetrics
from exporter.pipeline import Pipeline
from exporter.shard import Shard
from exporter.store import Store

log = logging.getLogger("exporter.scheduler")
FIRST_PROBE_WINDOW = 30.0


def phase(key: str, window: float) -> float:
    """A stable offset in [0, window) for this key."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * window


class Scheduler:
    def __init__(self, store: Store, pipeline: Pipeline, metrics: SelfMetrics, *, shard: Shard | None = None) -> None:
        self.store, self.pipeline, self.metrics = store, pipeline, metrics
        self.shard = shard or Shard()
        self.config = Config()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._jobs: dict[str, tuple[Job, Profile]] = {}

    def jobs(self, config: Config) -> list[Job]:
        """This instance's jobs: its shard of the network targets, and every file (files are local)."""
        return [
            job
            for source in self.pipeline.probers.values()
            for job in source.jobs(config)
            if not isinstance(job, Target) or self.shard.owns(job.key)
        ]

    def apply(self, config: Config) -> None:
        """Start, keep or stop job loops to match ``config``."""
        self.config = config
        jobs = self.jobs(config)
        self.store.apply_config(jobs)
        wanted = {job.key: (job, config.profile(job.profile)) for job in jobs}
        for key in list(self._tasks):
            if self._jobs.get(key) != wanted.get(key):  # removed, or changed (entry or profile)
                self._tasks.pop(key).cancel()
        self._jobs = wanted
        for key, (job, _) in wanted.items():
            if key not in self._tasks:
                window = min(job.interval, FIRST_PROBE_WINDOW)
                self._tasks[key] = asyncio.create_task(self._loop(key, phase(key, window)), name=f"probe {key}")
        self.metrics.targets.set(len(wanted))

    async def _loop(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            entry = self._jobs.get(key)
            if entry is None:
                return
            job = entry[0]
            started = time.monotonic()
            try:
                await self.run_once(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one job's bug stop its loop
                log.exception("probe loop error", extra={"fields": {"target": key}})
            await asyncio.sleep(max(0.0, job.interval - (time.monotonic() - started)))

    async def run_once(self, job: Job) -> None:
        results = await self.pipeline.probe(job, self.config)
        if job.source == "tls":
            for r in results:
                self.metrics.observe(r.outcome.value, r.duration)
        source = self.pipeline.source(job)
        profile = self.config.profile(job.profile)
        events = self.store.record(
            job, results, every_certificate=source.every_certificate, profile=profile, now=time.time()
        )
        log_events(job, events)

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
