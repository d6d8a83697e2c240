"""The latest results of every configured job, keyed by job: written by the scheduler, read by
every output. Recording a pass runs it through the ``ChangeTracker`` and returns its events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from exporter.changes import ChangeTracker, Event
from exporter.config.model import Job, Profile
from exporter.results import Result


@dataclass(frozen=True, slots=True)
class Entry:
    """One location of one job: its latest result and when each followed certificate last changed."""

    result: Result
    last_change: tuple[float, ...] = ()  # position = index; empty when never seen a certificate


@dataclass(slots=True)
class JobState:
    job: Job
    # Replaced, never mutated, on every record(): a snapshot can hand it out without copying.
    entries: Mapping[str, Entry] = field(default_factory=dict)


def distinct_certificates(entries: Mapping[str, Entry]) -> int:
    """How many different leaves the locations of one job serve now."""
    return len({e.result.report.leaf.fingerprint_sha256 for e in entries.values() if e.result.report is not None})


class Store:
    """Thread-safe: outputs may read from another thread than the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobState] = {}
        self._changes = ChangeTracker()

    def apply_config(self, jobs: Iterable[Job]) -> None:
        """Keep the state of jobs that stay, drop the rest: removed jobs vanish from the next scrape."""
        with self._lock:
            kept = {}
            for job in jobs:
                state = self._jobs.get(job.key) or JobState(job)
                state.job = job
                kept[job.key] = state
            self._jobs = kept
            self._changes.retain(kept)

    def record(
        self,
        job: Job,
        results: Sequence[Result],
        *,
        every_certificate: bool = False,
        profile: Profile | None = None,
        now: float = 0.0,
    ) -> list[Event]:
        """Keep a pass's results; its change events (with ``profile``, expiry tiers as of ``now`` too)."""
        with self._lock:
            state = self._jobs.get(job.key)
            if state is None:  # removed by a reload while it was being probed
                return []
            events = self._changes.update(
                job.key,
                results,
                every_certificate=every_certificate,
                tiers=None if profile is None else profile.expiry_tiers,
                now=now,
                repeat=43200.0 if profile is None else profile.log_repeat,
            )
            state.entries = {r.location: Entry(r, self._changes.last_changes(job.key, r.location)) for r in results}
        return events

    def snapshot(self) -> list[tuple[Job, Mapping[str, Entry]]]:
        """Views safe to render while probes keep writing (entry maps are replaced, not mutated)."""
        with self._lock:
            return [(s.job, s.entries) for s in self._jobs.values()]

    def get(self, key: str) -> tuple[Job, Mapping[str, Entry]] | None:
        with self._lock:
            state = self._jobs.get(key)
            return None if state is None else (state.job, state.entries)
