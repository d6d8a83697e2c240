"""Days left of the certificate an alert is about, read from the exporter's latest results.

Alertmanager's payload carries labels, not values: the exporter knows the served leaf of each
(target, address) and tells the days left at the moment the trap is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from exporter.certs.tiers import days_left
from exporter.notify.alerts import Alert
from exporter.schedule.store import Store


def days_left_from_store(store: Store, clock: Callable[[], float] = time.time) -> Callable[[Alert], float | None]:
    def lookup(alert: Alert) -> float | None:
        if not alert.target:
            return None
        for job, entries in store.snapshot():
            if alert.protocol and job.protocol != alert.protocol:
                continue
            # A served chain's location is its address label; a stored certificate's, its path (the target).
            location = alert.address if job.served else alert.target
            entry = entries.get(location)
            if entry is None or entry.result.report is None or job.location_target(location) != alert.target:
                continue
            chain = entry.result.report.chain
            position = int(alert.position) if alert.position.isdigit() and not job.served else 0
            if position < len(chain):
                return days_left(chain[position].not_after, clock())
        return None

    return lookup
