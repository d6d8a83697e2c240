"""What a report says, as frozen data: built by ``build``, rendered by ``html``, ``markdown``
and ``jsonfmt``. Times are Unix seconds (UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.certs.findings import Verdict
from exporter.config.notify_model import ReportPeriod

TIERS = ("expired", "critical", "warning", "info", "ok")
DAYS_BUCKETS = ("expired", "0-7 days", "7-30 days", "30-90 days", "90+ days")


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificate:
    target: str
    address: str
    protocol: str
    position: str  # files: which certificate of the file; "" for endpoints
    server_name: str  # when the target names one that is part of its identity (series label), else ""
    name: str
    owner: str
    subject: str
    issuer: str
    tier: str
    days_left: float | None
    not_before: float | None
    not_after: float | None
    grade: str
    verdict: Verdict
    problems: tuple[str, ...]

    @property
    def where(self) -> str:
        if self.position:  # one of the certificates stored at the target (a file's)
            return f"{self.target} #{self.position}"
        where = f"{self.target} ({self.address})" if self.address and self.address != self.target else self.target
        return f"{where} [{self.server_name}]" if self.server_name else where

    @property
    def lifetime_days(self) -> float | None:
        if self.not_before is None or self.not_after is None:
            return None
        return (self.not_after - self.not_before) / 86400


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedEndpoint:
    target: str
    address: str
    protocol: str
    name: str
    owner: str
    outcome: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    kind: str  # renewed (same subject) | replaced (another subject) | new
    target: str
    address: str
    protocol: str
    owner: str
    at: float | None  # when the exporter saw the change
    subject: str
    previous_subject: str
    not_after: float | None
    previous_not_after: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendSeries:
    name: str  # a tier
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyLine:
    policy: str
    passed: bool
    failures: tuple[str, ...]  # where it fails


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyStatus:
    certificates: tuple[Certificate, ...]  # worst first
    failed: tuple[FailedEndpoint, ...]
    changes: tuple[Change, ...]  # in the last day
    tiers: dict[str, int] | None = None  # set when ``certificates`` was capped (max_rows): the counts of all


@dataclass(frozen=True, slots=True, kw_only=True)
class WeeklyTrend:
    renewed: tuple[Change, ...]
    replaced: tuple[Change, ...]
    newly_expiring: tuple[Certificate, ...]  # entered warning or critical this week
    expired: tuple[Certificate, ...]  # expired this week
    started_failing: tuple[FailedEndpoint, ...]
    days_left: dict[str, int]  # bucket -> certificates, at the end
    days_left_before: dict[str, int]  # the same a week earlier
    tiers: dict[str, int]
    tiers_before: dict[str, int]
    trend: tuple[TrendSeries, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthlyCompliance:
    weak_keys: tuple[Certificate, ...]
    weak_signatures: tuple[Certificate, ...]
    legacy_protocols: tuple[tuple[Certificate, str], ...]  # (certificate, versions accepted)
    grades: dict[str, int]
    chain_issues: dict[str, int]
    unowned: tuple[Certificate, ...]
    longest_lived: tuple[Certificate, ...]
    policies: tuple[PolicyLine, ...]
    trend: tuple[TrendSeries, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    period: ReportPeriod
    title: str
    start: float
    end: float
    prometheus_url: str
    dashboard_url: str | None
    totals: dict[str, int]  # certificates, ok, warning, critical, failed endpoints
    daily: DailyStatus
    weekly: WeeklyTrend | None = None
    monthly: MonthlyCompliance | None = None
    notes: tuple[str, ...] = field(default=())
