"""FileChangeTracker: transitions and last-change times, alone and over real files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from certfiles import der, key_pem, pem, write
from cryptography import x509
from pki import NOW, PKI

from exporter.certs.facts import cert_facts
from exporter.config.model import FileTarget, Profile
from exporter.errors import FileOutcome
from exporter.files_state import FileChangeTracker, FileEvent, FileEventKind
from exporter.probers.file import read_target
from exporter.results import FileResult

PATH = "/etc/ssl/appliance/server.pem"


def _found(at: float, *certs: x509.Certificate, path: str = PATH) -> FileResult:
    return FileResult(
        path=path, outcome=FileOutcome.CERTIFICATE_FOUND, read_at=at, certificates=tuple(cert_facts(c) for c in certs)
    )


def _failed(at: float, outcome: FileOutcome, detail: str = "", path: str = PATH) -> FileResult:
    return FileResult(path=path, outcome=outcome, detail=detail, read_at=at)


def nb(cert: x509.Certificate) -> float:
    """A certificate's notBefore: its last change when first seen."""
    return cert.not_valid_before_utc.timestamp()


def _kinds(events: list[FileEvent]) -> list[tuple[FileEventKind, str]]:
    return [(e.kind, e.path) for e in events]


# -- pure ----------------------------------------------------------------------------------------


def test_first_sighting_is_not_a_change_and_sets_last_change_to_not_before(pki: PKI) -> None:
    tracker = FileChangeTracker()
    assert tracker.observe(_found(100.0, pki["good"].cert, pki.intermediate.cert)) == []
    assert tracker.last_changes(PATH) == (nb(pki["good"].cert), nb(pki.intermediate.cert))
    assert tracker.last_change(PATH, 0) == nb(pki["good"].cert)
    assert tracker.last_change(PATH, 2) is None
    assert tracker.last_change("/other", 0) is None


def test_same_certificate_again_is_not_a_change(pki: PKI) -> None:
    tracker = FileChangeTracker()
    tracker.observe(_found(100.0, pki["good"].cert))
    assert tracker.observe(_found(200.0, pki["good"].cert)) == []
    assert tracker.last_change(PATH, 0) == nb(pki["good"].cert)


def test_replaced_leaf_is_one_new_certificate_event(pki: PKI) -> None:
    tracker = FileChangeTracker()
    tracker.observe(_found(100.0, pki["good"].cert, pki.intermediate.cert))
    events = tracker.observe(_found(200.0, pki["expiring-60d"].cert, pki.intermediate.cert))
    new = pki["expiring-60d"].cert
    assert events == [
        FileEvent(
            kind=FileEventKind.NEW_CERTIFICATE,
            path=PATH,
            at=200.0,
            outcome=FileOutcome.CERTIFICATE_FOUND,
            position=0,
            serial=format(new.serial_number, "x"),
            not_after=new.not_valid_after_utc.timestamp(),
            fingerprint_sha256=pki["expiring-60d"].fingerprint,
            previous_serial=pki["good"].serial_hex,
        )
    ]
    assert events[0].message == "new certificate detected"
    assert tracker.last_changes(PATH) == (200.0, nb(pki.intermediate.cert))
    assert tracker.observe(_found(300.0, new, pki.intermediate.cert)) == []


def test_appended_certificate_is_a_change_and_removed_position_is_forgotten(pki: PKI) -> None:
    tracker = FileChangeTracker()
    tracker.observe(_found(100.0, pki["good"].cert))
    events = tracker.observe(_found(200.0, pki["good"].cert, pki.intermediate.cert))
    assert [(e.kind, e.position, e.previous_serial) for e in events] == [(FileEventKind.NEW_CERTIFICATE, 1, "")]
    assert tracker.last_changes(PATH) == (nb(pki["good"].cert), 200.0)
    assert tracker.observe(_found(300.0, pki["good"].cert)) == []
    assert tracker.last_changes(PATH) == (nb(pki["good"].cert),)


def test_missing_is_reported_once_per_transition(pki: PKI) -> None:
    tracker = FileChangeTracker()
    tracker.observe(_found(100.0, pki["good"].cert))
    events = tracker.observe(_failed(200.0, FileOutcome.MISSING, "No such file or directory (ENOENT)"))
    assert events == [
        FileEvent(
            kind=FileEventKind.MISSING,
            path=PATH,
            at=200.0,
            outcome=FileOutcome.MISSING,
            detail="No such file or directory (ENOENT)",
        )
    ]
    assert events[0].message == "certificate file missing"
    assert tracker.observe(_failed(300.0, FileOutcome.MISSING)) == []
    assert tracker.observe(_failed(400.0, FileOutcome.MISSING)) == []


