"""POST /alertmanager/snmp in process, with a recording sender: every alert of a batch is tried,
one failure loses nothing else, each trap is logged and counted."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from exporter.config.notify_model import SnmpReceiver, SnmpVersion
from exporter.notify.alerts import Alert, AlertStatus
from exporter.notify.snmp import varbinds
from exporter.notify.trap import SendOne, SnmpSendError, TrapContent
from exporter.notify.webhook import SnmpWebhook

from .payloads import alert, payload

GOOD = SnmpReceiver(destination="127.0.0.1:1162", host="127.0.0.1", port=1162, version=SnmpVersion.V2C,
                    community_env="C")  # fmt: skip
BROKEN = SnmpReceiver(destination="nms.invalid:162", host="nms.invalid", port=162, version=SnmpVersion.V2C,
                      community_env="C")  # fmt: skip


class RecordingSender:
    """Fails the traps of alerts named in ``fail``, and every trap of the BROKEN receiver."""

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.sent: list[tuple[str, str, str, float | None]] = []

    @asynccontextmanager
    async def session(self, receiver: SnmpReceiver) -> AsyncIterator[SendOne]:
        if receiver is BROKEN:
            raise SnmpSendError("cannot resolve nms.invalid")

        async def send(content: TrapContent) -> None:
            if content.alert.name in self.fail:
                raise SnmpSendError("encoding failed")
            self.sent.append((receiver.destination, content.alert.name, content.alert.status, content.days_left))

        yield send


async def _post(app: web.Application, body: bytes) -> tuple[int, dict[str, object]]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/alertmanager/snmp", data=body) as resp,
        ):
            return resp.status, await resp.json()
    finally:
        await runner.cleanup()


def _app(hook: SnmpWebhook) -> web.Application:
    app = web.Application()
    app.router.add_post("/alertmanager/snmp", hook.handle)
    return app


async def test_one_failure_loses_no_other_trap(caplog: pytest.LogCaptureFixture) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    sender = RecordingSender(fail={"TLSChainInvalid"})
    hook = SnmpWebhook(
        lambda: (GOOD, BROKEN),
        lambda channel, result: counts.update([(channel, result)]),
        days_left=lambda a: 6.94 if a.name == "TLSCertificateExpiryCritical" else None,
        sender=sender,
    )
    body = payload(
        alert("TLSCertificateExpiryCritical"),
        alert("TLSChainInvalid"),
        alert("TLSCertificateWeakKey", status="resolved", severity="warning", days_left="40.25"),
    )
    with caplog.at_level(logging.INFO, logger="exporter.notify"):
        status, doc = await _post(_app(hook), body)
    assert status == 200
    assert doc == {"sent": 2, "failed": 4}
    # The alert after the failed one still went out; days left from the lookup or the annotation.
    assert sender.sent == [
        ("127.0.0.1:1162", "TLSCertificateExpiryCritical", "firing", 6.94),
        ("127.0.0.1:1162", "TLSCertificateWeakKey", "resolved", 40.25),
    ]
    assert counts == {("snmp", "sent"): 2, ("snmp", "error"): 4}
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("SNMP trap sent to trap host 127.0.0.1:1162") == 2
    assert messages.count("SNMP trap not sent to trap host 127.0.0.1:1162: encoding failed") == 1
    assert messages.count("SNMP trap not sent to trap host nms.invalid:162: cannot resolve nms.invalid") == 3


async def test_bad_payload_is_400_and_sends_nothing() -> None:
    counts: Counter[tuple[str, str]] = Counter()
    sender = RecordingSender(fail=set())
    hook = SnmpWebhook(lambda: (GOOD,), lambda c, r: counts.update([(c, r)]), sender=sender)
    status, doc = await _post(_app(hook), json.dumps({"alerts": [{"status": "pending"}]}).encode())
    assert status == 400
    assert doc == {"error": "alerts[0].status: expected 'firing' or 'resolved', got 'pending'"}
    status, doc = await _post(_app(hook), b"not json")
    assert status == 400
    assert sender.sent == [] and not counts


async def test_no_receiver_configured_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    hook = SnmpWebhook(lambda: (), lambda c, r: None, sender=RecordingSender(fail=set()))
    with caplog.at_level(logging.WARNING, logger="exporter.notify"):
        status, doc = await _post(_app(hook), payload(alert("TLSCertificateExpired")))
    assert status == 200 and doc["sent"] == 0
    assert "SNMP traps not sent: no notifications.snmp receivers configured" in caplog.text


def test_varbinds_follow_the_mib_and_cut_long_text() -> None:
    a = Alert(
        name="TLSCertificateExpired", status=AlertStatus.RESOLVED, severity="info", owner="payments",
        server_owner="web-team", target="shop.example.com", address="[2001:db8::1]:443", protocol="https",
        summary="é" * 200, remedy="Renew.",
    )  # fmt: skip
    pairs = varbinds(TrapContent(alert=a, days_left=-1.04))
    values = [v.prettyPrint() for _, v in pairs]
    assert values[:9] == [
        "TLSCertificateExpired", "2", "3", "payments", "web-team", "shop.example.com", "[2001:db8::1]:443",
        "https", "-1.0",
    ]  # fmt: skip
    summary = bytes(pairs[9][1])
    assert len(summary) == 254 and summary.decode() == "é" * 127  # 255 octets would split a character
    assert [oid[-2] for oid, _ in pairs] == list(range(1, 12))
