"""Days left of the certificate an alert is about, read from the exporter's latest results.

Alertmanager's payload carries labels, not values: the exporter knows the served leaf of each
(target, address) and tells the days left at the moment the trap is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from exporter.certs.tiers import days_left
from exporter.notify.alerts import Alert
from exporter.store import Store


def days_left_from_store(store: Store, clock: Callable[[], float] = time.time) -> Callable[[Alert], float | None]:
    def lookup(alert: Alert) -> float | None:
        if not alert.target:
            return None
        targets, files = store.snapshot()
        for target, addresses in targets:
            if target.target != alert.target or (alert.protocol and target.protocol != alert.protocol):
                continue
            state = addresses.get(alert.address)
            if state is not None and state.result.report is not None:
                return days_left(state.result.report.leaf.not_after, clock())
        for fstate in files:
            for path, result in fstate.results.items():
                if path != alert.target or not result.certificates:
                    continue
                position = int(alert.position) if alert.position.isdigit() else 0
                if position < len(result.certificates):
                    return days_left(result.certificates[position].not_after, clock())
        return None

    return lookup
