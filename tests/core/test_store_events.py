"""Outputs subscribe to the store's change events; a failing subscriber costs nothing else."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from helpers import make_target

from exporter.config.model import Job
from exporter.results import Result
from exporter.schedule.changes import Event, EventKind
from exporter.schedule.store import Store
from exporter.support.errors import Outcome


def _failed(location: str, outcome: Outcome) -> Result:
    return Result(location=location, outcome=outcome, detail="", started_at=1.0, duration=0.1)


def test_subscribers_get_each_pass_that_changed_something(caplog: pytest.LogCaptureFixture) -> None:
    target = make_target(port=443)
    store = Store()
    store.apply_config([target])
    seen: list[tuple[str, list[EventKind]]] = []

    def broken(job: Job, events: Sequence[Event]) -> None:
        raise RuntimeError("an output's bug")

    def record(job: Job, events: Sequence[Event]) -> None:
        seen.append((job.key, [e.kind for e in events]))

    store.subscribe(broken)
    store.subscribe(record)
    with caplog.at_level(logging.ERROR):
        first = store.record(target, [_failed("127.0.0.1:443", Outcome.CONNECTION_REFUSED)], now=1.0)
        again = store.record(target, [_failed("127.0.0.1:443", Outcome.CONNECTION_REFUSED)], now=2.0)
        changed = store.record(target, [_failed("127.0.0.1:443", Outcome.CONNECT_TIMEOUT)], now=3.0)
    assert first and not again and changed
    # The broken subscriber was logged twice and the one after it still saw both passes that changed.
    assert seen == [(target.key, [e.kind for e in first]), (target.key, [e.kind for e in changed])]
    assert [r.getMessage() for r in caplog.records].count(f"event subscriber {broken!r} failed") == 2
    [(_, entries)] = store.snapshot()
    assert entries["127.0.0.1:443"].result.outcome is Outcome.CONNECT_TIMEOUT  # recorded all the same
