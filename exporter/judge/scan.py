"""The protocol-version scan on its own clock: after a probe, never inside it.

A scan is five ClientHellos (one per version, one connection each, one after another); it says
which versions a server accepts and feeds the grade. It changes rarely, so an address is scanned
again only every ``scan_interval``, under a small concurrency budget of its own, in the
background. Outputs merge the latest scan when they render (``tls_protocol_accepted``,
``tls_protocol_scan_timestamp_seconds``); the probe that asked for it never waits for it.

A kept scan holds its hellos once for every address that answered alike (``exporter.support.intern``:
10,000 addresses of one fleet answer alike, 8 MB of equal hellos held once), without the OCSP
staple a TLS 1.2 hello may carry (nothing reads it after the scan; 1-4 KB per address).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

from exporter.config.model import Job, ScanKey
from exporter.support.deadline import Deadline
from exporter.support.intern import Interner
from exporter.tls import hello
from exporter.tls.hello import Opener

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    at: float  # unix time the scan completed
    hellos: tuple[hello.HelloResult, ...]

    @property
    def answered(self) -> bool:
        """At least one version got an answer; otherwise the scan itself failed (our side or the network)."""
        return any(r.accepted is not None for r in self.hellos)

    @property
    def accepted(self) -> tuple[tuple[str, bool], ...]:
        return tuple((r.version, r.accepted) for r in self.hellos if r.accepted is not None)

    def describe(self) -> list[str]:
        lines = []
        for r in self.hellos:
            state = {True: "accepted", False: "refused", None: "unknown"}[r.accepted]
            info = r.suite_info
            extra = f" {info.name}" if r.accepted and info else ""
            lines.append(f"hello {r.version}: {state}{extra}" + (f" ({r.detail})" if r.detail else ""))
        return lines


class Scanner:
    def __init__(self, *, concurrency: int = 4, hello_timeout: float = 3.0, max_entries: int = 100_000) -> None:
        self.hello_timeout = hello_timeout
        # One budget for a whole scan (every connection, dialogue and hello of it): one hello's each.
        self.scan_timeout = hello_timeout * len(hello.VERSIONS)
        self._gate = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._results: OrderedDict[ScanKey, ScanResult] = OrderedDict()
        # Due scans wait in a queue for one of `concurrency` workers: ten thousand due addresses
        # cost ten thousand small tuples, not ten thousand suspended tasks (about 15 MB).
        self._queue: deque[tuple[ScanKey, Opener]] = deque()
        self._pending: set[ScanKey] = set()  # queued or running
        self._workers: set[asyncio.Task[None]] = set()
        self._go = asyncio.Event()  # cleared while a scrape renders: see paused()
        self._go.set()
        self._pauses = 0
        self._hold_until = 0.0  # time.monotonic() before which no background scan starts: see hold()
        self._max = max_entries
        self._hellos = Interner[tuple[hello.HelloResult, ...]]()
        self.scans = 0  # scans run, for logs and tests

    def latest(self, key: ScanKey) -> ScanResult | None:
        return self._results.get(key)

    def latest_for(self, job: Job, location: str) -> ScanResult | None:
        """The latest scan of one location of ``job`` (None for a source without scans)."""
        key = job.scan_key(location)
        return None if key is None else self._results.get(key)

    def due(self, key: ScanKey, interval: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        last = self._results.get(key)
        return key not in self._pending and (last is None or last.at + interval <= now)

    def request(self, key: ScanKey, opener: Opener, interval: float) -> bool:
        """Queue a background scan of ``key`` when it is due; True when one was queued."""
        if not self.due(key, interval):
            return False
        self._pending.add(key)
        self._queue.append((key, opener))
        if sum(not w.done() for w in self._workers) < self._concurrency:  # a done one may await its callback
            worker = asyncio.create_task(self._work(), name="version scans")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        return True

    async def _work(self) -> None:
        while self._queue:
            held = self._hold_until - time.monotonic()
            if held > 0:
                await asyncio.sleep(held)
                continue
            await self._go.wait()
            if not self._queue:
                return
            key, opener = self._queue.popleft()
            await self._background(key, opener)

    def hold(self, seconds: float) -> None:
        """No background scan starts for ``seconds`` (the scheduler's first pass); they queue."""
        self._hold_until = max(self._hold_until, time.monotonic() + seconds)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No new background scan starts inside this block (those under way finish).

        /metrics renders in a worker thread that shares the GIL with the event loop; right after a
        pass the loop is busy with thousands of queued scans and the render got half the CPU. Scans
        are never urgent, so they wait for the scrape. Event-loop thread only.
        """
        self._pauses += 1
        self._go.clear()
        try:
            yield
        finally:
            self._pauses -= 1
            if not self._pauses:
                self._go.set()

    async def scan_now(self, key: ScanKey, opener: Opener) -> ScanResult:
        """Scan and wait for it (the one-shot `check` command)."""
        async with self._gate:
            return self._keep(key, await self._scan(key, opener))

    async def _background(self, key: ScanKey, opener: Opener) -> None:
        try:
            async with self._gate:
                self._keep(key, await self._scan(key, opener))
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must cost one scan, never the exporter
            log.exception("version scan of %s failed", key[1])
        finally:
            self._pending.discard(key)

    async def _scan(self, key: ScanKey, opener: Opener) -> ScanResult:
        self.scans += 1
        hellos = await hello.scan(
            opener, key[2] or None, timeout=self.hello_timeout, deadline=Deadline(self.scan_timeout)
        )
        return ScanResult(at=time.time(), hellos=hellos)

    def _keep(self, key: ScanKey, result: ScanResult) -> ScanResult:
        hellos = tuple(dataclasses.replace(h, staple=None) if h.staple is not None else h for h in result.hellos)
        result = ScanResult(at=result.at, hellos=self._hellos(hellos))
        if self._hellos.due(len(self._results)):
            self._hellos.sweep(r.hellos for r in self._results.values())
        self._results[key] = result
        self._results.move_to_end(key)
        while len(self._results) > self._max:
            self._results.popitem(last=False)
        return result

    async def close(self) -> None:
        self._queue.clear()
        self._pending.clear()
        tasks = list(self._workers)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
