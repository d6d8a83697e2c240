"""The scheduler: stable spread, the first-probe window, no doubled probe, loops follow reloads.

The schedule is checked on a fake clock (the queue's due times and the probes started), never
against the wall clock; one test runs real probes on loopback with short intervals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

import pytest
from helpers import make_config, make_target
from pki import PKI
from prometheus_client import CollectorRegistry
from servers import LoopbackServers

from exporter.config.model import FileTarget, Job, Target
from exporter.judge.scan import Scanner
from exporter.metrics.internal import SelfMetrics
from exporter.pipeline import Pipeline
from exporter.schedule.duequeue import DueQueue
from exporter.schedule.scheduler import (
    FIRST_PROBE_WINDOW,
    PROBES_PER_SECOND,
    SCAN_HOLD_JOBS,
    Scheduler,
    first_probe_window,
    phase,
)
from exporter.schedule.shard import Shard
from exporter.schedule.store import Store


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Gated(Scheduler):
    """Records the probes started; each one runs until the test opens the gate."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(Store(), Pipeline(), SelfMetrics(CollectorRegistry()), clock=clock)
        self.started: list[tuple[str, float]] = []
        self.gate = asyncio.Event()
        self.clock = clock

    async def run_once(self, job: Job) -> None:
        self.started.append((job.key, self.clock.now))
        await self.gate.wait()

    async def at(self, now: float) -> None:
        """Move the fake clock and let the loop and the probes run."""
        self.clock.now = now
        self._wake.set()
        for _ in range(10):
            await asyncio.sleep(0)


def targets(n: int, interval: float = 60.0) -> list[Target]:
    return [
        dataclasses.replace(make_target(1000 + i, target=f"host-{i}.example.test:443"), interval=interval)
        for i in range(n)
    ]


def test_phase_is_stable_and_spread() -> None:
    keys = [f"tls://host-{i}.example.test:443" for i in range(1000)]
    phases = [phase(k, 30.0) for k in keys]
    assert phases == [phase(k, 30.0) for k in keys]  # the same key always gets the same offset
    assert all(0 <= p < 30.0 for p in phases)
    per_second = [0] * 30
    for p in phases:
        per_second[int(p)] += 1
    # Evenly spread: no one-second slot holds more than twice its fair share (33).
    assert max(per_second) < 2 * len(keys) / 30
    assert phase(keys[0], 300.0) == pytest.approx(10 * phase(keys[0], 30.0))  # a key's fraction of any window


def test_the_first_probe_window_grows_with_the_jobs_in_steps_of_30_s() -> None:
    assert (FIRST_PROBE_WINDOW, PROBES_PER_SECOND) == (30.0, 350)
    assert first_probe_window(10, 300.0) == 30.0
    assert first_probe_window(10, 10.0) == 10.0  # never longer than the interval
    assert first_probe_window(10_000, 300.0) == 30.0  # 10,000 at 5 min still fit 30 s (28.6 s at 350/s)
    assert first_probe_window(10_600, 300.0) == 60.0  # 30 s would take more than 350/s: the next step
    assert first_probe_window(100_000, 3600.0) == 300.0  # 285.7 s rounded up
    assert first_probe_window(200_000, 3600.0) == 600.0
    assert first_probe_window(100_000, 120.0) == 120.0  # the interval caps it: every job once per interval


async def test_first_probes_are_spread_over_the_window_and_stay_in_phase() -> None:
    clock = Clock(1000.0)
    scheduler = Gated(clock)
    jobs = targets(12_000, interval=3600.0)  # 34 s at 350/s: a 60 s window
    try:
        scheduler.apply(make_config(*jobs))
        due = {j.key: scheduler.due(j.key) for j in jobs}
        assert due == {j.key: 1000.0 + phase(j.key, 60.0) for j in jobs}
        offsets = sorted(d - 1000.0 for d in due.values() if d is not None)
        assert len(offsets) == 12_000 and offsets[0] >= 0 and offsets[-1] < 60.0
        assert sum(1 for o in offsets if o >= 30.0) > 5000  # the second half of the window is used
        assert scheduler.started == []
        await scheduler.at(1015.0)  # every job due by now starts, once, and none other
        due_by_now = sorted(k for k, o in due.items() if o is not None and o <= 1015)
        assert sorted(k for k, _ in scheduler.started) == due_by_now and 2000 < len(due_by_now) < 4000
        assert scheduler.running() == {k for k, _ in scheduler.started}
        first = scheduler.started[0][0]
        scheduler.gate.set()
        await scheduler.at(1015.0)
        # The next probe is one interval after the previous one was due: the phase is kept.
        assert scheduler.due(first) == due[first] + 3600.0  # type: ignore[operator]
        assert scheduler.running() == set()
    finally:
        await scheduler.stop()


