"""The scheduler: stable spread, a first probe within the window, loops follow reloads."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest
from helpers import make_config, make_target
from pki import PKI
from prometheus_client import CollectorRegistry
from servers import LoopbackServers

from exporter.config.model import FileTarget, Target
from exporter.metrics.internal import SelfMetrics
from exporter.pipeline import Pipeline
from exporter.scheduler import FIRST_PROBE_WINDOW, Scheduler, phase
from exporter.shard import Shard
from exporter.store import Store


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
    assert FIRST_PROBE_WINDOW == 30.0


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
        # A reload restarts only what changed: the unchanged target keeps its loop and its results.
        kept_task = scheduler._tasks[interval_short[0].key]
        kept_entries = store.snapshot()[0][1]
        changed = dataclasses.replace(interval_short[1], interval=0.6)
        scheduler.apply(make_config(interval_short[0], changed))
        assert scheduler._tasks[interval_short[0].key] is kept_task
        assert store.snapshot()[0][1] is kept_entries
        assert not kept_task.done()
        scheduler.apply(make_config(interval_short[0]))
        assert [t.target for t, _ in store.snapshot()] == [a.target]  # type: ignore[union-attr]
        assert len(scheduler._tasks) == 1 and scheduler._tasks[interval_short[0].key] is kept_task
    finally:
        await scheduler.stop()
    assert scheduler._tasks == {}
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
