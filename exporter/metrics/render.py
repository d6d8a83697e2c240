"""Render the store (for /metrics) and one probe's results (for /probe) as exposition text.

Each scrape renders the latest snapshot, so jobs removed by a reload simply vanish, and days
left are computed at scrape time. A location's lines that only change with a new result (or a
new version scan) are kept until that result is replaced: compressed, by groups of locations in
the order they were first rendered (see ``_Group``), so that 10,000 endpoints hold about 4 MB of
compressed lines instead of 70 MB of text, and a scrape compresses only the groups that changed.
A scrape without gzip inflates the groups (about 0.1 s at 10,000 endpoints); Prometheus always
asks for gzip.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import operator
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial

from exporter.config.model import Config, Job, Profile, SeriesSet
from exporter.judge.scan import Scanner, ScanResult
from exporter.metrics import gzipped
from exporter.metrics import names as n
from exporter.metrics.families import ClockLines, location_static
from exporter.metrics.text import Exposition
from exporter.results import Result
from exporter.schedule.store import Entry, Store, distinct_certificates
from exporter.sources import PROBERS, Source

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
        # Only with the profile's dane / caa: asked for, so kept.
        n.DANE_TLSA_RECORDS,
        n.DANE_MATCH,
        n.DANE_DNSSEC_VALIDATED,
        n.CAA_PERMITS_ISSUER,
    }
)


GROUP_SIZE = 256  # locations per group: 40 groups at 10,000 endpoints
Key = tuple[str, str]  # (job key, location)


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family of a /metrics body: its HELP and TYPE, then its lines; as bytes or as
    compressed blocks (each made once and reused while its lines stay the same)."""

    name: str
    parts: Callable[[], list[gzipped.Chunk]]  # plain text: bytes, and blocks to inflate when written
    blocks: Callable[[], list[gzipped.Block]]


class _Piece:
    """One family's lines of one sealed group, compressed, with each member's length and hash
    (slot order) so that a changed member is found without inflating the piece."""

    __slots__ = ("block", "hashes", "lengths")

    def __init__(self, block: gzipped.Block, lengths: array[int], hashes: array[int]) -> None:
        self.block, self.lengths, self.hashes = block, lengths, hashes


class _Group:
    """Up to GROUP_SIZE locations, in the order they were first rendered.

    Open, it keeps its members' lines as bytes; once full (or unchanged between two warm-ups) it is
    sealed: each family's lines become one compressed piece, and a member's new lines are spliced
    into the pieces they change. A pass probes locations in the same order every interval, so
    results land in few groups between two scrapes, and a scrape compresses only those.
    """

    __slots__ = ("changes", "keys", "pieces", "plain", "version")

    def __init__(self) -> None:
        self.keys: list[Key | None] = []  # slot -> location (None: gone)
        self.plain: list[dict[str, bytes]] | None = []  # open: slot -> the member's lines per family
        self.pieces: dict[str, _Piece] = {}  # sealed: family -> its piece
        self.changes: dict[int, dict[str, bytes]] = {}  # sealed: slot -> new lines not yet spliced in
        self.version = 0  # open: moves with every change (its blocks are cached per version)

    def live(self) -> bool:
        return any(k is not None for k in self.keys)


@dataclass(slots=True)
class _Rendered:
    entry: Entry  # the lines are valid while the store holds this very entry ...
    job: Job  # ... for this very job configuration ...
    scan: ScanResult | None  # ... and this very scan
    clocks: list[ClockLines]
    group: _Group
    slot: int


@dataclass(slots=True)
class _JobLine:
    job: Job
    entries: Mapping[str, Entry]  # the store replaces the mapping on every record: same object, same count
    distinct: int
    text: str


_HEADERS: dict[str, bytes] = {}
_HEADER_BLOCKS: dict[str, gzipped.Block] = {}