async def test_an_overrunning_probe_is_not_doubled_and_missed_times_are_skipped() -> None:
    clock = Clock(0.0)
    scheduler = Gated(clock)
    (job,) = targets(1, interval=10.0)
    try:
        scheduler.apply(make_config(job))
        first_due = phase(job.key, 10.0)
        assert scheduler.due(job.key) == first_due
        await scheduler.at(first_due)
        assert scheduler.started == [(job.key, first_due)]
        assert scheduler.due(job.key) is None  # running: not queued
        await scheduler.at(first_due + 35.0)  # three due times pass while it runs
        assert len(scheduler.started) == 1
        scheduler.gate.set()  # it ends 35 s late: the next probe starts now, once
        await scheduler.at(first_due + 35.0)
        assert scheduler.started == [(job.key, first_due), (job.key, first_due + 35.0)]
        await scheduler.at(first_due + 36.0)
        # That probe ended at once: the next one is one interval after it started.
        assert scheduler.due(job.key) == first_due + 45.0
        assert len(scheduler.started) == 2
        await scheduler.at(first_due + 45.0)
        assert len(scheduler.started) == 3
    finally:
        await scheduler.stop()


async def test_a_reload_keeps_unchanged_jobs_restarts_changed_ones_and_stops_removed_ones() -> None:
    clock = Clock(0.0)
    scheduler = Gated(clock)
    # Ordered by phase: `kept` comes first in every round, then `removed`, `changed`, `waiting`.
    pool = sorted(targets(20, interval=20.0), key=lambda t: phase(t.key, 20.0))
    kept, removed, changed, waiting = pool[0], pool[1], pool[10], pool[19]
    try:
        scheduler.apply(make_config(kept, changed, removed, waiting))
        await scheduler.at(20.0)  # all four ran their first probe (every phase < 20 s)
        assert scheduler.running() == {kept.key, changed.key, removed.key, waiting.key}
        scheduler.gate.set()
        await scheduler.at(20.0)
        assert scheduler.running() == set()
        scheduler.gate.clear()
        now = phase(removed.key, 20.0) + 20.0
        await scheduler.at(now)  # `kept` and `removed` are in their second probe, the others wait
        assert scheduler.running() == {kept.key, removed.key}
        kept_task, removed_task = scheduler._running[kept.key], scheduler._running[removed.key]
        waiting_due = scheduler.due(waiting.key)
        assert waiting_due == phase(waiting.key, 20.0) + 20.0
        started = len(scheduler.started)

        scheduler.apply(make_config(kept, dataclasses.replace(changed, interval=30.0), waiting))
        assert scheduler._running.get(kept.key) is kept_task and not kept_task.done()  # its probe goes on
        assert scheduler.due(waiting.key) == waiting_due  # its schedule is kept
        assert scheduler.due(changed.key) == now + phase(changed.key, 30.0)  # restarted, in the new window
        assert scheduler.due(removed.key) is None and removed.key not in scheduler.running()
        assert [j.key for j, _ in scheduler.store.snapshot()] == [kept.key, changed.key, waiting.key]
        await scheduler.at(now)
        assert removed_task.cancelled()  # its probe in flight is stopped

        scheduler.gate.set()
        await scheduler.at(now)
        assert scheduler.due(kept.key) == phase(kept.key, 20.0) + 40.0  # one interval after it was due
        await scheduler.at(200.0)
        assert {k for k, _ in scheduler.started[started:]} == {kept.key, changed.key, waiting.key}
    finally:
        await scheduler.stop()
    assert scheduler.running() == set() and scheduler.due(kept.key) is None


