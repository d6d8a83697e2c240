"""Render the results store (for /metrics) and one probe's results (for /probe) as exposition text.

Each scrape renders the latest snapshot, so targets removed by a reload simply vanish, and days
left are computed at scrape time. An address's lines that only change with a new probe result
are cached until that result is replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from exporter.config.model import Config, Target
from exporter.metrics import names as n
from exporter.metrics.families import ClockLines, address_lines, address_static, file_lines
from exporter.metrics.text import Exposition
from exporter.results import ProbeResult
from exporter.store import Store, distinct_certificates


def target_labels(target: Target, address: str, owner: str) -> dict[str, str]:
    labels = {
        "target": target.target,
        "address": address,
        "protocol": target.protocol,
        "name": target.name,
        "owner": owner,
    }
    labels.update(target.labels)
    return labels


@dataclass(slots=True)
class _Rendered:
    result: ProbeResult  # the cache is valid while the store holds this very result ...
    target: Target  # ... for this very target configuration
    last_change: float | None
    text: dict[str, str]  # metric name -> this address's lines of it, joined
    clock: ClockLines | None


@dataclass(slots=True)
class _TargetLine:
    target: Target
    distinct: int
    text: str


class StoreRenderer:
    def __init__(self, store: Store, config: Callable[[], Config], clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._cache: dict[tuple[str, str], _Rendered] = {}
        self._target_cache: dict[str, _TargetLine] = {}

    def render(self) -> str:
        config, now = self._config(), self._clock()
        targets, files = self._store.snapshot()
        ex = Exposition()
        cache: dict[tuple[str, str], _Rendered] = {}
        target_cache: dict[str, _TargetLine] = {}
        distinct_lines = []
        for t, addresses in targets:
            profile = config.profile(t.profile)
            for address, a in addresses.items():
                key = (t.key, address)
                hit = self._cache.get(key)
                if hit is None or hit.result is not a.result or hit.target is not t or hit.last_change != a.last_change:
                    owner = a.result.report.owner if a.result.report is not None else t.owner
                    own = Exposition()
                    clock = address_static(own, target_labels(t, address, owner), a.result, a.last_change)
                    hit = _Rendered(a.result, t, a.last_change, {k: "".join(v) for k, v in own.lines.items()}, clock)
                cache[key] = hit
                ex.extend_text(hit.text)
                if hit.clock is not None:
                    hit.clock.render(ex, profile, now)
            if addresses:
                distinct = distinct_certificates(addresses)
                line = self._target_cache.get(t.key)
                if line is None or line.target is not t or line.distinct != distinct:
                    base = {
                        "target": t.target,
                        "protocol": t.protocol,
                        "name": t.name,
                        "owner": t.owner,
                        **dict(t.labels),
                    }
                    own = Exposition()
                    own.add(n.TARGET_DISTINCT_CERTS, base, distinct)
                    line = _TargetLine(t, distinct, own.lines[n.TARGET_DISTINCT_CERTS][0])
                target_cache[t.key] = line
                distinct_lines.append(line.text)
        if distinct_lines:
            ex.lines.setdefault(n.TARGET_DISTINCT_CERTS, []).extend(distinct_lines)
        self._cache, self._target_cache = cache, target_cache
        for fstate in files:
            ft = fstate.target
            profile = config.profile(ft.profile)
            for path, result in fstate.results.items():
                labels = {
                    "target": path,
                    "protocol": "file",
                    "name": ft.name if ft.name != ft.path else path,
                    "owner": ft.owner,
                    **dict(ft.labels),
                }
                file_lines(ex, labels, result, profile, now, fstate.last_change)
        return ex.render()


def probe_text(results: list[ProbeResult], target: Target, config: Config, now: float | None = None) -> str:
    """The output of one /probe request: no target labels, Prometheus adds them by relabelling."""
    ex = Exposition()
    profile = config.profile(target.profile)
    now = time.time() if now is None else now
    many = len(results) > 1
    fingerprints = set()
    for result in results:
        # With several addresses the address label tells them apart; with one it is noise.
        address_lines(ex, {"address": result.address} if many else {}, result, profile, now, None)
        if result.report is not None:
            fingerprints.add(result.report.leaf.fingerprint_sha256)
    ex.add(n.TARGET_DISTINCT_CERTS, {}, len(fingerprints))
    return ex.render()
