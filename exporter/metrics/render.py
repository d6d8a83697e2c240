"""Render the store (for /metrics) and one probe's results (for /probe) as exposition text.

Each scrape renders the latest snapshot, so jobs removed by a reload simply vanish, and days
left are computed at scrape time. A location's lines that only change with a new result (or a
new version scan) are cached until that result is replaced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from exporter.config.model import Config, Job, SeriesSet, Target
from exporter.metrics import names as n
from exporter.metrics.families import ClockLines, location_static
from exporter.metrics.text import Exposition
from exporter.pipeline import scan_key
from exporter.probers import PROBERS, Source
from exporter.results import Result
from exporter.scan import Scanner, ScanResult
from exporter.store import Entry, Store, distinct_certificates

# `series: minimal`: about 15 series per endpoint, like blackbox_exporter's; no per-version,
# per chain certificate, tier, key, signature, OCSP-staple, score or outcome-state series.
MINIMAL: frozenset[str] = frozenset(
    {
        n.PROBE_SUCCESS,
        n.PROBE_DURATION,
        n.PROBE_TIMESTAMP,
        n.FILE_OUTCOME,
        n.CERT_NOT_AFTER,
        n.CERT_NOT_BEFORE,
        n.CERT_DAYS_LEFT,
        n.CERT_INFO,
        n.CERT_HOSTNAME_MATCH,
        n.CERT_EXPECTED_MATCH,
        n.CHAIN_VALID,
        n.CHAIN_ISSUE,
        n.CHAIN_DAYS_LEFT,
        n.CONNECTION_INFO,
        n.OCSP_STATUS,
        n.SECURITY_GRADE,
        n.ASSESSMENT_ERROR,
        n.TARGET_DISTINCT_CERTS,
    }
)


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family of a /metrics body: its HELP and TYPE, then its lines, as bytes."""

    name: str
    parts: list[bytes]
    version: int  # moves whenever the bytes change: a copy made at another version is stale


@dataclass(slots=True)
class _Rendered:
    entry: Entry  # the cache is valid while the store holds this very entry ...
    job: Job  # ... for this very job configuration ...
    scan: ScanResult | None  # ... and this very scan
    text: dict[str, bytes]  # metric name -> this location's lines of it, joined and encoded once
    clocks: list[ClockLines]


@dataclass(slots=True)
class _JobLine:
    job: Job
    distinct: int
    text: str


_HEADERS: dict[str, bytes] = {}


def header(name: str) -> bytes:
    h = _HEADERS.get(name)
    if h is None:
        h = _HEADERS[name] = f"# HELP {name} {n.HELP[name]}\n# TYPE {name} gauge\n".encode()
    return h


def _fixed(labels: dict[str, str], owner: str) -> dict[str, str]:
    return dict(labels)


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
    ) -> None:
        self._store = store
        self._config = config
        self._scanner = scanner
        self._probers = probers or PROBERS
        self._clock = clock
        self._cache: dict[tuple[str, str], _Rendered] = {}
        self._job_cache: dict[str, _JobLine] = {}
        self._distinct = b""
        self._versions: dict[str, int] = {}
        self._next_version = 0
        self._lock = threading.Lock()  # scrapes render in worker threads: one at a time

    def _scan(self, job: Job, location: str) -> ScanResult | None:
        if self._scanner is None or not isinstance(job, Target):
            return None
        return self._scanner.latest(scan_key(job, location))

    def render(self) -> str:
        return b"".join(part for family in self.render_families() for part in family.parts).decode()

    def render_families(self) -> list[Family]:
        with self._lock:
            return self._render_families()

    def _render_families(self) -> list[Family]:
        config, now = self._config(), self._clock()
        lines: dict[str, list[bytes]] = {}
        changed: set[str] = set()
        clock_ex = Exposition()
        cache: dict[tuple[str, str], _Rendered] = {}
        job_cache: dict[str, _JobLine] = {}
        distinct_lines = []
        for job, entries in self._store.snapshot():
            profile = config.profile(job.profile)
            minimal = profile.series is SeriesSet.MINIMAL
            source = self._probers[job.source]
            for location, entry in entries.items():
                key = (job.key, location)
                scan = self._scan(job, location)
                old = hit = self._cache.get(key)
                if hit is None or hit.entry is not entry or hit.job is not job or hit.scan is not scan:
                    hit = _render_location(source, job, location, entry, scan, minimal)
                    _changes(old, hit, changed)
                cache[key] = hit
                for name, chunk in hit.text.items():
                    (lines.get(name) or lines.setdefault(name, [header(name)])).append(chunk)
                if minimal:
                    own = Exposition()
                    for clock in hit.clocks:
                        clock.render(own, profile, now)
                    clock_ex.extend({k: v for k, v in own.lines.items() if k in MINIMAL})
                else:
                    for clock in hit.clocks:
                        clock.render(clock_ex, profile, now)
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
        for key in self._cache.keys() - cache.keys():  # gone: its families lose lines
            changed.update(self._cache[key].text)
        self._cache, self._job_cache = cache, job_cache
        changed.update(clock_ex.lines)  # they move with the clock
        text = "".join(distinct_lines).encode()
        if text != self._distinct:
            changed.add(n.TARGET_DISTINCT_CERTS)
            self._distinct = text
        for name in changed:
            self._next_version += 1
            self._versions[name] = self._next_version
        v = self._versions
        families = [Family(name, parts, v[name]) for name, parts in lines.items()]
        families += [
            Family(name, [header(name), "".join(more).encode()], v[name]) for name, more in clock_ex.lines.items()
        ]
        if distinct_lines:
            families.append(
                Family(n.TARGET_DISTINCT_CERTS, [header(n.TARGET_DISTINCT_CERTS), text], v[n.TARGET_DISTINCT_CERTS])
            )
        return families


def _render_location(
    source: Source, job: Job, location: str, entry: Entry, scan: ScanResult | None, minimal: bool
) -> _Rendered:
    own = Exposition()
    labels_for = partial(_labels, source, job, location)
    clocks = location_static(own, labels_for, job.owner, entry.result, entry.last_change, scan)
    text = {k: "".join(v).encode() for k, v in own.lines.items() if not minimal or k in MINIMAL}
    return _Rendered(entry, job, scan, text, clocks)


def _changes(old: _Rendered | None, new: _Rendered, changed: set[str]) -> None:
    """The families whose lines for this location differ between two renders."""
    if old is None:
        changed.update(new.text)
        return
    for name in old.text.keys() | new.text.keys():
        if old.text.get(name) != new.text.get(name):
            changed.add(name)


def probe_text(
    results: list[Result], job: Job, config: Config, *, scanner: Scanner | None = None, now: float | None = None
) -> str:
    """The output of one /probe request: no target labels, Prometheus adds them by relabelling."""
    ex = Exposition()
    profile = config.profile(job.profile)
    now = time.time() if now is None else now
    many = len(results) > 1
    fingerprints = set()
    for result in results:
        # With several addresses the address label tells them apart; with one it is noise.
        fixed = {"address": result.location} if many else {}
        scan = scanner.latest(scan_key(job, result.location)) if scanner and isinstance(job, Target) else None
        for clock in location_static(ex, partial(_fixed, fixed), job.owner, result, (), scan):
            clock.render(ex, profile, now)
        if result.report is not None:
            fingerprints.add(result.report.leaf.fingerprint_sha256)
    ex.add(n.TARGET_DISTINCT_CERTS, {}, len(fingerprints))
    if profile.series is SeriesSet.MINIMAL:
        for name in [name for name in ex.lines if name not in MINIMAL]:
            del ex.lines[name]
    return ex.render()
