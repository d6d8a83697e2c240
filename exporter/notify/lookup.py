"""Days left of the certificate an alert is about, read from the exporter's latest results.

Alertmanager's payload carries labels, not values: the exporter knows the served leaf of each
(target, address) and tells the days left at the moment the trap is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from exporter.certs.tiers import days_left
from exporter.config.model import Target
from exporter.notify.alerts import Alert
from exporter.store import Store


def days_left_from_store(store: Store, clock: Callable[[], float] = time.time) -> Callable[[Alert], float | None]:
    def lookup(alert: Alert) -> float | None:
        if not alert.target:
            return None
        for job, entries in store.snapshot():
            if isinstance(job, Target):
                if job.target != alert.target or (alert.protocol and job.protocol != alert.protocol):
                    continue
                entry = entries.get(alert.address)
                if entry is not None and entry.result.report is not None:
                    return days_left(entry.result.report.leaf.not_after, clock())
                continue
            entry = entries.get(alert.target)  # a file: its path is the target label
            if entry is None or entry.result.report is None:
                continue
            chain = entry.result.report.chain
            position = int(alert.position) if alert.position.isdigit() else 0
            if position < len(chain):
                return days_left(chain[position].not_after, clock())
        return None

    return lookup
