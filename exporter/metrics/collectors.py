"""The custom collector over the results store: each scrape renders the latest snapshot, so
targets removed by a reload simply vanish, and days left are computed at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.config.model import Config, Target
from exporter.metrics import names as n
from exporter.metrics.families import Families, address_samples, file_samples
from exporter.results import ProbeResult
from exporter.store import Store


def target_labels(target: Target, address: str, owner: str) -> dict[str, str]:
    labels = {"target": target.target, "address": address, "protocol": target.protocol, "name": target.name,
              "owner": owner}
    labels.update(target.labels)
    return labels


class StoreCollector(Collector):
    def __init__(self, store: Store, config: Callable[[], Config], clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        config, now = self._config(), self._clock()
        targets, files = self._store.snapshot()
        f = Families()
        for state in targets:
            t = state.target
            profile = config.profile(t.profile)
            for address, a in state.addresses.items():
                owner = a.result.report.owner if a.result.report is not None else t.owner
                address_samples(f, target_labels(t, address, owner), a.result, profile, now, a.last_change)
            if state.addresses:
                base = {"target": t.target, "protocol": t.protocol, "name": t.name, "owner": t.owner, **dict(t.labels)}
                f.add(n.TARGET_DISTINCT_CERTS, base, state.distinct_certificates)
        for fstate in files:
            ft = fstate.target
            profile = config.profile(ft.profile)
            for path, result in fstate.results.items():
                labels = {"target": path, "protocol": "file", "name": ft.name if ft.name != ft.path else path,
                          "owner": ft.owner, **dict(ft.labels)}
                file_samples(f, labels, result, profile, now, fstate.last_change)
        yield from f


class ProbeCollector(Collector):
    """The output of one /probe request: no target labels, Prometheus adds them by relabelling."""

    def __init__(self, results: list[ProbeResult], target: Target, config: Config,
                 clock: Callable[[], float] = time.time) -> None:
        self._results, self._target, self._config, self._clock = results, target, config, clock

    def collect(self) -> Iterator[Metric]:
        f = Families()
        profile = self._config.profile(self._target.profile)
        now = self._clock()
        many = len(self._results) > 1
        fingerprints = set()
        for result in self._results:
            # With several addresses the address label tells them apart; with one it is noise.
            labels = {"address": result.address} if many else {}
            address_samples(f, labels, result, profile, now, None)
            if result.report is not None:
                fingerprints.add(result.report.leaf.fingerprint_sha256)
        f.add(n.TARGET_DISTINCT_CERTS, {}, len(fingerprints))
        yield from f
