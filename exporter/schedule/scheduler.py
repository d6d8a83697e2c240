"""Probe every job on its interval, spread evenly; record results and log their events.

One loop over a queue of due times (``DueQueue``), and a task only while a job's probe runs: a
sleeping task per job would cost kilobytes each and wake the event loop once per job.

Each job gets a stable phase derived from its key, so jobs do not all fire at once and a
reload does not reshuffle them. The first probe of every job happens within the first-probe
window of start or reload: ``min(interval, max(30 s, N / PROBES_PER_SECOND))`` rounded up to a
multiple of 30 s, N being this instance's jobs; a process does about 400 probes a second on one
core, so 10,000 jobs still fit 30 s and 100,000 spread over 5 minutes instead of overloading it.
The next probe of a job is due one interval after this one was due, or as soon as it ends if it
overran: a probe is never doubled and missed due times are skipped, not queued up.

When a start or reload queues at least ``SCAN_HOLD_JOBS`` first probes, the version scans those
probes ask for wait until the window (and the last probe's timeout) has passed: a pass of
10,000 probes plus 10,000 scans kept one core busy to its last second, and the scans are not
urgent. Fewer new jobs (tests, a reload adding a few targets) are scanned at once.

A reload restarts only the jobs that changed (the entry itself or its profile): unchanged jobs
keep their schedule (a probe in flight finishes) and their results. The concurrency cap counts
connections (it lives in the network source), not jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from exporter.config.model import Config, Job, Profile
from exporter.pipeline import Pipeline
from exporter.schedule.duequeue import DueQueue
from exporter.schedule.shard import Shard
from exporter.schedule.store import Store

log = logging.getLogger("exporter.schedule.scheduler")
FIRST_PROBE_WINDOW = 30.0  # the shortest first-probe window, and the step it grows by
PROBES_PER_SECOND = 350  # first probes started per second at most when the window must grow
SCAN_HOLD_JOBS = 1000  # new jobs from which their version scans wait for the end of the first pass


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


class Telemetry(Protocol):
    """What the scheduler reports about itself (``exporter.metrics.internal.SelfMetrics``): handed
    in, not imported, so that the schedule does not lean on the outputs that read its store."""

    @property
    def targets(self) -> _Gauge: ...

    def observe(self, outcome: str, duration: float) -> None: ...


def phase(key: str, window: float) -> float:
    """A stable offset in [0, window) for this key."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * window


def first_probe_window(jobs: int, interval: float) -> float:
    """How long after start (or reload) every one of ``jobs`` jobs has had its first probe."""
    spread = max(FIRST_PROBE_WINDOW, jobs / PROBES_PER_SECOND)
    return min(interval, math.ceil(spread / FIRST_PROBE_WINDOW) * FIRST_PROBE_WINDOW)


