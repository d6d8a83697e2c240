"""ChangeTracker: transitions and last-change times, alone and over real files (every position followed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from certfiles import der, key_pem, pem, write
from cryptography import x509
from pki import NOW, PKI

from exporter.certs.facts import cert_facts
from exporter.certs.judge import judge
from exporter.config.model import FileTarget, Profile
from exporter.results import CertReport, Result
from exporter.schedule.changes import ChangeTracker, Event, EventKind
from exporter.sources.file import FileSource
from exporter.support.deadline import Deadline
from exporter.support.errors import FileOutcome

PATH = "/etc/ssl/appliance/server.pem"


def _found(at: float, *certs: x509.Certificate, path: str = PATH) -> Result:
    chain = tuple(cert_facts(c) for c in certs)
    no = (False,) * len(chain)
    report = CertReport(chain=chain, owners=("",) * len(chain), key_weak=no, signature_weak=no)
    return Result(location=path, outcome=FileOutcome.CERTIFICATE_FOUND, started_at=at, report=report)


def _failed(at: float, outcome: FileOutcome, detail: str = "", path: str = PATH) -> Result:
    return Result(location=path, outcome=outcome, detail=detail, started_at=at)


def observe(tracker: ChangeTracker, result: Result) -> list[Event]:
    """One pass of a job that is that one path."""
    return tracker.update(result.location, [result], every_certificate=True)


def last_change(tracker: ChangeTracker, path: str, position: int, job: str | None = None) -> float | None:
    changes = tracker.last_changes(job or path, path)
    return changes[position] if position < len(changes) else None


def serial(e: Event) -> str:
    return e.certificate.serial if e.certificate else ""


def nb(cert: x509.Certificate) -> float:
    """A certificate's notBefore: its last change when first seen."""
    return cert.not_valid_before_utc.timestamp()


def _kinds(events: list[Event]) -> list[tuple[EventKind, str]]:
    return [(e.kind, e.location) for e in events]


# -- pure ----------------------------------------------------------------------------------------


def test_first_sighting_is_not_a_change_and_sets_last_change_to_not_before(pki: PKI) -> None:
    tracker = ChangeTracker()
    assert observe(tracker, _found(100.0, pki["good"].cert, pki.intermediate.cert)) == []
    assert tracker.last_changes(PATH, PATH) == (nb(pki["good"].cert), nb(pki.intermediate.cert))
    assert last_change(tracker, PATH, 0) == nb(pki["good"].cert)
    assert last_change(tracker, PATH, 2) is None
    assert last_change(tracker, "/other", 0) is None


def test_same_certificate_again_is_not_a_change(pki: PKI) -> None:
    tracker = ChangeTracker()
    observe(tracker, _found(100.0, pki["good"].cert))
    assert observe(tracker, _found(200.0, pki["good"].cert)) == []
    assert last_change(tracker, PATH, 0) == nb(pki["good"].cert)


def test_replaced_leaf_is_one_renewal_event(pki: PKI) -> None:
    tracker = ChangeTracker()
    observe(tracker, _found(100.0, pki["good"].cert, pki.intermediate.cert))
    events = observe(tracker, _found(200.0, pki["expiring-60d"].cert, pki.intermediate.cert))
    new = pki["expiring-60d"].cert
    # Same subject and SANs, another certificate: a renewal.
    assert [(e.kind, e.location, e.at, e.outcome, e.position, serial(e), e.previous_serial) for e in events] == [
        (EventKind.RENEWED, PATH, 200.0, "certificate_found", 0, format(new.serial_number, "x"), pki["good"].serial_hex)
    ]
    assert events[0].certificate is not None
    assert events[0].certificate.not_after == new.not_valid_after_utc.timestamp()
    assert events[0].certificate.fingerprint_sha256 == pki["expiring-60d"].fingerprint
    assert tracker.last_changes(PATH, PATH) == (200.0, nb(pki.intermediate.cert))
    assert observe(tracker, _found(300.0, new, pki.intermediate.cert)) == []


def test_another_subject_is_a_new_certificate_not_a_renewal(pki: PKI) -> None:
    tracker = ChangeTracker()
    observe(tracker, _found(100.0, pki["good"].cert))
    events = observe(tracker, _found(200.0, pki.intermediate.cert))
    assert [(e.kind, e.position) for e in events] == [(EventKind.NEW_CERTIFICATE, 0)]


