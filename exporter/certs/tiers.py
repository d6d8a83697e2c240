"""Expiry tiers: which alarm tier a certificate is in, computed at scrape time."""

from __future__ import annotations

from enum import StrEnum

from exporter.config.model import ExpiryTiers, Threshold

DAY = 86400.0


class Tier(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    EXPIRED = "expired"


def days_left(not_after: float, now: float) -> float:
    return (not_after - now) / DAY


def _below(threshold: Threshold | None, left: float, lifetime: float) -> bool:
    if threshold is None:
        return False
    if threshold.days is not None:
        return left < threshold.days * DAY
    if threshold.percent is not None and lifetime > 0:
        return left < lifetime * threshold.percent / 100.0
    return False


def tier_of(not_before: float, not_after: float, now: float, tiers: ExpiryTiers) -> Tier:
    """The most severe tier whose threshold the time left is below. notAfter is inclusive (RFC 5280
    4.1.2.5: valid *through* notAfter, a time to the second): expired once that second has passed."""
    left = not_after - now
    if left <= -1:
        return Tier.EXPIRED
    lifetime = not_after - not_before
    for tier, threshold in ((Tier.CRITICAL, tiers.critical), (Tier.WARNING, tiers.warning), (Tier.INFO, tiers.info)):
        if _below(threshold, left, lifetime):
            return tier
    return Tier.OK
