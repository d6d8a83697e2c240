"""Run each `discovery:` scan on its interval: one task per scan, so a run never starts twice.

A scan's first run starts within ``FIRST_RUN_WINDOW`` (30 s) of start, or of the reload that
added or changed it (at a stable phase of its name, so that several scans do not start at once);
the next run is due one interval after this one started, or as soon as it ends if it overran.
A reload leaves unchanged scans on their schedule; a changed scan's run in flight is cancelled
and its new task waits for that run to end before its own first run. What was found is kept
across reloads (``Discovery.retain``). When a run ends, ``on_run`` is told what it changed: the
exporter then re-applies its probe schedule (new endpoints monitored, forgotten ones dropped)
and sends the discovery e-mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from exporter.config.discovery import Scan
from exporter.schedule.scheduler import phase
from exporter.schedule.shard import Shard
from exporter.sources.discovered import Discovery, RunChanges
from exporter.sources.discovery import Probe, concurrency_for, probe_pair, run_scan

log = logging.getLogger("exporter.schedule.discovery")
FIRST_RUN_WINDOW = 30.0

OnRun = Callable[[Scan, RunChanges], Awaitable[None]]


class DiscoveryScheduler:
    def __init__(
        self,
        discovery: Discovery,
        *,
        shard: Shard | None = None,
        on_run: OnRun | None = None,
        probe: Probe = probe_pair,
        first_window: float = FIRST_RUN_WINDOW,
        max_concurrency: int = 1024,
    ) -> None:
        self.discovery = discovery
        self.shard = shard or Shard()
        self.on_run = on_run
        self.probe = probe
        self.first_window = first_window
        self.max_concurrency = max_concurrency
        self._scans: dict[str, Scan] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ending: set[asyncio.Task[None]] = set()  # cancelled tasks whose run may still be closing
        self._running: set[str] = set()  # scans whose run is in flight
        self.runs: dict[str, int] = {}  # runs started per scan (a run never starts twice at once)

    def is_running(self, name: str) -> bool:
        return name in self._running

    def apply(self, scans: Sequence[Scan]) -> None:
        """Start, keep or restart the scans' tasks to match ``scans``; keep what was found."""
        self.discovery.retain(scans)
        wanted = {scan.name: scan for scan in scans}
        for name, task in list(self._tasks.items()):
            if self._scans.get(name) != wanted.get(name):
                task.cancel()
                self._ending.add(task)
                task.add_done_callback(self._ending.discard)
                del self._tasks[name]
                if name in wanted:  # changed: the new task waits for the old run to end
                    self._tasks[name] = self._start(wanted[name], previous=task)
        for name, scan in wanted.items():
            if name not in self._tasks:
                self._tasks[name] = self._start(scan, previous=None)
        self._scans = wanted

    def _start(self, scan: Scan, previous: asyncio.Task[None] | None) -> asyncio.Task[None]:
        return asyncio.create_task(self._loop(scan, previous), name=f"discovery {scan.name}")

    async def _loop(self, scan: Scan, previous: asyncio.Task[None] | None) -> None:
        # Cancelled runs may still be closing their connections: a run never starts twice. (Every
        # cancelled task is waited for, not only this scan's: they end at once. asyncio.wait, not
        # await: this task's own cancellation must not be swallowed.)
        pending = [t for t in (previous, *self._ending) if t is not None and not t.done()]
        if pending:
            await asyncio.wait(pending)
        await asyncio.sleep(phase(f"discovery+{scan.name}", self.first_window) if self.first_window > 0 else 0)
        while True:
            began = time.monotonic()
            await self.run_once(scan)
            await asyncio.sleep(max(0.0, began + scan.interval - time.monotonic()))

    async def run_once(self, scan: Scan) -> RunChanges:
        """One run of ``scan`` now: scanned, recorded, and ``on_run`` told."""
        if scan.name in self._running:  # belt and braces: the task per scan already makes it so
            raise RuntimeError(f"discovery {scan.name}: a run is already in flight")
        self._running.add(scan.name)
        self.runs[scan.name] = self.runs.get(scan.name, 0) + 1
        started = time.time()
        log.info("discovery run started", extra={"fields": {"discovery": scan.name, "scope": scan.scope}})
        try:
            try:
                result = await run_scan(
                    scan,
                    owns=self.shard.owns,
                    probe=self.probe,
                    concurrency=concurrency_for(scan, self.max_concurrency),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # on our side (descriptors exhausted, a bug): the run failed
                log.exception("discovery run failed", extra={"fields": {"discovery": scan.name}})
                changes = self.discovery.record(scan, None, started, time.time(), error=f"{type(exc).__name__}: {exc}")
            else:
                changes = self.discovery.record(scan, result, started, time.time())
        finally:
            self._running.discard(scan.name)
        run = changes.run
        log.info(
            "discovery run finished",
            extra={
                "fields": {
                    "discovery": scan.name,
                    "ok": run.ok,
                    "pairs": run.scope,
                    "duration": round(run.duration, 3),
                    "accepted": len(changes.endpoints),
                    "new": len(changes.new),
                    "forgotten": len(changes.vanished),
                    **{f"outcome_{k}": v for k, v in sorted(run.outcomes.items())},
                }
            },
        )
        if self.on_run is not None:
            try:
                await self.on_run(scan, changes)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("after the discovery run", extra={"fields": {"discovery": scan.name}})
        return changes

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._ending]
        self._tasks.clear()
        self._ending.clear()
        self._scans = {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