def test_the_due_queue_drops_stale_entries() -> None:
    queue = DueQueue()
    for i in range(100):
        queue.push(f"k{i}", float(i))
    queue.push("k0", 50.5)  # moved: its old entry at 0 is stale
    queue.remove("k1")
    assert len(queue) == 99 and "k1" not in queue and queue.due("k0") == 50.5
    assert queue.next_due() == 2.0
    assert queue.pop_due(3.0) == [("k2", 2.0), ("k3", 3.0)]
    for _ in range(1000):  # moving keys again and again does not grow the heap without bound
        queue.push("k10", 10.0)
    assert len(queue._heap) <= 2 * len(queue) + 64 + 1
    assert [k for k, _ in queue.pop_due(50.9)] == [f"k{i}" for i in range(4, 51)] + ["k0"]
    queue.clear()
    assert queue.next_due() is None and queue.pop_due(1e9) == []


async def test_targets_are_probed_and_follow_reloads(
    servers: LoopbackServers, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    a = make_target(servers.tls(pki["good"].server_context()))
    b = make_target(servers.tls(pki["expiring-20d"].server_context()))
    store, metrics = Store(), SelfMetrics(CollectorRegistry())
    scheduler = Scheduler(store, Pipeline(), metrics)
    interval_short = [dataclasses.replace(t, interval=0.5) for t in (a, b)]
    try:
        scheduler.apply(make_config(*interval_short))
        for _ in range(100):  # the first probe comes within min(interval, 30 s): 0.5 s here
            if all(entries for _, entries in store.snapshot()):
                break
            await asyncio.sleep(0.05)
        snapshot = store.snapshot()
        assert {t.target: [e.result.outcome.value for e in entries.values()] for t, entries in snapshot} == {  # type: ignore[union-attr]
            a.target: ["certificate_found"],
            b.target: ["certificate_found"],
        }
        assert metrics.targets._value.get() == 2  # type: ignore[attr-defined]
        # A reload restarts only what changed: the unchanged target keeps its results.
        kept_entries = store.snapshot()[0][1]
        changed = dataclasses.replace(interval_short[1], interval=0.6)
        scheduler.apply(make_config(interval_short[0], changed))
        assert store.snapshot()[0][1] is kept_entries
        scheduler.apply(make_config(interval_short[0]))
        assert [t.target for t, _ in store.snapshot()] == [a.target]  # type: ignore[union-attr]
        assert metrics.targets._value.get() == 1  # type: ignore[attr-defined]
        assert (scheduler.due(b.key), b.key in scheduler.running()) == (None, False)
    finally:
        await scheduler.stop()
    assert scheduler.running() == set()
    assert "stopped probing" in caplog.text


async def test_a_shard_probes_its_share_of_the_targets_and_every_file(tmp_path: Path) -> None:
    targets = [make_target(1000 + i, target=f"host-{i}.example.test:443") for i in range(40)]
    files = (FileTarget(path=str(tmp_path / "a.pem"), name="a", owner=""),)
    config = dataclasses.replace(make_config(*targets), files=files)
    owned: list[set[str]] = []
    for index in range(2):
        scheduler = Scheduler(Store(), Pipeline(), SelfMetrics(CollectorRegistry()), shard=Shard(index, 2))
        jobs = scheduler.jobs(config)
        assert files[0] in jobs  # files are local to every instance
        owned.append({j.key for j in jobs if isinstance(j, Target)})
    assert owned[0] | owned[1] == {t.key for t in targets} and not owned[0] & owned[1]
    assert 10 <= len(owned[0]) <= 30  # both halves get a real share


async def test_a_large_first_pass_holds_the_version_scans_until_its_window_ends() -> None:
    for count, held in ((SCAN_HOLD_JOBS, True), (SCAN_HOLD_JOBS - 1, False)):
        scanner = Scanner()
        scheduler = Scheduler(Store(), Pipeline(scanner=scanner), SelfMetrics(CollectorRegistry()), clock=Clock(1000.0))
        try:
            before = time.monotonic()
            scheduler.apply(make_config(*targets(count, interval=300.0)))
            if held:  # the 30 s window and the targets' 5 s timeout
                assert before + 35.0 <= scanner._hold_until <= time.monotonic() + 35.0
            else:
                assert scanner._hold_until == 0.0
            scheduler.apply(make_config(*targets(count, interval=300.0)))  # a reload that queues nothing new
            assert (scanner._hold_until > 0) is held
        finally:
            await scheduler.stop()
            await scanner.close()