def test_appended_certificate_is_a_change_and_removed_position_is_forgotten(pki: PKI) -> None:
    tracker = ChangeTracker()
    observe(tracker, _found(100.0, pki["good"].cert))
    events = observe(tracker, _found(200.0, pki["good"].cert, pki.intermediate.cert))
    assert [(e.kind, e.position, e.previous_serial) for e in events] == [(EventKind.NEW_CERTIFICATE, 1, "")]
    assert tracker.last_changes(PATH, PATH) == (nb(pki["good"].cert), 200.0)
    assert observe(tracker, _found(300.0, pki["good"].cert)) == []
    assert tracker.last_changes(PATH, PATH) == (nb(pki["good"].cert),)


def test_a_served_chain_follows_its_leaf_only(pki: PKI) -> None:
    tracker = ChangeTracker()
    first = _found(100.0, pki["good"].cert, pki.intermediate.cert)
    tracker.update("tls://shop:443", [first], every_certificate=False)
    assert tracker.last_changes("tls://shop:443", PATH) == (nb(pki["good"].cert),)
    other_intermediate = _found(200.0, pki["good"].cert, pki.root.cert)
    assert tracker.update("tls://shop:443", [other_intermediate], every_certificate=False) == []


def test_missing_is_reported_once_per_transition(pki: PKI) -> None:
    tracker = ChangeTracker()
    observe(tracker, _found(100.0, pki["good"].cert))
    events = observe(tracker, _failed(200.0, FileOutcome.MISSING, "No such file or directory (ENOENT)"))
    assert [(e.kind, e.location, e.at, e.outcome, e.previous_outcome, e.detail) for e in events] == [
        (EventKind.MISSING, PATH, 200.0, "missing", "certificate_found", "No such file or directory (ENOENT)")
    ]
    assert observe(tracker, _failed(300.0, FileOutcome.MISSING)) == []
    assert observe(tracker, _failed(400.0, FileOutcome.MISSING)) == []


def test_missing_at_first_sighting_is_reported(pki: PKI) -> None:
    tracker = ChangeTracker()
    assert _kinds(observe(tracker, _failed(100.0, FileOutcome.MISSING))) == [(EventKind.MISSING, PATH)]
    assert observe(tracker, _failed(200.0, FileOutcome.MISSING)) == []
    # It appears: found, but a first sighting is not a change.
    assert _kinds(observe(tracker, _found(300.0, pki["good"].cert))) == [(EventKind.FOUND, PATH)]
    assert last_change(tracker, PATH, 0) == nb(pki["good"].cert)


def test_failures_report_each_new_outcome_not_each_new_detail(pki: PKI) -> None:
    tracker = ChangeTracker()
    observe(tracker, _found(100.0, pki["good"].cert))
    events = observe(tracker, _failed(200.0, FileOutcome.PARSE_ERROR, "truncated or invalid DER"))
    assert [(e.kind, e.outcome, e.detail) for e in events] == [
        (EventKind.OUTCOME_CHANGED, "parse_error", "truncated or invalid DER")
    ]
    assert observe(tracker, _failed(300.0, FileOutcome.PARSE_ERROR, "empty file")) == []
    events = observe(tracker, _failed(400.0, FileOutcome.UNREADABLE, "Permission denied (EACCES)"))
    assert [(e.kind, e.outcome) for e in events] == [(EventKind.OUTCOME_CHANGED, "unreadable")]
    assert _kinds(observe(tracker, _failed(500.0, FileOutcome.MISSING))) == [(EventKind.MISSING, PATH)]


def test_memory_survives_a_failure(pki: PKI) -> None:
    tracker = ChangeTracker()
    observe(tracker, _found(100.0, pki["good"].cert))
    observe(tracker, _failed(200.0, FileOutcome.MISSING))
    # Back with the same certificate: found, no change, last change kept.
    assert _kinds(observe(tracker, _found(300.0, pki["good"].cert))) == [(EventKind.FOUND, PATH)]
    assert last_change(tracker, PATH, 0) == nb(pki["good"].cert)
    observe(tracker, _failed(400.0, FileOutcome.PARSE_ERROR, "empty file"))
    # Back with another one (delete, then write the renewal): found and a change.
    events = observe(tracker, _found(500.0, pki["expired"].cert))
    assert [(e.kind, serial(e), e.previous_serial) for e in events] == [
        (EventKind.FOUND, "", ""),
        (EventKind.RENEWED, pki["expired"].serial_hex, pki["good"].serial_hex),
    ]
    assert last_change(tracker, PATH, 0) == 500.0