def header(name: str) -> bytes:
    h = _HEADERS.get(name)
    if h is None:
        h = _HEADERS[name] = f"# HELP {name} {n.HELP[name]}\n# TYPE {name} gauge\n".encode()
    return h


def _header_block(name: str) -> gzipped.Block:
    b = _HEADER_BLOCKS.get(name)
    if b is None:
        b = _HEADER_BLOCKS[name] = gzipped.block(header(name))
    return b


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


def _split(data: bytes, lengths: array[int]) -> list[bytes]:
    out, at = [], 0
    for size in lengths:
        out.append(data[at : at + size])
        at += size
    return out


class StoreRenderer:
    """Renders the store, keeping each location's lines, compressed by groups, until its result changes.

    ``warm`` renders new results ahead of a scrape (the app calls it every few seconds) and
    compresses the groups they changed, so the first scrape after a pass neither renders nor
    compresses ten thousand locations at once. Only the clock families (days left) are written
    afresh by every scrape.
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
        group_size: int = GROUP_SIZE,
    ) -> None:
        self._on_error = on_error  # counts tls_exporter_errors_total{step="render"}
        self._store = store
        self._config = config
        self._scanner = scanner
        self._probers = probers or PROBERS
        self._clock = clock
        self._group_size = group_size
        self._lock = threading.Lock()  # scrapes and warm-ups run in worker threads: one at a time
        self._cache: dict[Key, _Rendered] = {}
        self._groups: list[_Group] = []
        self._open = self._new_group()
        self._open_seen = -1  # the open group's version at the last warm-up
        self._open_blocks: dict[str, tuple[int, gzipped.Block]] = {}
        self._order: dict[str, None] = {}  # families in the order first seen
        self._job_cache: dict[str, _JobLine] = {}
        self._moving: dict[str, tuple[bytes, gzipped.Block | None]] = {}  # the clock families of the last render
        self._tier_parts: tuple[list[str], bytes] | None = None  # the tier lines of the last render
        self.compressed = 0  # blocks compressed (for tests and the bench)

    def _new_group(self) -> _Group:
        group = _Group()
        self._groups.append(group)
        return group

    def _scan(self, job: Job, location: str) -> ScanResult | None:
        return None if self._scanner is None else self._scanner.latest_for(job, location)

    def _failed(self, job: Job, location: str, exc: Exception) -> None:
        log.error(
            "series of a job not rendered in this scrape",
            extra={"fields": {"job": job.key, "location": location, "error": f"{type(exc).__name__}: {exc}"}},
        )
        if self._on_error is not None:
            self._on_error()

    def render(self) -> str:
        families = self.render_families()
        return b"".join(gzipped.chunk_data(c) for family in families for c in family.parts()).decode()

    def warm(self) -> None:
        """Render the locations whose result changed since the last call and compress the groups
        they changed (no body is built)."""
        with self._lock, _collector_paused():
            self._sync()
            if self._open.keys and (len(self._open.keys) >= self._group_size or self._open.version == self._open_seen):
                self._seal(self._open)  # full, or nothing new since the last warm-up: the pass moved on
                self._open = self._new_group()
            self._open_seen = self._open.version
            self._splice_all()

    def forget(self) -> None:
        """Drop every rendered line: the next render starts afresh."""
        with self._lock:
            self._cache.clear()
            self._groups.clear()
            self._open = self._new_group()
            self._open_blocks.clear()

    def render_families(self) -> list[Family]:
        with self._lock, _collector_paused():
            return self._render_families()

    # --- placing a location's lines -------------------------------------------------------------

    def _put(self, key: Key, old: _Rendered | None, text: dict[str, bytes]) -> tuple[_Group, int]:
        """Store ``text`` as the lines of ``key``: in its group if it has one, else in the open group."""
        if old is not None and old.group.keys[old.slot] == key:
            group, slot = old.group, old.slot
        else:
            group, slot = self._open, len(self._open.keys)
            if slot >= self._group_size:
                self._seal(group)
                group = self._open = self._new_group()
                slot = 0
            group.keys.append(key)
            assert group.plain is not None
            group.plain.append({})
        for name in text:
            if name not in self._order:
                self._order[name] = None
        if group.plain is not None:
            group.plain[slot] = text
            group.version += 1
        else:
            group.changes[slot] = text
        return group, slot

    def _drop(self, old: _Rendered) -> None:
        group, slot = old.group, old.slot
        group.keys[slot] = None
        if group.plain is not None:
            group.plain[slot] = {}
            group.version += 1
        else:
            group.changes[slot] = {}

    def _seal(self, group: _Group) -> None:
        """Turn an open group's lines into one compressed piece per family."""
        plain = group.plain or []
        group.plain = None
        names = {name for text in plain for name in text}
        for name in names:
            parts = [text.get(name, b"") for text in plain]
            self._set_piece(group, name, parts)

    def _set_piece(self, group: _Group, name: str, parts: list[bytes]) -> None:
        data = b"".join(parts)
        if not data:
            group.pieces.pop(name, None)
            return
        self.compressed += 1
        group.pieces[name] = _Piece(gzipped.block(data), array("I", map(len, parts)), array("q", map(hash, parts)))

    def _splice_all(self) -> None:
        for group in [g for g in self._groups if g.changes]:
            self._splice(group)

    def _splice(self, group: _Group) -> None:
        """Apply a sealed group's pending changes to the pieces they change."""
        changes, group.changes = group.changes, {}
        size = len(group.keys)
        for name in group.pieces.keys() | {name for text in changes.values() for name in text}:
            piece = group.pieces.get(name)
            moved = [(slot, text.get(name, b"")) for slot, text in changes.items()]
            if piece is not None:  # only the members whose lines of this family differ
                moved = [
                    (slot, line)
                    for slot, line in moved
                    if piece.lengths[slot] != len(line) or piece.hashes[slot] != hash(line)
                ]
            if not moved:
                continue
            parts = _split(gzipped.inflate(piece.block), piece.lengths) if piece is not None else [b""] * size
            for slot, line in moved:
                parts[slot] = line
            self._set_piece(group, name, parts)
        if not group.live():
            self._groups.remove(group)

    def _sync(self) -> list[tuple[Job, Profile, Mapping[str, Entry], list[_Rendered]]]:
        """Bring the rendered lines up to date with the store."""
        config = self._config()
        cache: dict[Key, _Rendered] = {}
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
                        text, clocks = _render_location(source, job, location, entry, scan, profile, minimal)
                    except Exception as exc:  # one location's lines are lost for this scrape, never everyone's
                        self._failed(job, location, exc)
                        continue
                    group, slot = self._put(key, old, text)
                    hit = _Rendered(entry, job, scan, clocks, group, slot)
                cache[key] = hit
                hits.append(hit)
            out.append((job, profile, entries, hits))
        for key in self._cache.keys() - cache.keys():  # gone (or failed to render): its lines go
            self._drop(self._cache[key])
        self._cache = cache
        return out

    # --- the body -------------------------------------------------------------------------------

    def _open_block(self, name: str, version: int, opened: list[bytes]) -> list[gzipped.Block]:
        """The open group's lines of one family, compressed once per version of the group (called
        outside the lock: everything it needs was taken under it)."""
        if not opened:
            return []
        hit = self._open_blocks.get(name)
        if hit is None or hit[0] != version:
            self.compressed += 1
            hit = self._open_blocks[name] = (version, gzipped.block(b"".join(opened)))
        return [hit[1]]

    def _family(self, name: str, groups: list[_Group]) -> Family | None:
        blocks = [p.block for g in groups if (p := g.pieces.get(name)) is not None]
        version, plain = self._open.version, self._open.plain or []
        opened = [t for text in plain if (t := text.get(name))]
        if not blocks and not opened:
            return None

        def parts() -> list[gzipped.Chunk]:
            return [header(name), *blocks, *opened]

        def compressed() -> list[gzipped.Block]:
            return [_header_block(name), *blocks, *self._open_block(name, version, opened)]

        return Family(name, parts, compressed)

    def _moving_family(self, name: str, data: bytes) -> Family:
        old = self._moving.get(name)
        entry: list[gzipped.Block | None] = [old[1] if old is not None and old[0] == data else None]
        self._moving[name] = (data, entry[0])

        def compressed() -> list[gzipped.Block]:
            made = entry[0]
            if made is None:
                self.compressed += 1
                made = entry[0] = gzipped.block(data)
                self._moving[name] = (data, made)
            return [_header_block(name), made]

        return Family(name, lambda: [header(name), data], compressed)

    def _joined(self, name: str, parts: list[str]) -> bytes:
        """A clock family's bytes; the tier lines, cached per certificate, are joined again only
        when one of them changed (10,000 certificates: 7 MB of text not built on every scrape)."""
        if name != n.CERT_TIER:
            return "".join(parts).encode()
        old = self._tier_parts
        if old is not None and len(old[0]) == len(parts) and all(map(operator.is_, old[0], parts)):
            return old[1]
        data = "".join(parts).encode()
        self._tier_parts = (parts, data)
        return data

    def _render_families(self) -> list[Family]:
        synced = self._sync()
        self._splice_all()
        now = self._clock()
        clock_ex = Exposition()
        job_cache: dict[str, _JobLine] = {}
        distinct_lines = []
        for job, profile, entries, hits in synced:
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
            if entries and job.served:
                line = self._job_cache.get(job.key)
                if line is not None and line.job is job and line.entries is entries:
                    job_cache[job.key] = line
                    distinct_lines.append(line.text)
                    continue
                distinct = distinct_certificates(entries)
                if line is None or line.job is not job or line.distinct != distinct:
                    base = {"target": job.target, "protocol": job.protocol, "name": job.name, "owner": job.owner}
                    if job.label_server_name and job.server_name:
                        base["server_name"] = job.server_name
                    own = Exposition()
                    own.add(n.TARGET_DISTINCT_CERTS, {**base, **dict(job.labels)}, distinct)
                    line = _JobLine(job, entries, distinct, own.lines[n.TARGET_DISTINCT_CERTS][0])
                line.entries = entries
                job_cache[job.key] = line
                distinct_lines.append(line.text)
        self._job_cache = job_cache
        # The families that move with the clock: new bytes on most scrapes (days left), or rarely (tiers).
        moving = {name: self._joined(name, more) for name, more in clock_ex.lines.items()}
        if distinct_lines:
            moving[n.TARGET_DISTINCT_CERTS] = "".join(distinct_lines).encode()
        self._moving = {name: kept for name, kept in self._moving.items() if name in moving}
        groups = [g for g in self._groups if g is not self._open]
        families = [f for name in self._order if (f := self._family(name, groups)) is not None]
        families += [self._moving_family(name, data) for name, data in moving.items()]
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
) -> tuple[dict[str, bytes], list[ClockLines]]:
    own = Exposition()
    labels_for = partial(_labels, source, job, location)
    clocks = location_static(own, labels_for, job, entry.result, entry.last_change, profile, scan)
    text = {k: "".join(v).encode() for k, v in own.lines.items() if not minimal or k in MINIMAL}
    return text, clocks


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
        scan = scanner.latest_for(job, result.location) if scanner else None
        labels_for = partial(_probe_labels, fixed, job.owner, owner)
        for clock in location_static(ex, labels_for, job, result, (), profile, scan):
            clock.render(ex, profile, now)
        if result.report is not None:
            fingerprints.add(result.report.leaf.fingerprint_sha256)
    ex.add(n.TARGET_DISTINCT_CERTS, {}, len(fingerprints))
    if profile.series is SeriesSet.MINIMAL:
        for metric in [m for m in ex.lines if m not in MINIMAL]:
            del ex.lines[metric]
    return ex.render()
