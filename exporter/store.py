"""The latest result of every configured target and file: written by the scheduler, read by
the collector and the status page. It also remembers what each address served before, so a
changed certificate or a changed probe state is noticed once, not on every probe.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter.config.model import Config, FileTarget, Target
from exporter.files_state import FileChangeTracker, FileEventKind
from exporter.results import FileResult, ProbeResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something worth one log line: a changed probe state or a new certificate."""

    kind: str  # "state" | "new_certificate" | "missing"
    target: str
    address: str
    message: str
    fields: tuple[tuple[str, object], ...] = ()


@dataclass(slots=True)
class AddressState:
    result: ProbeResult
    fingerprint: str | None = None
    last_change: float | None = None


def distinct_certificates(addresses: Mapping[str, AddressState]) -> int:
    """How many different leaves the addresses of one target serve now."""
    return len({a.fingerprint for a in addresses.values() if a.fingerprint and a.result.success})


@dataclass(slots=True)
class TargetState:
    target: Target
    # Replaced, never mutated, on every record(): a snapshot can hand it out without copying.
    addresses: dict[str, AddressState] = field(default_factory=dict)


@dataclass(slots=True)
class FileState:
    target: FileTarget
    results: dict[str, FileResult] = field(default_factory=dict)  # by path; replaced, never mutated
    last_change: dict[tuple[str, int], float] = field(default_factory=dict)  # (path, position) -> time


class Store:
    """Thread-safe: the collector may render from another thread than the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, TargetState] = {}
        self._files: dict[str, FileState] = {}
        self._file_changes = FileChangeTracker()

    def apply_config(self, config: Config) -> None:
        """Keep state of targets that stay, drop the rest: removed targets vanish from the next scrape."""
        with self._lock:
            targets = {}
            for t in config.targets:
                state = self._targets.get(t.key) or TargetState(t)
                state.target = t
                targets[t.key] = state
            self._targets = targets
            files = {}
            for f in config.files:
                fstate = self._files.get(f.path) or FileState(f)
                fstate.target = f
                files[f.path] = fstate
            self._files = files
            self._file_changes.retain(files)

    def record(self, target: Target, results: Iterable[ProbeResult]) -> list[Event]:
        events: list[Event] = []
        with self._lock:
            state = self._targets.get(target.key)
            if state is None:  # removed by a reload while it was being probed
                return events
            fresh: dict[str, AddressState] = {}
            for result in results:
                previous = state.addresses.get(result.address)
                current = AddressState(result=result)
                if previous is not None:
                    current.fingerprint, current.last_change = previous.fingerprint, previous.last_change
                    if previous.result.outcome != result.outcome:
                        events.append(
                            Event(
                                kind="state",
                                target=target.target,
                                address=result.address,
                                message="probe state changed",
                                fields=(
                                    ("from", str(previous.result.outcome)),
                                    ("to", str(result.outcome)),
                                    ("detail", result.detail),
                                ),
                            )
                        )
                elif not result.success:
                    events.append(
                        Event(
                            kind="state",
                            target=target.target,
                            address=result.address,
                            message="probe failed",
                            fields=(("outcome", str(result.outcome)), ("detail", result.detail)),
                        )
                    )
                if result.report is not None:
                    leaf = result.report.leaf
                    if current.fingerprint is None:
                        # First sighting: the exporter cannot know when it was installed; its
                        # issue date is the best estimate, and it never raises a "changed" alert.
                        current.last_change = leaf.not_before
                    elif current.fingerprint != leaf.fingerprint_sha256:
                        current.last_change = result.started_at
                        events.append(
                            Event(
                                kind="new_certificate",
                                target=target.target,
                                address=result.address,
                                message="new certificate detected",
                                fields=(
                                    ("serial", leaf.serial),
                                    ("not_after", _iso(leaf.not_after)),
                                    ("subject", leaf.subject),
                                ),
                            )
                        )
                    current.fingerprint = leaf.fingerprint_sha256
                fresh[result.address] = current
            state.addresses = fresh
        return events

    def record_files(self, target: FileTarget, results: list[FileResult]) -> list[Event]:
        with self._lock:
            state = self._files.get(target.path)
            if state is None:  # removed by a reload while it was being read
                return []
            file_events = self._file_changes.observe_pass(target.path, results)
            state.results = {r.path: r for r in results}
            state.last_change = {
                (r.path, position): changed
                for r in results
                for position, changed in enumerate(self._file_changes.last_changes(r.path))
            }
        events = []
        for e in file_events:
            fields: list[tuple[str, object]] = [("outcome", e.outcome.value)]
            if e.position is not None:
                fields += [("position", e.position), ("serial", e.serial), ("previous_serial", e.previous_serial)]
            if e.not_after is not None:
                fields.append(("not_after", _iso(e.not_after)))
            if e.detail:
                fields.append(("detail", e.detail))
            kind = "new_certificate" if e.kind is FileEventKind.NEW_CERTIFICATE else "state"
            events.append(Event(kind=kind, target=e.path, address="", message=e.message, fields=tuple(fields)))
        return events

    def snapshot(self) -> tuple[list[tuple[Target, Mapping[str, AddressState]]], list[FileState]]:
        """Views safe to render while probes keep writing (address maps are replaced, not mutated)."""
        with self._lock:
            targets: list[tuple[Target, Mapping[str, AddressState]]] = [
                (s.target, s.addresses) for s in self._targets.values()
            ]
            files = [FileState(f.target, f.results, f.last_change) for f in self._files.values()]
        return targets, files


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
