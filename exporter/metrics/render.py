"""Render the store (for /metrics) and one probe's results (for /probe) as exposition text.

Each scrape renders the latest snapshot, so jobs removed by a reload simply vanish, and days
left are computed at scrape time. A location's lines that only change with a new result (or a
new version scan) are cached until that result is replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from exporter.config.model import Config, Job, Target
from exporter.metrics import names as n
from exporter.metrics.families import ClockLines, location_static
from exporter.metrics.text import Exposition
from exporter.pipeline import scan_key
from exporter.probers import PROBERS, Source
from exporter.results import Result
from exporter.scan import Scanner, ScanResult
from exporter.store import Entry, Store, distinct_certificates

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Rendered:
    entry: Entry  # the cache is valid while the store holds this very entry ...
    job: Job  # ... for this very job configuration ...
    scan: ScanResult | None  # ... and this very scan
    text: dict[str, str]  # metric name -> this location's lines of it, joined
    clocks: list[ClockLines]


@dataclass(slots=True)
class _JobLine:
    job: Job
    distinct: int
    text: str


def _probe_labels(fixed: dict[str, str], target_owner: str, given: bool, owner: str) -> dict[str, str]:
    """/probe labels: `owner` only when the request gave one or a certificate rule chose another."""
    labels = dict(fixed)
    if given or owner != target_owner:
        labels["owner"] = owner
    if owner != target_owner and target_owner:
        labels["server_owner"] = target_owner
    return labels


def _labels(source: Source, job: Job, location: str, owner: str) -> dict[str, str]:
    return source.labels(job, location, owner)


class StoreRenderer:
    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        *,
        scanner: Scanner | None = None,
        probers: Mapping[str, Source] | None = None,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self._on_error = on_error  # counts tls_exporter_errors_total{step="render"}
        self._store = store
        self._config = config
        self._scanner = scanner
        self._probers = probers or PROBERS
        self._clock = clock
        self._cache: dict[tuple[str, str], _Rendered] = {}
        self._job_cache: dict[str, _JobLine] = {}

    def _scan(self, job: Job, location: str) -> ScanResult | None:
        if self._scanner is None or not isinstance(job, Target):
            return None
        return self._scanner.latest(scan_key(job, location))

    def _failed(self, job: Job, location: str, exc: Exception) -> None:
        log.error(
            "series of a job not rendered in this scrape",
            extra={"fields": {"job": job.key, "location": location, "error": f"{type(exc).__name__}: {exc}"}},
        )
        if self._on_error is not None:
            self._on_error()

    def render(self) -> str:
        config, now = self._config(), self._clock()
        ex = Exposition()
        cache: dict[tuple[str, str], _Rendered] = {}
        job_cache: dict[str, _JobLine] = {}
        distinct_lines = []
        for job, entries in self._store.snapshot():
            profile = config.profile(job.profile)
            source = self._probers[job.source]
            for location, entry in entries.items():
                key = (job.key, location)
                scan = self._scan(job, location)
                hit = self._cache.get(key)
                try:
                    if hit is None or hit.entry is not entry or hit.job is not job or hit.scan is not scan:
                        own = Exposition()
                        labels_for = partial(_labels, source, job, location)
                        result, changed = entry.result, entry.last_change
                        clocks = location_static(own, labels_for, job.owner, result, changed, profile, scan)
                        hit = _Rendered(entry, job, scan, {k: "".join(v) for k, v in own.lines.items()}, clocks)
                        for text in hit.text.values():
                            text.encode()  # what cannot be sent fails here, for this location only
                    ex.extend_text(hit.text)
                    for clock in hit.clocks:
                        clock.render(ex, profile, now)
                except Exception as exc:  # one location's lines are lost for this scrape, never everyone's
                    self._failed(job, location, exc)
                    continue
                cache[key] = hit
            if entries and isinstance(job, Target):
                distinct = distinct_certificates(entries)
                line = self._job_cache.get(job.key)
                if line is None or line.job is not job or line.distinct != distinct:
                    base = {"target": job.target, "protocol": job.protocol, "name": job.name, "owner": job.owner}
                    if job.label_server_name:
                        base["server_name"] = job.server_name
                    own = Exposition()
                    own.add(n.TARGET_DISTINCT_CERTS, {**base, **dict(job.labels)}, distinct)
                    line = _JobLine(job, distinct, own.lines[n.TARGET_DISTINCT_CERTS][0])
                job_cache[job.key] = line
                distinct_lines.append(line.text)
        if distinct_lines:
            ex.lines.setdefault(n.TARGET_DISTINCT_CERTS, []).extend(distinct_lines)
        self._cache, self._job_cache = cache, job_cache
        return ex.render()


def probe_text(
    results: list[Result],
    job: Job,
    config: Config,
    *,
    scanner: Scanner | None = None,
    now: float | None = None,
    owner: bool = False,
    name: bool = False,
) -> str:
    """The output of one /probe request: no target labels, Prometheus adds them by relabelling.

    Two exceptions: the `owner` of a leaf that a ``certificate_owners`` rule matches (certificate-based
    routing must survive service discovery), and `owner`/`name` when the request passed them.
    """
    ex = Exposition()
    profile = config.profile(job.profile)
    now = time.time() if now is None else now
    many = len(results) > 1
    fingerprints = set()
    for result in results:
        # With several addresses the address label tells them apart; with one it is noise.
        fixed = {"address": result.location} if many else {}
        if name:
            fixed["name"] = job.name
        scan = scanner.latest(scan_key(job, result.location)) if scanner and isinstance(job, Target) else None
        labels_for = partial(_probe_labels, fixed, job.owner, owner)
        for clock in location_static(ex, labels_for, job.owner, result, (), profile, scan):
            clock.render(ex, profile, now)
        if result.report is not None:
            fingerprints.add(result.report.leaf.fingerprint_sha256)
    ex.add(n.TARGET_DISTINCT_CERTS, {}, len(fingerprints))
    return ex.render()
