"""What changed between successive reads of certificate files (pure state, no I/O).

``FileChangeTracker`` is fed the ``FileResult``s of every pass and answers with the events
worth one log line each, and with the last-change timestamp of every (path, position)
(``tls_cert_last_change_timestamp_seconds``).

Decisions (tested in tests/files/test_files_state.py):

- **Events only on transitions.** A path that goes missing gives one ``missing`` event, not one
  per pass; the same holds for ``unreadable`` and ``parse_error`` (``failed``). A later change of
  the failure's detail alone is not a new event. A path seen for the first time in a failure
  state gives its event too (state goes from "unknown" to the failure: a configured file absent
  at start-up is worth one line). Coming back to ``certificate_found`` after a failure gives one
  ``found`` event.
- **A change is a different certificate at a position.** Compared by SHA-256 fingerprint per
  (path, position): a file rewritten with the same certificate is not a change. A changed
  position gives a ``new_certificate`` event carrying the new serial and not_after and the
  previous serial, and sets that position's last change to the result's ``read_at``. A position
  a known file did not have before (a certificate appended to a bundle) is a change too.
- **The first sighting is not a change.** The first time a path shows certificates, no
  ``new_certificate`` event is given and the last change of each position is the certificate's
  not_before, the same rule as for network targets: the best estimate of when it was installed,
  and stable across restarts of the exporter, so a restart never looks like a renewal to the
  "certificate changed" alert.
- **Memory survives failures.** A path that is missing or unparsable for a while keeps its
  fingerprints and last-change times; when it comes back with another certificate that is a
  change (the usual delete-then-write deployment), with the same one it is not.
- **Vanished glob matches are forgotten.** ``observe_pass`` gets all results of one ``files:``
  entry; a path the entry produced last pass and not this pass (a glob no longer matching a
  deleted file) gives one ``missing`` event and its state is dropped, so a glob over rotating
  file names does not grow the tracker forever. ``retain`` drops entries no longer configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from exporter.errors import FileOutcome
from exporter.results import FileResult


class FileEventKind(StrEnum):
    NEW_CERTIFICATE = "new_certificate"  # a position holds a different certificate
    MISSING = "missing"  # the path became missing (or a glob stopped matching it)
    FAILED = "failed"  # the path became unreadable or unparsable
    FOUND = "found"  # certificates readable (again) after missing or failing


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEvent:
    kind: FileEventKind
    path: str
    at: float  # read_at of the result that caused it
    outcome: FileOutcome
    detail: str = ""
    position: int | None = None  # new_certificate only
    serial: str = ""  # new_certificate: the new certificate
    not_after: float | None = None
    fingerprint_sha256: str = ""
    previous_serial: str = ""  # "" when the position is new

    @property
    def message(self) -> str:
        """One log line's message."""
        if self.kind is FileEventKind.NEW_CERTIFICATE:
            return "new certificate detected"
        if self.kind is FileEventKind.MISSING:
            return "certificate file missing"
        if self.kind is FileEventKind.FAILED:
            return f"certificate file {self.outcome.value.replace('_', ' ')}"
        return "certificate file found"


@dataclass(slots=True)
class _Slot:
    fingerprint: str
    serial: str
    last_change: float


@dataclass(slots=True)
class _PathState:
    outcome: FileOutcome
    slots: list[_Slot] = field(default_factory=list)  # index = position; kept through failures
    ever_found: bool = False


class FileChangeTracker:
    """Per-path memory of outcomes and certificates; see the module docstring for the rules."""

    def __init__(self) -> None:
        self._paths: dict[str, _PathState] = {}
        self._scopes: dict[str, frozenset[str]] = {}  # files: entry -> paths of its last pass

    # -- feeding ----------------------------------------------------------------------------
    def observe(self, result: FileResult) -> list[FileEvent]:
        """Record one result; the events it causes (usually none)."""
        state = self._paths.get(result.path)
        previous = state.outcome if state is not None else None
        if state is None:
            state = self._paths[result.path] = _PathState(outcome=result.outcome)
        state.outcome = result.outcome
        if result.outcome is not FileOutcome.CERTIFICATE_FOUND:
            if previous is result.outcome:
                return []
            kind = FileEventKind.MISSING if result.outcome is FileOutcome.MISSING else FileEventKind.FAILED
            return [
                FileEvent(kind=kind, path=result.path, at=result.read_at, outcome=result.outcome, detail=result.detail)
            ]

        events: list[FileEvent] = []
        if previous is not None and previous is not FileOutcome.CERTIFICATE_FOUND:
            events.append(
                FileEvent(kind=FileEventKind.FOUND, path=result.path, at=result.read_at, outcome=result.outcome)
            )
        first_sighting = not state.ever_found
        state.ever_found = True
        slots: list[_Slot] = []
        for position, facts in enumerate(result.certificates):
            old = state.slots[position] if position < len(state.slots) else None
            if old is not None and old.fingerprint == facts.fingerprint_sha256:
                slots.append(old)
                continue
            slots.append(
                _Slot(facts.fingerprint_sha256, facts.serial, facts.not_before if first_sighting else result.read_at)
            )
            if not first_sighting:
                events.append(
                    FileEvent(
                        kind=FileEventKind.NEW_CERTIFICATE,
                        path=result.path,
                        at=result.read_at,
                        outcome=result.outcome,
                        position=position,
                        serial=facts.serial,
                        not_after=facts.not_after,
                        fingerprint_sha256=facts.fingerprint_sha256,
                        previous_serial=old.serial if old is not None else "",
                    )
                )
        state.slots = slots
        return events

    def observe_pass(self, scope: str, results: Sequence[FileResult]) -> list[FileEvent]:
        """Record every result of one pass of a ``files:`` entry (``scope``: its configured path).

        Paths the entry gave last pass but not this one are reported missing once and forgotten.
        """
        events: list[FileEvent] = []
        for result in results:
            events.extend(self.observe(result))
        current = frozenset(r.path for r in results)
        at = max((r.read_at for r in results), default=0.0)
        others = {p for s, paths in self._scopes.items() if s != scope for p in paths}
        for path in sorted(self._scopes.get(scope, frozenset()) - current - others):
            state = self._paths.pop(path, None)
            if state is not None and state.outcome is not FileOutcome.MISSING:
                events.append(
                    FileEvent(
                        kind=FileEventKind.MISSING,
                        path=path,
                        at=at,
                        outcome=FileOutcome.MISSING,
                        detail=f"no longer matches {scope}",
                    )
                )
        self._scopes[scope] = current
        return events

    def retain(self, scopes: Iterable[str]) -> None:
        """Forget the entries (and their paths) not in ``scopes``, e.g. after a reload."""
        keep = set(scopes)
        for scope in [s for s in self._scopes if s not in keep]:
            gone = self._scopes.pop(scope)
            still_used = {p for paths in self._scopes.values() for p in paths}
            for path in gone - still_used:
                self._paths.pop(path, None)

    # -- reading ----------------------------------------------------------------------------
    def last_change(self, path: str, position: int) -> float | None:
        """When the certificate at ``position`` of ``path`` last changed (first seen, at first)."""
        state = self._paths.get(path)
        if state is None or position >= len(state.slots):
            return None
        return state.slots[position].last_change

    def last_changes(self, path: str) -> tuple[float, ...]:
        """Last-change times of every position of ``path``, position = index."""
        state = self._paths.get(path)
        return tuple(s.last_change for s in state.slots) if state is not None else ()

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __len__(self) -> int:
        return len(self._paths)