def test_missing_at_first_sighting_is_reported(pki: PKI) -> None:
    tracker = FileChangeTracker()
    assert _kinds(tracker.observe(_failed(100.0, FileOutcome.MISSING))) == [(FileEventKind.MISSING, PATH)]
    assert tracker.observe(_failed(200.0, FileOutcome.MISSING)) == []
    # It appears: found, but a first sighting is not a change.
    assert _kinds(tracker.observe(_found(300.0, pki["good"].cert))) == [(FileEventKind.FOUND, PATH)]
    assert tracker.last_change(PATH, 0) == nb(pki["good"].cert)


def test_failures_report_each_new_outcome_not_each_new_detail(pki: PKI) -> None:
    tracker = FileChangeTracker()
    tracker.observe(_found(100.0, pki["good"].cert))
    events = tracker.observe(_failed(200.0, FileOutcome.PARSE_ERROR, "truncated or invalid DER"))
    assert [(e.kind, e.outcome, e.detail, e.message) for e in events] == [
        (FileEventKind.FAILED, FileOutcome.PARSE_ERROR, "truncated or invalid DER", "certificate file parse error")
    ]
    assert tracker.observe(_failed(300.0, FileOutcome.PARSE_ERROR, "empty file")) == []
    events = tracker.observe(_failed(400.0, FileOutcome.UNREADABLE, "Permission denied (EACCES)"))
    assert [(e.kind, e.outcome) for e in events] == [(FileEventKind.FAILED, FileOutcome.UNREADABLE)]
    assert _kinds(tracker.observe(_failed(500.0, FileOutcome.MISSING))) == [(FileEventKind.MISSING, PATH)]


def test_memory_survives_a_failure(pki: PKI) -> None:
    tracker = FileChangeTracker()
    tracker.observe(_found(100.0, pki["good"].cert))
    tracker.observe(_failed(200.0, FileOutcome.MISSING))
    # Back with the same certificate: found, no change, last change kept.
    assert _kinds(tracker.observe(_found(300.0, pki["good"].cert))) == [(FileEventKind.FOUND, PATH)]
    assert tracker.last_change(PATH, 0) == nb(pki["good"].cert)
    tracker.observe(_failed(400.0, FileOutcome.PARSE_ERROR, "empty file"))
    # Back with another one (delete, then write the renewal): found and a change.
    events = tracker.observe(_found(500.0, pki["expired"].cert))
    assert [(e.kind, e.serial, e.previous_serial) for e in events] == [
        (FileEventKind.FOUND, "", ""),
        (FileEventKind.NEW_CERTIFICATE, pki["expired"].serial_hex, pki["good"].serial_hex),
    ]
    assert tracker.last_change(PATH, 0) == 500.0


def test_observe_pass_reports_vanished_glob_matches_once_and_forgets_them(pki: PKI) -> None:
    tracker = FileChangeTracker()
    a, b = "/certs/a.pem", "/certs/b.pem"
    assert tracker.observe_pass("/certs/*.pem", [_found(100.0, pki["good"].cert, path=a)]) == []
    # b appears: a first sighting, no event.
    assert (
        tracker.observe_pass(
            "/certs/*.pem", [_found(200.0, pki["good"].cert, path=a), _found(200.0, pki["expired"].cert, path=b)]
        )
        == []
    )
    assert tracker.last_change(b, 0) == nb(pki["expired"].cert)
    # b deleted: the glob no longer matches it.
    events = tracker.observe_pass("/certs/*.pem", [_found(300.0, pki["good"].cert, path=a)])
    assert [(e.kind, e.path, e.at, e.detail) for e in events] == [
        (FileEventKind.MISSING, b, 300.0, "no longer matches /certs/*.pem")
    ]
    assert b not in tracker and a in tracker
    assert tracker.observe_pass("/certs/*.pem", [_found(400.0, pki["good"].cert, path=a)]) == []
    assert len(tracker) == 1


def test_observe_pass_keeps_paths_another_entry_still_reads(pki: PKI) -> None:
    tracker = FileChangeTracker()
    a = "/certs/a.pem"
    tracker.observe_pass("/certs/*.pem", [_found(100.0, pki["good"].cert, path=a)])
    tracker.observe_pass(a, [_found(100.0, pki["good"].cert, path=a)])
    assert tracker.observe_pass("/certs/*.pem", []) == []
    assert a in tracker


def test_retain_drops_entries_no_longer_configured(pki: PKI) -> None:
    tracker = FileChangeTracker()
    tracker.observe_pass("/a/*.pem", [_found(1.0, pki["good"].cert, path="/a/1.pem")])
    tracker.observe_pass("/b.pem", [_found(1.0, pki["good"].cert, path="/b.pem")])
    tracker.retain(["/b.pem"])
    assert "/a/1.pem" not in tracker and "/b.pem" in tracker
    assert len(tracker) == 1


# -- over real files -----------------------------------------------------------------------------


