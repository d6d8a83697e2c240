"""What changed between successive observations of a job (pure state, no I/O, no clock).

``ChangeTracker.update`` is fed the results of one pass of one job (every address of a
target, every path of a files entry) and answers with typed events, and keeps the
last-change time of every certificate it follows (``tls_cert_last_change_timestamp_seconds``).
Metrics, the log and later outputs (reports, traps) subscribe to the events; none of them
compares results itself.

Rules (the same for every source; tested in tests/core/test_changes.py and tests/files/):

- **Events only on transitions.** A location that fails gives one event when it starts failing
  and one when the reason (the outcome) changes, not one per pass, and not when only the
  detail changes. A location seen for the first time in a failure state gives its event too.
  Coming back to ``certificate_found`` after a failure gives one ``found`` event.
- **A change is a different certificate at a followed position**, compared by SHA-256
  fingerprint: the leaf of a served chain, every position of a file. It is ``renewed`` when the
  new certificate names the same subject and SANs as the old one, ``new_certificate`` otherwise
  (a replacement, or a certificate appended to a bundle), and sets that position's last change
  to the result's time.
- **The first sighting is not a change.** Its last change is the certificate's notBefore, the
  best estimate of when it was installed, stable across restarts, so a restart never looks like
  a renewal to the "certificate changed" alert.
- **Memory survives failures.** A location that fails for a while keeps its certificates; when
  it comes back with another certificate that is a change, with the same one it is not.
- **Tiers are announced once, then reminded.** When a followed certificate enters an expiry tier
  other than ``ok`` (its first sighting included), one ``tier_entered`` event; while it stays in
  ``warning`` or worse, another every ``repeat`` seconds (the profile's ``log_repeat``), so a log
  watcher sees it the way an appliance daemon reports it. Only when ``tiers`` is given.
- **Vanished locations are forgotten.** A location a job gave last pass and not this one (a
  glob no longer matching a deleted file, an address no longer in DNS) gives one ``missing``
  event and its state is dropped; ``retain`` drops jobs no longer configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from exporter.certs.tiers import Tier, tier_of
from exporter.config.model import ExpiryTiers
from exporter.results import CertFacts, Result

FOUND = "certificate_found"
MISSING = "missing"
VANISHED = "no longer part of the job"  # the detail of a missing event for a location the job no longer gives


class EventKind(StrEnum):
    RENEWED = "renewed"  # a followed position holds a new certificate for the same names
    NEW_CERTIFICATE = "new_certificate"  # ... or a different certificate altogether
    MISSING = "missing"  # the location became missing, or is no longer part of the job
    FOUND = "found"  # certificates readable again after a failure
    OUTCOME_CHANGED = "outcome_changed"  # a failure started, or its reason changed
    TIER_ENTERED = "tier_entered"  # a followed certificate entered an expiry tier (or a reminder that it stays)


REMIND_TIERS = frozenset({Tier.WARNING, Tier.CRITICAL, Tier.EXPIRED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: EventKind
    job: str  # the job's key
    location: str
    at: float
    outcome: str  # the outcome now
    previous_outcome: str = ""  # "" at the first sighting
    detail: str = ""
    position: int | None = None  # certificate changes: which certificate
    certificate: CertFacts | None = None  # certificate changes: the new one
    previous_serial: str = ""  # "" when the position is new
    tier: str = ""  # tier_entered: the tier
    reminder: bool = False  # tier_entered: a repeat while the certificate stays in the tier


@dataclass(slots=True)
class _Slot:
    fingerprint: str
    serial: str
    names: tuple[str, tuple[str, ...]]  # subject and SANs: same names, new certificate = renewal
    last_change: float
    tier: str = ""  # the expiry tier last announced
    told: float = 0.0  # when it was last announced


@dataclass(slots=True)
class _Location:
    outcome: str
    slots: list[_Slot] = field(default_factory=list)  # index = position; kept through failures
    ever_found: bool = False


class ChangeTracker:
    """Per-location memory of outcomes and certificates; see the module docstring for the rules."""

    def __init__(self) -> None:
        self._locations: dict[tuple[str, str], _Location] = {}
        # job key -> locations of its last pass; a tuple, not a frozenset: 56 against 216 bytes for
        # the one address most targets have (2 MB at 10,000 targets)
        self._jobs: dict[str, tuple[str, ...]] = {}

    def update(
        self,
        job: str,
        results: Sequence[Result],
        *,
        every_certificate: bool,
        tiers: ExpiryTiers | None = None,
        now: float = 0.0,
        repeat: float = 12 * 3600.0,
    ) -> list[Event]:
        """Record one pass of ``job``; ``every_certificate`` follows every position, else the leaf only.
        With ``tiers``, also announce expiry tiers as of ``now`` (reminders every ``repeat`` seconds)."""
        events: list[Event] = []
        for result in results:
            events.extend(self._observe(job, result, every_certificate))
            if tiers is not None and result.report is not None:
                events.extend(self._tiers(job, result, tiers, now, repeat))
        current = frozenset(r.location for r in results)
        at = max((r.started_at for r in results), default=0.0)
        for location in sorted(set(self._jobs.get(job, ())) - current):
            state = self._locations.pop((job, location), None)
            if state is not None and state.outcome != MISSING:
                events.append(
                    Event(
                        kind=EventKind.MISSING,
                        job=job,
                        location=location,
                        at=at,
                        outcome=MISSING,
                        previous_outcome=state.outcome,
                        detail=VANISHED,
                    )
                )
        self._jobs[job] = tuple(current)
        return events

    def _observe(self, job: str, result: Result, every_certificate: bool) -> list[Event]:
        key = (job, result.location)
        state = self._locations.get(key)
        previous = state.outcome if state is not None else ""
        outcome = result.outcome.value
        if state is None:
            state = self._locations[key] = _Location(outcome=outcome)
        state.outcome = outcome
        report = result.report
        if report is None:
            if previous == outcome:
                return []
            kind = EventKind.MISSING if outcome == MISSING else EventKind.OUTCOME_CHANGED
            return [_event(kind, job, result, previous)]

        events: list[Event] = []
        if previous and previous != FOUND:
            events.append(_event(EventKind.FOUND, job, result, previous))
        first_sighting = not state.ever_found
        state.ever_found = True
        followed = report.chain if every_certificate else report.chain[:1]
        slots: list[_Slot] = []
        for position, facts in enumerate(followed):
            old = state.slots[position] if position < len(state.slots) else None
            if old is not None and old.fingerprint == facts.fingerprint_sha256:
                slots.append(old)
                continue
            names = (facts.subject, facts.sans)
            changed = facts.not_before if first_sighting else result.started_at
            slots.append(_Slot(facts.fingerprint_sha256, facts.serial, names, changed))
            if not first_sighting:
                renewed = old is not None and old.names == names
                events.append(
                    Event(
                        kind=EventKind.RENEWED if renewed else EventKind.NEW_CERTIFICATE,
                        job=job,
                        location=result.location,
                        at=result.started_at,
                        outcome=outcome,
                        previous_outcome=previous,
                        position=position,
                        certificate=facts,
                        previous_serial=old.serial if old is not None else "",
                    )
                )
        state.slots = slots
        return events

    def _tiers(self, job: str, result: Result, tiers: ExpiryTiers, now: float, repeat: float) -> list[Event]:
        state = self._locations.get((job, result.location))
        if state is None or result.report is None:
            return []
        events = []
        for position, slot in enumerate(state.slots):
            facts = result.report.chain[position]
            tier = tier_of(facts.not_before, facts.not_after, now, tiers)
            entered = tier.value != slot.tier
            remind = not entered and tier in REMIND_TIERS and now - slot.told >= repeat
            slot.tier = tier.value
            if (entered and tier is not Tier.OK) or remind:
                slot.told = now
                events.append(
                    Event(
                        kind=EventKind.TIER_ENTERED,
                        job=job,
                        location=result.location,
                        at=now,
                        outcome=result.outcome.value,
                        position=position,
                        certificate=facts,
                        tier=tier.value,
                        reminder=remind,
                    )
                )
        return events

    def retain(self, jobs: Iterable[str]) -> None:
        """Forget the jobs (and their locations) not in ``jobs``, e.g. after a reload."""
        keep = set(jobs)
        for job in [j for j in self._jobs if j not in keep]:
            for location in self._jobs.pop(job):
                self._locations.pop((job, location), None)

    def last_changes(self, job: str, location: str) -> tuple[float, ...]:
        """Last-change times of the followed positions of ``location``, position = index."""
        state = self._locations.get((job, location))
        return tuple(s.last_change for s in state.slots) if state is not None else ()

    def __len__(self) -> int:
        return len(self._locations)


def _event(kind: EventKind, job: str, result: Result, previous: str) -> Event:
    return Event(
        kind=kind,
        job=job,
        location=result.location,
        at=result.started_at,
        outcome=result.outcome.value,
        previous_outcome=previous,
        detail=result.detail,
    )
