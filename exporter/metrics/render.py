"""Render the store (for /metrics) and one probe's results (for /probe) as exposition text.

Each scrape renders the latest snapshot, so jobs removed by a reload simply vanish, and days
left are computed at scrape time. A location's lines that only change with a new result (or a
new version scan) are cached until that result is replaced.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial

from exporter.config.model import Config, Job, Profile, SeriesSet, Target
from exporter.metrics import names as n
from exporter.metrics.families import ClockLines, location_static
from exporter.metrics.text import Exposition
from exporter.pipeline import scan_key
from exporter.probers import PROBERS, Source
from exporter.results import Result
from exporter.scan import Scanner, ScanResult
from exporter.store import Entry, Store, distinct_certificates

log = logging.getLogger(__name__)

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
    version: int  # moves whenever the bytes change: a copy made at another version is stale
    build: Callable[[], list[bytes]]  # the header, then the lines (built only when asked for)

    @property
    def parts(self) -> list[bytes]:
        return self.build()


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


def _lines_of(name: str, hits: list[_Rendered]) -> list[bytes]:
    return [header(name), *(t for h in hits if (t := h.text.get(name)) is not None)]


def _fixed_parts(*parts: bytes) -> Callable[[], list[bytes]]:
    return lambda: list(parts)


class StoreRenderer:
    """Renders the store, caching each location's lines as bytes until its result changes.

    ``warm`` renders new results ahead of a scrape (the app calls it every few seconds), so the
    first scrape after a pass does not render ten thousand locations at once. Each family has a
    version that moves when any of its bytes change, so compressed copies can be reused.
    """

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
        self._lock = threading.Lock()  # scrapes and warm-ups run in worker threads: one at a time
        self._cache: dict[tuple[str, str], _Rendered] = {}
        self._counts: dict[str, int] = {}  # family -> locations with lines in it
        self._order: dict[str, None] = {}  # families in the order first seen
        self._pending: set[str] = set()  # families changed since versions last moved
        self._versions: dict[str, int] = {}
        self._next_version = 0
        self._job_cache: dict[str, _JobLine] = {}
        self._moving: dict[str, bytes] = {}  # the clock families of the last render
        self._distinct = b""

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
        return b"".join(part for family in self.render_families() for part in family.parts).decode()

    def warm(self) -> None:
        """Render the locations whose result changed since the last call (no body is built)."""
        with self._lock, _collector_paused():
            self._sync()

    def render_families(self) -> list[Family]:
        with self._lock, _collector_paused():
            return self._render_families()

    def _account(self, old: _Rendered | None, new: _Rendered | None) -> None:
        """Note the families whose lines for one location differ between two renders."""
        before = old.text if old is not None else {}
        after = new.text if new is not None else {}
        for name in before.keys() | after.keys():
            a, b = before.get(name), after.get(name)
            if a == b:
                continue
            self._pending.add(name)
            if a is None:
                self._counts[name] = self._counts.get(name, 0) + 1
                self._order.setdefault(name)
            elif b is None:
                self._counts[name] -= 1

    def _sync(self) -> list[tuple[Job, Profile, Mapping[str, Entry], list[_Rendered]]]:
        """Bring the per-location cache up to date with the store."""
        config = self._config()
        cache: dict[tuple[str, str], _Rendered] = {}
        out = []
        for job, entries in self._store.snapshot():
            profile = config.profile(job.profile)
            minimal = profile.series is SeriesSet.MINIMAL
            source = self._probers[job.source]
            hits = []
            for location, entry in entries.items():
                key = (job.key, location)
                scan = self._scan(job, location)
                old = hit = self._cache.get(key)
                if hit is None or hit.entry is not entry or hit.job is not job or hit.scan is not scan:
                    try:
                        hit = _render_location(source, job, location, entry, scan, profile, minimal)
                    except Exception as exc:  # one location's lines are lost for this scrape, never everyone's
                        self._failed(job, location, exc)
                        continue
                    self._account(old, hit)
                cache[key] = hit
                hits.append(hit)
            out.append((job, profile, entries, hits))
        for key in self._cache.keys() - cache.keys():  # gone: its families lose lines
            self._account(self._cache[key], None)
        self._cache = cache
        return out

    def _render_families(self) -> list[Family]:
        synced = self._sync()
        now = self._clock()
        clock_ex = Exposition()
        job_cache: dict[str, _JobLine] = {}
        distinct_lines = []
        every: list[_Rendered] = []
        for job, profile, entries, hits in synced:
            every.extend(hits)
            if profile.series is SeriesSet.MINIMAL:
                own = Exposition()
                for hit in hits:
                    for clock in hit.clocks:
                        clock.render(own, profile, now)
                clock_ex.extend({k: v for k, v in own.lines.items() if k in MINIMAL})
            else:
                for hit in hits:
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
        self._job_cache = job_cache
        # The families that move with the clock: new bytes on most scrapes (days left), or rarely (tiers).
        moving = {name: "".join(more).encode() for name, more in clock_ex.lines.items()}
        if distinct_lines:
            moving[n.TARGET_DISTINCT_CERTS] = "".join(distinct_lines).encode()
        for name in moving.keys() | self._moving.keys():
            if moving.get(name) != self._moving.get(name):
                self._pending.add(name)
        self._moving = moving
        for name in self._pending:
            self._next_version += 1
            self._versions[name] = self._next_version
        self._pending.clear()
        v = self._versions
        families = [
            Family(name, v[name], partial(_lines_of, name, every)) for name in self._order if self._counts[name] > 0
        ]
        families += [Family(name, v[name], _fixed_parts(header(name), text)) for name, text in moving.items()]
        return families


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a render runs.

    A render holds tens of thousands of short-lived containers (the store's snapshot, one list per
    job); a collection during it promotes them, and every second or third scrape then paid a full
    collection over every object of the process (0.2 s at 10,000 endpoints). They are freed by
    reference counting as soon as the render ends, so the pause leaves nothing behind.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _render_location(
    source: Source,
    job: Job,
    location: str,
    entry: Entry,
    scan: ScanResult | None,
    profile: Profile,
    minimal: bool,
) -> _Rendered:
    own = Exposition()
    labels_for = partial(_labels, source, job, location)
    clocks = location_static(own, labels_for, job.owner, entry.result, entry.last_change, profile, scan)
    text = {k: "".join(v).encode() for k, v in own.lines.items() if not minimal or k in MINIMAL}
    return _Rendered(entry, job, scan, text, clocks)


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
    if profile.series is SeriesSet.MINIMAL:
        for metric in [m for m in ex.lines if m not in MINIMAL]:
            del ex.lines[metric]
    return ex.render()
