"""The exporter's own health: build, configuration reloads, targets, probes run, shard; and
client_python's process_* and python_* collectors, as every Prometheus exporter has them."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from exporter import __version__
from exporter.metrics import names as n
from exporter.results import Step
from exporter.support.errors import Outcome

# No `_created` series for counters and histograms, as the Go exporters have none: a series per
# counter child that only says when the process met it (client_python's switch is process-wide).
disable_created_metrics()  # type: ignore[no-untyped-call]  # (client_python leaves it untyped)

# channel: snmp (traps), email and directory (report deliveries); result: sent or error.
NOTIFICATION_SERIES = tuple((c, r) for c in ("snmp", "email", "directory") for r in ("sent", "error"))
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SelfMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.build_info = Gauge(n.BUILD_INFO, n.HELP[n.BUILD_INFO], ["version"], registry=registry)
        self.build_info.labels(__version__).set(1)
        self.reload_ok = Gauge(n.CONFIG_RELOAD_OK, n.HELP[n.CONFIG_RELOAD_OK], registry=registry)
        self.reload_timestamp = Gauge(n.CONFIG_RELOAD_TIMESTAMP, n.HELP[n.CONFIG_RELOAD_TIMESTAMP], registry=registry)
        self.targets = Gauge(n.TARGETS, n.HELP[n.TARGETS], registry=registry)
        self.probes = Counter(n.PROBES, n.HELP[n.PROBES], ["outcome"], registry=registry)
        for outcome in Outcome:  # every outcome from the start, so rate() works on the first failure
            self.probes.labels(outcome.value)
        self.probe_duration = Histogram(
            n.EXPORTER_PROBE_DURATION, n.HELP[n.EXPORTER_PROBE_DURATION], buckets=PROBE_BUCKETS, registry=registry
        )
        self.errors = Counter(n.EXPORTER_ERRORS, n.HELP[n.EXPORTER_ERRORS], ["step"], registry=registry)
        for step in Step:
            self.errors.labels(step.value)
        self.notifications = Counter(n.NOTIFICATIONS, n.HELP[n.NOTIFICATIONS], ["channel", "result"], registry=registry)
        for channel, result in NOTIFICATION_SERIES:
            self.notifications.labels(channel, result)
        self.shard = Gauge(n.SHARD, n.HELP[n.SHARD], ["index", "count"], registry=registry)
        self.set_shard(0, 1)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

    def set_shard(self, index: int, count: int) -> None:
        self.shard.clear()
        self.shard.labels(str(index), str(count)).set(1)

    def error(self, step: Step) -> None:
        self.errors.labels(step.value).inc()

    def count_notification(self, channel: str, result: str) -> None:
        self.notifications.labels(channel, result).inc()

    def observe(self, outcome: str, duration: float) -> None:
        self.probes.labels(outcome).inc()
        self.probe_duration.observe(duration)