class _Passes:
    """Runs read_target and feeds the tracker, one pass per call, with a pass clock."""

    def __init__(self, pattern: Path | str) -> None:
        self.target = FileTarget(path=str(pattern), name="appliance", owner="hsm-team")
        self.tracker = FileChangeTracker()
        self.clock = 1_000.0

    async def run(self) -> tuple[list[FileResult], list[FileEvent]]:
        self.clock += 300.0
        results = await read_target(self.target, Profile(), (), self.clock)
        return results, self.tracker.observe_pass(self.target.path, results)


def _renewal(pki: PKI, name: str, **kw: Any) -> x509.Certificate:
    issued = pki.issue(name, not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=90), **kw)
    return issued.cert


async def test_file_replaced_by_a_renewed_certificate(pki: PKI, tmp_path: Path) -> None:
    path = write(tmp_path / "server.pem", pem(pki["expiring-20d"].cert))
    passes = _Passes(path)
    results, events = await passes.run()
    assert [r.outcome for r in results] == [FileOutcome.CERTIFICATE_FOUND] and events == []
    first_seen = passes.clock

    renewed = _renewal(pki, "files-renewed")
    write(path, pem(renewed) + pem(pki.intermediate.cert))
    results, events = await passes.run()
    assert [(e.kind, e.path, e.position, e.serial, e.not_after, e.previous_serial) for e in events] == [
        (
            FileEventKind.NEW_CERTIFICATE,
            str(path),
            0,
            format(renewed.serial_number, "x"),
            renewed.not_valid_after_utc.timestamp(),
            pki["expiring-20d"].serial_hex,
        ),
        (
            FileEventKind.NEW_CERTIFICATE,
            str(path),
            1,
            format(pki.intermediate.cert.serial_number, "x"),
            pki.intermediate.cert.not_valid_after_utc.timestamp(),
            "",
        ),
    ]
    assert passes.tracker.last_changes(str(path)) == (passes.clock, passes.clock)
    assert passes.clock > first_seen


async def test_file_rewritten_with_the_same_certificate(pki: PKI, tmp_path: Path) -> None:
    path = write(tmp_path / "server.crt", pem(pki["good"].cert))
    passes = _Passes(path)
    await passes.run()
    first_seen = nb(pki["good"].cert)
    write(path, key_pem(pki["good"].key) + pem(pki["good"].cert))  # other bytes, same certificate
    assert (await passes.run())[1] == []
    path.unlink()
    write(path, der(pki["good"].cert))  # even in another encoding
    results, events = await passes.run()
    assert [r.outcome for r in results] == [FileOutcome.CERTIFICATE_FOUND] and events == []
    assert passes.tracker.last_change(str(path), 0) == first_seen


async def test_file_deleted_is_missing_with_one_event(pki: PKI, tmp_path: Path) -> None:
    path = write(tmp_path / "server.pem", pem(pki["good"].cert))
    passes = _Passes(path)
    await passes.run()
    path.unlink()
    results, events = await passes.run()
    assert [(r.path, r.outcome) for r in results] == [(str(path), FileOutcome.MISSING)]
    assert [(e.kind, e.path, e.at) for e in events] == [(FileEventKind.MISSING, str(path), passes.clock)]
    for _ in range(3):
        results, events = await passes.run()
        assert [r.outcome for r in results] == [FileOutcome.MISSING] and events == []


async def test_file_created_after_the_first_pass(pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "later.pem"
    passes = _Passes(path)
    results, events = await passes.run()
    assert [r.outcome for r in results] == [FileOutcome.MISSING]
    assert _kinds(events) == [(FileEventKind.MISSING, str(path))]
    write(path, pem(pki["good"].cert))
    results, events = await passes.run()
    assert [r.outcome for r in results] == [FileOutcome.CERTIFICATE_FOUND]
    assert _kinds(events) == [(FileEventKind.FOUND, str(path))]  # found, but not a "new certificate"
    assert passes.tracker.last_change(str(path), 0) == nb(pki["good"].cert)


async def test_glob_gains_and_loses_files(pki: PKI, tmp_path: Path) -> None:
    a = write(tmp_path / "a.pem", pem(pki["good"].cert))
    passes = _Passes(tmp_path / "*.pem")
    assert (await passes.run())[1] == []
    b = write(tmp_path / "b.pem", pem(pki["expired"].cert))
    results, events = await passes.run()
    assert [r.path for r in results] == [str(a), str(b)] and events == []
    assert passes.tracker.last_change(str(b), 0) == nb(pki["expired"].cert)
    b.unlink()
    results, events = await passes.run()
    assert [r.path for r in results] == [str(a)]
    assert [(e.kind, e.path) for e in events] == [(FileEventKind.MISSING, str(b))]
    a.unlink()
    results, events = await passes.run()
    pattern = str(tmp_path / "*.pem")
    assert [(r.path, r.outcome) for r in results] == [(pattern, FileOutcome.MISSING)]
    assert sorted(_kinds(events)) == sorted([(FileEventKind.MISSING, str(a)), (FileEventKind.MISSING, pattern)])
    assert (await passes.run())[1] == []
