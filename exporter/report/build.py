"""Build a report from Prometheus: the series of the README's metrics reference at the end of the
period (and at its start, for what changed), joined per certificate (target, address, protocol, position).

The verdict of each certificate is the exporter's: each problem the series show is a finding of
the table in ``exporter.certs.findings`` (the one `check`, the inventory and the alerts use), and
the verdict is the worst severity among them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping

from exporter.certs.findings import Finding, Verdict, finding, verdict_of
from exporter.certs.policy import below_minimum
from exporter.config.notify_model import ReportPeriod
from exporter.report.model import (
    DAYS_BUCKETS,
    TIERS,
    Certificate,
    Change,
    DailyStatus,
    FailedEndpoint,
    MonthlyCompliance,
    PolicyLine,
    Report,
    TrendSeries,
    WeeklyTrend,
)
from exporter.report.query import Prometheus, Sample

DAY = 86400.0
PERIOD_SECONDS = {ReportPeriod.DAY: DAY, ReportPeriod.WEEK: 7 * DAY, ReportPeriod.MONTH: 30 * DAY}
TREND_STEP = {ReportPeriod.DAY: 3600.0, ReportPeriod.WEEK: 6 * 3600.0, ReportPeriod.MONTH: DAY}
GOOD_GRADES = ("A+", "A", "A-", "B")
LONGEST = 10

Key = tuple[str, str, str, str, str]  # target, address, protocol, position, server_name


def key_of(labels: Sample | Mapping[str, str]) -> Key:
    """One row per location: two targets on one address with their own server names are two rows."""
    get = labels.get
    return (
        get("target") or "",
        get("address") or "",
        get("protocol") or "",
        get("position") or "",
        get("server_name") or "",
    )


class Snapshot:
    """Every certificate fact at one instant, by certificate key."""

    def __init__(self, prom: Prometheus, at: float) -> None:
        q = prom.instant
        self.at = at
        self.tier = {key_of(s): s for s in q("tls_cert_expiry_tier == 1", at)}
        self.days = _values(q("tls_cert_days_until_expiry", at))
        self.not_after = _values(q("tls_cert_not_after_timestamp_seconds", at))
        self.not_before = _values(q("tls_cert_not_before_timestamp_seconds", at))
        self.info = {key_of(s): s for s in q("tls_cert_info", at)}
        self.last_change = _values(q("tls_cert_last_change_timestamp_seconds", at))
        self.hostname_mismatch = _keys(q("tls_cert_hostname_match == 0", at))
        self.chain_invalid = _keys(q("tls_chain_valid == 0", at))
        self.chain_issues = _grouped(q("tls_chain_issue == 1", at), "issue")
        self.key_weak = _keys(q("tls_cert_key_weak == 1", at))
        self.signature_weak = _keys(q("tls_cert_signature_weak == 1", at))
        self.expected_mismatch = _keys(q("tls_cert_expected_match == 0", at))
        self.validity_too_long = _keys(q("tls_cert_validity_too_long == 1", at))
        self.grade = {key_of(s): s.get("grade") for s in q("tls_security_grade == 1", at)}
        accepted = _grouped(q("tls_protocol_accepted == 1", at), "version")
        below = q("tls_protocol_below_minimum == 1", at)
        if not below and not q("tls_protocol_below_minimum", at):  # exporters before it: below TLS 1.2
            below = [
                s for s in q("tls_protocol_accepted == 1", at) if s.get("version") in ("SSLv3", "TLSv1.0", "TLSv1.1")
            ]
        # Exactly the accepted versions below the profile's minimum (the series' `minimum` label;
        # exporters before it: below TLS 1.2, the default).
        self.legacy: dict[Key, tuple[str, ...]] = {}
        for s in below:
            k = key_of(s)
            versions = ((v, True) for v in accepted.get(k, ()))
            self.legacy[k] = below_minimum(versions, s.get("minimum") or "TLSv1.2")
        failed = q('tls_handshake_outcome{outcome!="certificate_found"} == 1', at)
        failed += q('tls_file_outcome{outcome!="certificate_found"} == 1', at)
        self.failed = {key_of(s): s for s in failed}

    def certificates(self) -> dict[Key, Certificate]:
        return {k: self.certificate(k) for k in self.tier}

    def certificate(self, k: Key) -> Certificate:
        labels = self.tier[k]
        info = self.info.get(k)
        tier = labels.get("tier")
        days = self.days.get(k)
        found: list[Finding] = []

        def add(code: str, text: str) -> None:
            found.append(finding(code, text))

        not_before = self.not_before.get(k)
        if not_before is not None and not_before > self.at:
            add("not_yet_valid", "not valid yet")
        if tier == "expired":
            add("expired", "expired" + (f" {-days:.1f} days ago" if days is not None else ""))
        elif tier == "critical":
            add(
                "expiry_critical",
                f"expires in {days:.1f} days (tier critical)" if days is not None else "tier critical",
            )
        elif tier == "warning":
            add("expiry_warning", f"expires in {days:.1f} days (tier warning)" if days is not None else "tier warning")
        if k in self.hostname_mismatch:
            add("hostname_mismatch", "hostname mismatch")
        issues = self.chain_issues.get(k, ())
        if k in self.chain_invalid or issues:
            add("chain_invalid", "chain invalid" + (f": {', '.join(issues)}" if issues else ""))
        if k in self.key_weak:
            add("weak_key", "weak key")
        if k in self.signature_weak:
            add("weak_signature", "weak signature")
        if k in self.expected_mismatch:
            add("expected_mismatch", "not the expected certificate")
        if self.legacy.get(k):
            add("legacy_protocol", f"legacy protocol accepted: {', '.join(self.legacy[k])}")
        if k in self.validity_too_long:
            add("validity_too_long", "validity longer than the policy allows")
        verdict = verdict_of(found)
        problems = [f.text for f in found]
        return Certificate(
            target=k[0],
            address=k[1],
            protocol=k[2],
            position=k[3],
            server_name=k[4],
            name=labels.get("name") or k[0],
            owner=labels.get("owner"),
            subject=info.get("subject") if info else "",
            issuer=info.get("issuer") if info else "",
            tier=tier,
            days_left=days,
            not_before=self.not_before.get(k),
            not_after=self.not_after.get(k),
            grade=self.grade.get(k, ""),
            verdict=verdict,
            problems=tuple(problems),
        )

    def failed_endpoints(self) -> dict[Key, FailedEndpoint]:
        return {
            k: FailedEndpoint(
                target=k[0],
                address=k[1],
                protocol=k[2],
                name=s.get("name") or k[0],
                owner=s.get("owner"),
                outcome=s.get("outcome"),
            )
            for k, s in self.failed.items()
        }


def build_report(prom: Prometheus, period: ReportPeriod, *, end: float, dashboard_url: str | None = None) -> Report:
    start = end - PERIOD_SECONDS[period]
    now = Snapshot(prom, end)
    certs = now.certificates()
    failed = now.failed_endpoints()
    ordered = tuple(sorted(certs.values(), key=_worst_first))
    verdicts = Counter(c.verdict.value for c in ordered)
    totals = {
        "certificates": len(ordered),
        "ok": verdicts["ok"],
        "warning": verdicts["warning"],
        "critical": verdicts["critical"],
        "failed_endpoints": len(failed),
    }
    # What Prometheus holds decides what can be compared: never a week-ago figure from 15 minutes of data.
    first_seen = _first_seen(prom, start, end)
    held_from = _held_from(prom, min(first_seen.values(), default=None), _seen_step(start, end))
    notes: list[str] = []
    if held_from is not None and held_from > start + TREND_STEP[period]:
        notes.append(
            f"Prometheus holds {_span(end - held_from)} of history, less than the {period.value} this report "
            f"covers: comparisons start at {_when(held_from)}, and 'new' means first seen since then."
        )
    day_before = max(end - DAY, held_from or end - DAY)
    daily_changes = _changes(now, Snapshot(prom, day_before), since=end - DAY, first_seen=first_seen)
    daily = DailyStatus(certificates=ordered, failed=tuple(sorted(failed.values(), key=_where)), changes=daily_changes)
    weekly = monthly = None
    if period is not ReportPeriod.DAY:
        before = Snapshot(prom, max(start, held_from or start))
        trend = _trend(prom, start, end, TREND_STEP[period])
        if period is ReportPeriod.WEEK:
            weekly = _weekly(now, before, certs, failed, trend, start, first_seen)
        else:
            monthly = _monthly(certs, failed, trend)
    return Report(
        period=period,
        title=_title(period, start, end),
        start=start,
        end=end,
        prometheus_url=prom.url,
        dashboard_url=dashboard_url,
        totals=totals,
        daily=daily,
        weekly=weekly,
        monthly=monthly,
        notes=tuple(notes),
    )


def _first_seen(prom: Prometheus, start: float, end: float) -> dict[Key, float]:
    """When each certificate's series first shows in the period (to the query's step)."""
    seen: dict[Key, float] = {}
    for s in prom.range(
        "tls_cert_info", start, end, _seen_step(start, end)
    ):  # one series per leaf served: a key's earliest
        if s.points:
            k = key_of(s.labels)
            seen[k] = min(seen.get(k, s.points[0][0]), s.points[0][0])
    return seen


def _seen_step(start: float, end: float) -> float:
    return max(60.0, (end - start) / 240)


def _held_from(prom: Prometheus, coarse: float | None, step: float) -> float | None:
    """When Prometheus' history of the certificates starts: ``coarse`` (a point of the first-seen
    query) refined within the step before it."""
    if coarse is None:
        return None
    fine = prom.range("count(tls_cert_info)", coarse - step, coarse, max(1.0, step / 100))
    return min((s.points[0][0] for s in fine if s.points), default=coarse)


def _span(seconds: float) -> str:
    return f"{seconds / DAY:.1f} days" if seconds >= DAY else f"{seconds / 3600:.1f} hours"


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _weekly(
    now: Snapshot,
    before: Snapshot,
    certs: dict[Key, Certificate],
    failed: dict[Key, FailedEndpoint],
    trend: tuple[TrendSeries, ...],
    start: float,
    first_seen: dict[Key, float],
) -> WeeklyTrend:
    changes = _changes(now, before, since=start, first_seen=first_seen)
    tiers_before = {k: s.get("tier") for k, s in before.tier.items()}
    newly = tuple(
        sorted(
            (
                c
                for k, c in certs.items()
                if c.tier in ("warning", "critical") and tiers_before.get(k) in ("ok", "info")
            ),
            key=_worst_first,
        )
    )
    expired = tuple(
        sorted((c for k, c in certs.items() if c.tier == "expired" and tiers_before.get(k) != "expired"), key=_where)
    )
    started = tuple(sorted((f for k, f in failed.items() if k not in before.failed), key=_where))
    return WeeklyTrend(
        renewed=tuple(c for c in changes if c.kind == "renewed"),
        replaced=tuple(c for c in changes if c.kind == "replaced"),
        newly_expiring=newly,
        expired=expired,
        started_failing=started,
        days_left=_days_histogram(now.days.values()),
        days_left_before=_days_histogram(before.days.values()),
        tiers=_tier_counts(now),
        tiers_before=_tier_counts(before),
        trend=trend,
    )


def _monthly(
    certs: dict[Key, Certificate], failed: dict[Key, FailedEndpoint], trend: tuple[TrendSeries, ...]
) -> MonthlyCompliance:
    everything = sorted(certs.values(), key=_where)
    weak_keys = tuple(c for c in everything if "weak key" in c.problems)
    weak_sigs = tuple(c for c in everything if "weak signature" in c.problems)
    legacy = tuple(
        (c, p.split(": ", 1)[1]) for c in everything for p in c.problems if p.startswith("legacy protocol accepted")
    )
    grades = Counter(c.grade for c in everything if c.grade)
    issues: Counter[str] = Counter()
    for c in everything:
        for p in c.problems:
            if p.startswith("chain invalid: "):
                issues.update(p.split(": ", 1)[1].split(", "))
    unowned = tuple(c for c in everything if not c.owner)
    longest = tuple(
        sorted((c for c in everything if c.lifetime_days is not None), key=lambda c: -(c.lifetime_days or 0))[:LONGEST]
    )
    chains = tuple(c for c in everything if any(p.startswith("chain invalid") for p in c.problems))
    low_grade = tuple(c for c in everything if c.grade and c.grade not in GOOD_GRADES)
    too_long = tuple(c for c in everything if "validity longer than the policy allows" in c.problems)

    def line(policy: str, failing: Iterable[str]) -> PolicyLine:
        items = tuple(failing)
        return PolicyLine(policy=policy, passed=not items, failures=items)

    policies = (
        line("No expired certificate", (c.where for c in everything if c.tier == "expired")),
        line("No certificate in the critical tier", (c.where for c in everything if c.tier == "critical")),
        line("Every endpoint answers with a certificate", (f"{f.target} ({f.outcome})" for f in failed.values())),
        line("Every chain verifies", (c.where for c in chains)),
        line("No weak key", (c.where for c in weak_keys)),
        line("No weak signature hash", (c.where for c in weak_sigs)),
        line("No legacy protocol version accepted", (c.where for c, _ in legacy)),
        line("Grade B or better", (f"{c.where} ({c.grade})" for c in low_grade)),
        line("Validity within the policy's maximum", (c.where for c in too_long)),
        line("Every certificate has an owner", (c.where for c in unowned)),
    )
    return MonthlyCompliance(
        weak_keys=weak_keys,
        weak_signatures=weak_sigs,
        legacy_protocols=legacy,
        grades=dict(sorted(grades.items())),
        chain_issues=dict(sorted(issues.items())),
        unowned=unowned,
        longest_lived=longest,
        policies=policies,
        trend=trend,
    )


def _changes(now: Snapshot, before: Snapshot, *, since: float, first_seen: dict[Key, float]) -> tuple[Change, ...]:
    """Certificates whose leaf changed since ``since``: renewed (same subject), replaced, or new: first
    seen by the exporter since then (not its notBefore, which may be long ago or still to come)."""
    out = []
    for k, labels in now.tier.items():
        changed_at = now.last_change.get(k)
        info, old = now.info.get(k), before.info.get(k)
        if old is None and k not in before.tier:
            seen = first_seen.get(k)
            if seen is None or seen < since or not before.tier:
                continue  # there since before the period, or nothing to compare with
            kind, changed_at = "new", seen
        else:
            new_serial = info.get("serial") if info else ""
            old_serial = old.get("serial") if old else ""
            seen_change = changed_at is not None and changed_at >= since
            if not seen_change and not (old and new_serial and old_serial and new_serial != old_serial):
                continue
            kind = "renewed" if info and old and info.get("subject") == old.get("subject") else "replaced"
        out.append(
            Change(
                kind=kind,
                target=k[0],
                address=k[1],
                protocol=k[2],
                owner=labels.get("owner"),
                at=changed_at,
                subject=info.get("subject") if info else "",
                previous_subject=old.get("subject") if old else "",
                not_after=now.not_after.get(k),
                previous_not_after=before.not_after.get(k),
            )
        )
    return tuple(sorted(out, key=lambda c: (c.kind, c.target, c.address)))


def _trend(prom: Prometheus, start: float, end: float, step: float) -> tuple[TrendSeries, ...]:
    series = {s.labels.get("tier", ""): s.points for s in prom.range("count by (tier) (tls_cert_expiry_tier == 1)",
                                                                      start, end, step)}  # fmt: skip
    times = [start + i * step for i in range(int((end - start) // step) + 1)]
    out = []
    for tier in TIERS:
        points = dict(series.get(tier, ()))
        out.append(TrendSeries(name=tier, points=tuple((t, points.get(t, 0.0)) for t in times)))
    return tuple(out)


def _days_histogram(days: Iterable[float]) -> dict[str, int]:
    counts = dict.fromkeys(DAYS_BUCKETS, 0)
    for d in days:
        bucket = 0 if d < 0 else 1 if d < 7 else 2 if d < 30 else 3 if d < 90 else 4
        counts[DAYS_BUCKETS[bucket]] += 1
    return counts


def _tier_counts(snapshot: Snapshot) -> dict[str, int]:
    counts = Counter(s.get("tier") for s in snapshot.tier.values())
    return {tier: counts[tier] for tier in TIERS}


def _values(samples: Iterable[Sample]) -> dict[Key, float]:
    return {key_of(s): s.value for s in samples}


def _keys(samples: Iterable[Sample]) -> set[Key]:
    return {key_of(s) for s in samples}


def _grouped(samples: Iterable[Sample], label: str) -> dict[Key, tuple[str, ...]]:
    out: dict[Key, list[str]] = {}
    for s in samples:
        out.setdefault(key_of(s), []).append(s.get(label))
    return {k: tuple(sorted(v)) for k, v in out.items()}


_RANK = {Verdict.CRITICAL: 0, Verdict.WARNING: 1, Verdict.OK: 2}


def _worst_first(c: Certificate) -> tuple[int, float, str]:
    return (_RANK[c.verdict], c.days_left if c.days_left is not None else float("inf"), c.where)


def _where(item: Certificate | FailedEndpoint) -> tuple[str, str]:
    return (item.target, item.address)


def _title(period: ReportPeriod, start: float, end: float) -> str:
    def day(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d")

    what = {
        ReportPeriod.DAY: "Daily certificate status",
        ReportPeriod.WEEK: "Weekly certificate trend",
        ReportPeriod.MONTH: "Monthly certificate compliance",
    }[period]
    return f"{what}, {day(end)}" if period is ReportPeriod.DAY else f"{what}, {day(start)} to {day(end)}"
