"""The latest results of every configured job, keyed by job: written by the scheduler, read by
every output. Recording a pass runs it through the ``ChangeTracker`` and returns its events.

What is kept is what the outputs read (``kept``): not the step logs, which only the probe's own
caller shows (``/probe?debug=true``, ``check``), nor the OCSP staple, which the assessment has
judged; and equal sessions, assessments and reports are held once (``exporter.support.intern``): at
10,000 endpoints the logs were 20 MB and the per-endpoint copies of equal reports 10 MB more.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from exporter.config.model import Job, Profile
from exporter.results import Assessment, CertReport, Result, Session
from exporter.schedule.changes import ChangeTracker, Event
from exporter.support.intern import Interner

log = logging.getLogger(__name__)

# An output that acts on changes: called with a job and the events of one of its recorded passes.
Subscriber = Callable[[Job, Sequence[Event]], None]


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


class Shared:
    """The interned parts of kept results, swept from the results still held."""

    def __init__(self) -> None:
        self.sessions = Interner[Session]()
        self.assessments = Interner[Assessment]()
        self.reports = Interner[CertReport]()

    def kept(self, result: Result) -> Result:
        """``result`` as the store keeps it: no step logs, no staple, equal parts shared."""
        session = result.session
        if session is not None:
            if session.ocsp_staple is not None:
                session = dataclasses.replace(session, ocsp_staple=None)
            session = self.sessions(session)
        report = result.report
        if report is not None:
            a = report.assessment
            if a is not None:
                a = self.assessments(dataclasses.replace(a, log=()) if a.log else a)
                if a is not report.assessment:
                    report = dataclasses.replace(report, assessment=a)
            report = self.reports(report)
        if result.log or session is not result.session or report is not result.report:
            result = dataclasses.replace(result, log=(), session=session, report=report)
        return result

    def sweep_if_due(self, held: int, results: Callable[[], Iterator[Result]]) -> None:
        tables = (self.sessions, self.assessments, self.reports)
        if not any(t.due(held) for t in tables):
            return
        kept = list(results())
        self.sessions.sweep(r.session for r in kept if r.session is not None)
        reports = [r.report for r in kept if r.report is not None]
        self.reports.sweep(reports)
        self.assessments.sweep(r.assessment for r in reports if r.assessment is not None)


class Store:
    """Thread-safe: outputs may read from another thread than the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobState] = {}
        self._changes = ChangeTracker()
        self._shared = Shared()
        self._held = 0  # entries over all jobs
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(job, events)`` after every recorded pass that changed something.

        How outputs that act on changes (the event log, a webhook, a trap sender) are wired: to the
        store, never into the scheduler. A subscriber runs on the recording task: it must not block;
        an exception in one is logged and never reaches the probe or the other subscribers."""
        self._subscribers.append(subscriber)

    def _results(self) -> Iterator[Result]:
        return (e.result for s in self._jobs.values() for e in s.entries.values())

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
            self._held = sum(len(s.entries) for s in kept.values())

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
            shared = self._shared
            self._held -= len(state.entries)
            state.entries = {
                r.location: Entry(shared.kept(r), self._changes.last_changes(job.key, r.location)) for r in results
            }
            self._held += len(state.entries)
            shared.sweep_if_due(self._held, self._results)
        if events:
            for subscriber in self._subscribers:
                try:
                    subscriber(job, events)
                except Exception:  # an output's bug must not cost the probe its result
                    log.exception("event subscriber %r failed", subscriber)
        return events

    def snapshot(self) -> list[tuple[Job, Mapping[str, Entry]]]:
        """Views safe to render while probes keep writing (entry maps are replaced, not mutated)."""
        with self._lock:
            return [(s.job, s.entries) for s in self._jobs.values()]

    def get(self, key: str) -> tuple[Job, Mapping[str, Entry]] | None:
        with self._lock:
            state = self._jobs.get(key)
            return None if state is None else (state.job, state.entries)
