"""What the webhook hands to a trap sender, kept apart from pysnmp so that importing the web
layer (and the `check` command) does not load the SNMP stack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from exporter.notify.alerts import Alert


class SnmpSendError(Exception):
    """A trap could not be sent; the message says why (it goes to the log as is)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapContent:
    """What one trap says: the alert and the days left known when it is sent."""

    alert: Alert
    days_left: float | None


SendOne = Callable[[TrapContent], Awaitable[None]]
