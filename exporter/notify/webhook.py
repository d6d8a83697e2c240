"""`POST /alertmanager/snmp`: an Alertmanager webhook receiver that turns each alert into traps.

One trap per alert and per configured receiver, firing and resolved alike. Every trap is
tried, whatever happened to the others of the batch; each one is logged (``SNMP trap sent to
trap host X`` or why not) and counted in ``tls_exporter_notifications_total{channel="snmp"}``.
The answer is 200 once the payload was read, even when a trap failed: Alertmanager would
otherwise send the whole batch again, repeating the traps that did go out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from aiohttp import web

from exporter.config.notify_model import SnmpReceiver
from exporter.notify.alerts import Alert, PayloadError, parse_payload
from exporter.notify.trap import SendOne, SnmpSendError, TrapContent

log = logging.getLogger("exporter.notify")
CHANNEL = "snmp"
MAX_BODY = 4 * 1024 * 1024  # a batch of a few thousand alerts

Count = Callable[[str, str], None]  # (channel, result) -> increment
DaysLeft = Callable[[Alert], float | None]


class Sender(Protocol):
    def session(self, receiver: SnmpReceiver) -> AbstractAsyncContextManager[SendOne]: ...


class SnmpWebhook:
    def __init__(
        self,
        receivers: Callable[[], tuple[SnmpReceiver, ...]],
        count: Count,
        *,
        days_left: DaysLeft | None = None,
        sender: Sender | None = None,
    ) -> None:
        self._receivers = receivers
        self._count = count
        self._days_left = days_left
        self._sender = sender

    def _get_sender(self) -> Sender:
        if self._sender is None:
            from exporter.notify.snmp import SnmpTrapSender  # pysnmp loads on the first batch only

            self._sender = SnmpTrapSender()
        return self._sender

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.content.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise PayloadError(f"payload larger than {MAX_BODY} bytes")
            alerts = parse_payload(json.loads(body))
        except (PayloadError, ValueError) as exc:
            log.warning("SNMP webhook: payload rejected", extra={"fields": {"error": str(exc)}})
            return web.json_response({"error": str(exc)}, status=400)
        receivers = self._receivers()
        if not receivers:
            log.warning(
                "SNMP traps not sent: no notifications.snmp receivers configured",
                extra={"fields": {"alerts": len(alerts)}},
            )
            return web.json_response({"sent": 0, "failed": 0, "error": "no notifications.snmp receivers configured"})
        contents = [TrapContent(alert=a, days_left=self._days(a)) for a in alerts]
        # One receiver after the other: pysnmp engines in one process share caches (USM keys by
        # engine ID), and a batch is small enough that parallel sends would gain nothing.
        results = [await self._send_all(r, contents) for r in receivers]
        sent = sum(ok for ok, _ in results)
        failed = sum(bad for _, bad in results)
        return web.json_response({"sent": sent, "failed": failed})

    def _days(self, alert: Alert) -> float | None:
        if alert.days_left is not None:
            return alert.days_left
        return self._days_left(alert) if self._days_left is not None else None

    async def _send_all(self, receiver: SnmpReceiver, contents: list[TrapContent]) -> tuple[int, int]:
        sent = failed = 0
        try:
            async with self._get_sender().session(receiver) as send:
                for content in contents:
                    try:
                        await send(content)
                    except SnmpSendError as exc:
                        self._failed(receiver, content.alert, str(exc))
                        failed += 1
                    else:
                        self._sent(receiver, content.alert)
                        sent += 1
        except SnmpSendError as exc:
            # Nothing can go to this receiver: every trap not yet tried fails with the reason.
            for content in contents[sent + failed :]:
                self._failed(receiver, content.alert, str(exc))
                failed += 1
        return sent, failed

    def _sent(self, receiver: SnmpReceiver, alert: Alert) -> None:
        self._count(CHANNEL, "sent")
        log.info(f"SNMP trap sent to trap host {receiver.destination}", extra={"fields": _fields(receiver, alert)})

    def _failed(self, receiver: SnmpReceiver, alert: Alert, reason: str) -> None:
        self._count(CHANNEL, "error")
        log.error(
            f"SNMP trap not sent to trap host {receiver.destination}: {reason}",
            extra={"fields": {**_fields(receiver, alert), "error": reason}},
        )


def _fields(receiver: SnmpReceiver, alert: Alert) -> dict[str, object]:
    return {
        "version": receiver.version.value,
        "alertname": alert.name,
        "status": alert.status.value,
        "target": alert.target,
        "address": alert.address,
    }