class Scheduler:
    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        metrics: Telemetry,
        *,
        shard: Shard | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.pipeline, self.metrics = store, pipeline, metrics
        self.shard = shard or Shard()
        self.config = Config()
        self._clock = clock
        self._jobs: dict[str, tuple[Job, Profile]] = {}
        self._queue = DueQueue()  # jobs waiting for their next probe
        self._running: dict[str, asyncio.Task[None]] = {}  # jobs whose probe is in flight
        self._cancelled: set[asyncio.Task[None]] = set()  # probes of changed jobs, until they end
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sleeping_until = math.inf  # the due time the loop waits for

    def jobs(self, config: Config) -> list[Job]:
        """This instance's jobs: its shard of the network targets, and every file (files are local)."""
        return [
            job
            for source in self.pipeline.probers.values()
            for job in source.jobs(config)
            if not job.sharded or self.shard.owns(job.key)
        ]

    def due(self, key: str) -> float | None:
        """When the job's next probe is due (on the scheduler's clock); None while it runs or if unknown."""
        return self._queue.due(key)

    def running(self) -> set[str]:
        return set(self._running)

    def is_running(self, key: str) -> bool:
        """The job's probe is in flight now."""
        return key in self._running

    def apply(self, config: Config) -> None:
        """Queue, keep or drop jobs to match ``config``."""
        self.config = config
        jobs = self.jobs(config)
        self.store.apply_config(jobs)
        wanted = {job.key: (job, config.profile(job.profile)) for job in jobs}
        for key, entry in self._jobs.items():
            if entry != wanted.get(key):  # removed, or changed (entry or profile)
                self._queue.remove(key)
                task = self._running.pop(key, None)
                if task is not None:
                    task.cancel()
                    self._cancelled.add(task)
                    task.add_done_callback(self._cancelled.discard)
        now = self._clock()
        windows: dict[float, float] = {}
        queued, pass_ends = 0, 0.0
        for key, (job, _) in wanted.items():
            if key not in self._queue and key not in self._running:
                if job.interval not in windows:
                    windows[job.interval] = first_probe_window(len(wanted), job.interval)
                self._queue.push(key, now + phase(key, windows[job.interval]))
                queued += 1
                pass_ends = max(pass_ends, windows[job.interval] + job.timeout)
        scanner = self.pipeline.scanner
        if scanner is not None and queued >= SCAN_HOLD_JOBS:
            scanner.hold(pass_ends)
        self._jobs = wanted
        self.metrics.targets.set(len(wanted))
        if self._loop is None or self._loop.done():
            self._wake = asyncio.Event()  # bound to the running loop at its first wait
            self._loop = asyncio.create_task(self._run(), name="probe scheduler")
        self._wake.set()  # new jobs may be due before the loop's current wake-up

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            now = self._clock()
            for key, when in self._queue.pop_due(now):
                self._start(key, when)
            next_due = self._queue.next_due()
            self._sleeping_until = math.inf if next_due is None else next_due
            timer = None if next_due is None else loop.call_later(max(0.0, next_due - now), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    def _start(self, key: str, due: float) -> None:
        entry = self._jobs.get(key)
        if entry is None or key in self._running:  # removed; a running job is not queued (belt and braces)
            return
        self._running[key] = asyncio.create_task(self._probe(key, entry[0], due), name=f"probe {key}")

    async def _probe(self, key: str, job: Job, due: float) -> None:
        try:
            await self.run_once(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one job's bug stop its schedule
            log.exception("probe loop error", extra={"fields": {"target": key}})
        finally:
            # Requeue unless a reload or stop detached this task (the job changed or went away).
            task = asyncio.current_task()
            if self._running.get(key) is task:
                del self._running[key]
                current = self._jobs.get(key)
                if current is not None:
                    self._requeue(key, max(due + current[0].interval, self._clock()))

    def _requeue(self, key: str, when: float) -> None:
        self._queue.push(key, when)
        if when < self._sleeping_until:  # an overrun job is due now: do not wait for the next timer
            self._wake.set()

    async def run_once(self, job: Job) -> None:
        results = await self.pipeline.probe(job, self.config)
        if job.served:  # the probe histogram is about connections
            for r in results:
                self.metrics.observe(r.outcome.value, r.duration)
        source = self.pipeline.source(job)
        profile = self.config.profile(job.profile)
        self.store.record(job, results, every_certificate=source.every_certificate, profile=profile, now=time.time())

    async def stop(self) -> None:
        """Stop the loop and cancel the probes in flight; a later ``apply`` starts afresh."""
        loop, self._loop = self._loop, None
        tasks = [*self._running.values(), *self._cancelled]
        self._running.clear()
        self._cancelled.clear()
        queued = len(self._queue)
        self._queue.clear()
        self._jobs = {}
        if loop is not None:
            loop.cancel()
            tasks.append(loop)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if loop is not None:
            log.info("stopped probing", extra={"fields": {"cancelled": len(tasks) - 1, "queued": queued}})
