"""The report scheduler's own loop: it wakes at the slot, runs the report, counts a failure and
keeps going; stop() ends it. (Delivery and retry against a real Prometheus: test_report.py.)"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from pathlib import Path

import pytest
from servers import closed_port

from exporter.config.notify_model import Report as ReportConfig
from exporter.config.notify_model import ReportPeriod
from exporter.report.schedule import ReportScheduler


async def test_loop_runs_at_the_slot_and_survives_a_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A clock shifted so that the next minute boundary (the slot of "* * * * *") is 0.3 s away.
    now = time.time()
    offset = math.ceil(now / 60) * 60 - now - 0.3
    if offset < 0:
        offset += 60
    config = ReportConfig(
        name="every-minute",
        period=ReportPeriod.DAY,
        at="* * * * *",
        prometheus_url=f"http://127.0.0.1:{closed_port()}",  # nothing listens: the build fails
        directory=str(tmp_path / "out"),
    )
    counts: Counter[tuple[str, str]] = Counter()
    scheduler = ReportScheduler(lambda: (config,), lambda c, r: counts.update([(c, r)]),
                                clock=lambda: time.time() + offset)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="exporter.report"):
        scheduler.start()
        try:
            for _ in range(100):
                if counts:
                    break
                await asyncio.sleep(0.1)
        finally:
            await scheduler.stop()
    assert counts == {("directory", "error"): 1}
    record = next(r for r in caplog.records if r.getMessage() == "report not delivered; retrying at the next slot")
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["report"] == "every-minute" and "Connection refused" in fields["error"]
    assert fields["next_slot"].endswith(":00Z")
    assert not (tmp_path / "out").exists()
    # Stopped: a second stop is harmless.
    await scheduler.stop()