def test_vanished_locations_are_reported_once_and_forgotten(pki: PKI) -> None:
    tracker = ChangeTracker()
    job = "file:///certs/*.pem"
    a, b = "/certs/a.pem", "/certs/b.pem"

    def update(*results: Result) -> list[Event]:
        return tracker.update(job, list(results), every_certificate=True)

    assert update(_found(100.0, pki["good"].cert, path=a)) == []
    # b appears: a first sighting, no event.
    assert update(_found(200.0, pki["good"].cert, path=a), _found(200.0, pki["expired"].cert, path=b)) == []
    assert last_change(tracker, b, 0, job) == nb(pki["expired"].cert)
    # b deleted: the glob no longer matches it.
    events = update(_found(300.0, pki["good"].cert, path=a))
    assert [(e.kind, e.location, e.at, e.detail) for e in events] == [
        (EventKind.MISSING, b, 300.0, "no longer part of the job")
    ]
    assert tracker.last_changes(job, b) == () and tracker.last_changes(job, a) != ()
    assert update(_found(400.0, pki["good"].cert, path=a)) == []
    assert len(tracker) == 1


def test_each_job_has_its_own_memory(pki: PKI) -> None:
    tracker = ChangeTracker()
    a = "/certs/a.pem"
    tracker.update("file:///certs/*.pem", [_found(100.0, pki["good"].cert, path=a)], every_certificate=True)
    tracker.update(f"file://{a}", [_found(100.0, pki["good"].cert, path=a)], every_certificate=True)
    assert len(tracker) == 2
    tracker.update("file:///certs/*.pem", [], every_certificate=True)
    assert tracker.last_changes(f"file://{a}", a) == (nb(pki["good"].cert),)


def test_retain_drops_jobs_no_longer_configured(pki: PKI) -> None:
    tracker = ChangeTracker()
    tracker.update("/a/*.pem", [_found(1.0, pki["good"].cert, path="/a/1.pem")], every_certificate=True)
    tracker.update("/b.pem", [_found(1.0, pki["good"].cert, path="/b.pem")], every_certificate=True)
    tracker.retain(["/b.pem"])
    assert tracker.last_changes("/a/*.pem", "/a/1.pem") == () and tracker.last_changes("/b.pem", "/b.pem") != ()
    assert len(tracker) == 1


# -- over real files -----------------------------------------------------------------------------


class _Passes:
    """Observes a files entry with the file source, judges and feeds the tracker, one pass per call."""

    def __init__(self, pattern: Path | str) -> None:
        self.target = FileTarget(path=str(pattern), name="appliance", owner="hsm-team")
        self.tracker = ChangeTracker()
        self.clock = 0.0

    async def run(self) -> tuple[list[Result], list[Event]]:
        observations = await FileSource().observe(self.target, Deadline(60.0))
        results = [judge(o, self.target, Profile(), ()) for o in observations]
        self.clock = results[0].started_at
        return results, self.tracker.update(self.target.key, results, every_certificate=True)

    def last_changes(self, path: Path) -> tuple[float, ...]:
        return self.tracker.last_changes(self.target.key, str(path))


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
    assert [
        (e.kind, e.location, e.position, serial(e), e.certificate and e.certificate.not_after, e.previous_serial)
        for e in events
    ] == [
        (
            EventKind.RENEWED,
            str(path),
            0,
            format(renewed.serial_number, "x"),
            renewed.not_valid_after_utc.timestamp(),
            pki["expiring-20d"].serial_hex,
        ),
        (
            EventKind.NEW_CERTIFICATE,
            str(path),
            1,
            format(pki.intermediate.cert.serial_number, "x"),
            pki.intermediate.cert.not_valid_after_utc.timestamp(),
            "",
        ),
    ]
    assert passes.last_changes(path) == (passes.clock, passes.clock)
    assert passes.clock >= first_seen


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
    assert passes.last_changes(path)[0] == first_seen


async def test_file_deleted_is_missing_with_one_event(pki: PKI, tmp_path: Path) -> None:
    path = write(tmp_path / "server.pem", pem(pki["good"].cert))
    passes = _Passes(path)
    await passes.run()
    path.unlink()
    results, events = await passes.run()
    assert [(r.location, r.outcome) for r in results] == [(str(path), FileOutcome.MISSING)]
    assert [(e.kind, e.location, e.at) for e in events] == [(EventKind.MISSING, str(path), passes.clock)]
    for _ in range(3):
        results, events = await passes.run()
        assert [r.outcome for r in results] == [FileOutcome.MISSING] and events == []


