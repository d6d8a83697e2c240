"""The discovery series: per scan, its last run by handshake outcome, when it ended and how long
it took, and its scope; read from the ``Discovery`` snapshot at each scrape (a custom collector,
so a scan removed by a reload vanishes from the next scrape with no bookkeeping)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter.config.discovery import Scan
from exporter.metrics import names as n
from exporter.sources.discovered import Discovery
from exporter.support.errors import Outcome


class DiscoveryCollector(Collector):
    def __init__(self, discovery: Discovery, scans: Callable[[], Sequence[Scan]]) -> None:
        self.discovery, self.scans = discovery, scans

    def collect(self) -> Iterator[GaugeMetricFamily]:
        label = ["discovery"]
        endpoints = GaugeMetricFamily(n.DISCOVERY_ENDPOINTS, n.HELP[n.DISCOVERY_ENDPOINTS], labels=[*label, "outcome"])
        last_run = GaugeMetricFamily(n.DISCOVERY_LAST_RUN, n.HELP[n.DISCOVERY_LAST_RUN], labels=label)
        duration = GaugeMetricFamily(n.DISCOVERY_RUN_DURATION, n.HELP[n.DISCOVERY_RUN_DURATION], labels=label)
        success = GaugeMetricFamily(n.DISCOVERY_RUN_SUCCESS, n.HELP[n.DISCOVERY_RUN_SUCCESS], labels=label)
        scope = GaugeMetricFamily(n.DISCOVERY_SCOPE, n.HELP[n.DISCOVERY_SCOPE], labels=label)
        interval = GaugeMetricFamily(n.DISCOVERY_INTERVAL, n.HELP[n.DISCOVERY_INTERVAL], labels=label)
        snapshot = self.discovery.snapshot()
        for scan in self.scans():
            state = snapshot.get(scan.name)
            run = None if state is None else state.last_run
            # Before the first run (or after a failed one) the whole scope; then the pairs it tried.
            scope.add_metric([scan.name], run.scope if run is not None and run.ok else scan.scope)
            interval.add_metric([scan.name], scan.interval)
            if run is None:
                continue
            for outcome in Outcome:
                endpoints.add_metric([scan.name, outcome.value], run.outcomes.get(outcome.value, 0))
            last_run.add_metric([scan.name], run.finished)
            duration.add_metric([scan.name], run.duration)
            success.add_metric([scan.name], 1 if run.ok else 0)
        yield from (endpoints, last_run, duration, success, scope, interval)