async def test_file_created_after_the_first_pass(pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "later.pem"
    passes = _Passes(path)
    results, events = await passes.run()
    assert [r.outcome for r in results] == [FileOutcome.MISSING]
    assert _kinds(events) == [(EventKind.MISSING, str(path))]
    write(path, pem(pki["good"].cert))
    results, events = await passes.run()
    assert [r.outcome for r in results] == [FileOutcome.CERTIFICATE_FOUND]
    assert _kinds(events) == [(EventKind.FOUND, str(path))]  # found, but not a "new certificate"
    assert passes.last_changes(path)[0] == nb(pki["good"].cert)


async def test_glob_gains_and_loses_files(pki: PKI, tmp_path: Path) -> None:
    a = write(tmp_path / "a.pem", pem(pki["good"].cert))
    passes = _Passes(tmp_path / "*.pem")
    assert (await passes.run())[1] == []
    b = write(tmp_path / "b.pem", pem(pki["expired"].cert))
    results, events = await passes.run()
    assert [r.location for r in results] == [str(a), str(b)] and events == []
    assert passes.last_changes(b)[0] == nb(pki["expired"].cert)
    b.unlink()
    results, events = await passes.run()
    assert [r.location for r in results] == [str(a)]
    assert [(e.kind, e.location) for e in events] == [(EventKind.MISSING, str(b))]
    a.unlink()
    results, events = await passes.run()
    pattern = str(tmp_path / "*.pem")
    assert [(r.location, r.outcome) for r in results] == [(pattern, FileOutcome.MISSING)]
    assert sorted(_kinds(events)) == sorted([(EventKind.MISSING, str(a)), (EventKind.MISSING, pattern)])
    assert (await passes.run())[1] == []


def test_a_tier_is_announced_once_then_reminded_while_warning_or_worse(pki: PKI) -> None:
    from exporter.config.model import ExpiryTiers

    tracker, tiers, t0 = ChangeTracker(), ExpiryTiers(), NOW.timestamp()

    def tier_events(cert: x509.Certificate, now: float) -> list[tuple[str, bool]]:
        events = tracker.update(
            cert.subject.rfc4514_string() + cert.serial_number.to_bytes(20).hex(),
            [_found(now, cert)],
            every_certificate=True,
            tiers=tiers,
            now=now,
            repeat=12 * 3600,
        )
        return [(e.tier, e.reminder) for e in events if e.kind is EventKind.TIER_ENTERED]

    warning = pki["expiring-20d"].cert
    assert tier_events(warning, t0) == [("warning", False)]  # entered at its first sighting
    assert tier_events(warning, t0 + 300) == []  # once, not every probe
    assert tier_events(warning, t0 + 12 * 3600) == [("warning", True)]  # the reminder
    assert tier_events(warning, t0 + 12 * 3600 + 300) == []
    assert tier_events(warning, t0 + 14 * 86400) == [("critical", False)]  # 6 days left: a new tier
    info = pki["expiring-60d"].cert
    assert tier_events(info, t0) == [("info", False)]
    assert tier_events(info, t0 + 13 * 3600) == []  # info is announced, not repeated
    assert tier_events(pki["good"].cert, t0) == []  # ok is never announced


def test_the_log_line_of_a_tier(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    from helpers import make_target

    from exporter.outputs.eventlog import log_events

    caplog.set_level("INFO", logger="exporter.events")
    cert = cert_facts(pki["expiring-20d"].cert)
    event = Event(
        kind=EventKind.TIER_ENTERED,
        job="tls://shop:443",
        location="127.0.0.1:443",
        at=NOW.timestamp(),
        outcome="certificate_found",
        position=0,
        certificate=cert,
        tier="warning",
    )
    log_events(make_target(443, target="shop:443"), [event])
    (record,) = caplog.records
    date = dt.datetime.fromtimestamp(cert.not_after, dt.UTC).strftime("%Y-%m-%d")
    assert (record.levelname, record.getMessage()) == ("WARNING", f"certificate will expire on {date}")
    fields = record.fields  # type: ignore[attr-defined]
    assert (fields["target"], fields["address"], fields["tier"], fields["days"]) == (
        "shop:443",
        "127.0.0.1:443",
        "warning",
        "20.0",
    )
    assert (fields["code"], fields["severity"]) == ("expiry_warning", "warning")  # as check and the alert
