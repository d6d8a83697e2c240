"""SNMP traps with pysnmp: one trap per alert to each configured receiver (v2c or v3 USM).

Secrets come from environment variables read at send time. A trap is a single UDP datagram with
no answer, so "sent" means handed to the network: what can fail is on our side (a missing secret,
a name that does not resolve, an encoding error), and that fails only the traps it concerns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_NONE,
    USM_PRIV_CFB128_AES,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    NotificationType,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    send_notification,
)
from pysnmp.proto.rfc1902 import Integer32, OctetString

from exporter.config.notify_model import SnmpAuthProtocol, SnmpPrivProtocol, SnmpReceiver, SnmpVersion
from exporter.notify import mib
from exporter.notify.alerts import Alert, AlertStatus
from exporter.notify.trap import SendOne, SnmpSendError, TrapContent

USM_MIN_PASSWORD = 8  # RFC 3414 11.2: shorter pass phrases are refused by agents and receivers
SEND_TIMEOUT = 5.0  # resolving the destination and queueing the datagram

_AUTH = {SnmpAuthProtocol.SHA: USM_AUTH_HMAC96_SHA, SnmpAuthProtocol.SHA256: USM_AUTH_HMAC192_SHA256}
_PRIV = {SnmpPrivProtocol.AES: USM_PRIV_CFB128_AES}
_SEVERITY = {
    "critical": mib.SeverityValue.CRITICAL,
    "warning": mib.SeverityValue.WARNING,
    "info": mib.SeverityValue.INFO,
}


def default_engine_id(hostname: str | None = None) -> str:
    """RFC 3411 engine ID: our enterprise number, format 5 (octets), 8 bytes from the host name.

    Stable across restarts, so a trap receiver configured with it (snmptrapd's
    ``createUser -e``) keeps decoding v3 traps; set ``engine_id`` to choose it yourself.
    """
    name = (hostname or socket.gethostname()).encode()
    return f"{0x80000000 | mib.ENTERPRISE_NUMBER:08x}05{hashlib.sha256(name).hexdigest()[:16]}"


async def _flushed(engine: SnmpEngine, timeout: float = SEND_TIMEOUT) -> None:
    """Wait until every trap sent is on the socket, before the engine closes.

    A trap is "sent" once pysnmp has it; while the UDP endpoint is still being created (its first
    send), pysnmp queues the datagram and writes it only when the endpoint is made. Closing the
    engine before that cancels the endpoint and drops the queued traps: seen under load, a v3 trap
    logged as sent that never reached snmptrapd. So the endpoint is awaited (bounded) first."""
    dispatcher = engine.transport_dispatcher
    transports = getattr(dispatcher, "_AbstractTransportDispatcher__transports", {}) if dispatcher else {}
    for transport in list(transports.values()):
        opening = getattr(transport, "_lport", None)  # the endpoint being created
        if isinstance(opening, asyncio.Future) and not opening.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(opening), timeout)
    await asyncio.sleep(0)  # connection_made has written what was queued


def varbinds(content: TrapContent) -> list[tuple[tuple[int, ...], Any]]:
    """The (OID, value) pairs of the trap, in the order of the MIB's OBJECTS clause."""
    a = content.alert
    status = mib.StatusValue.FIRING if a.status is AlertStatus.FIRING else mib.StatusValue.RESOLVED
    days = "" if content.days_left is None else f"{content.days_left:.1f}"
    values: dict[str, Any] = {
        "tlsAlertName": _text(a.name),
        "tlsAlertStatus": Integer32(int(status)),
        "tlsAlertSeverity": Integer32(int(_SEVERITY.get(a.severity, mib.SeverityValue.OTHER))),
        "tlsAlertOwner": _text(a.owner),
        "tlsAlertServerOwner": _text(a.server_owner),
        "tlsAlertTarget": _text(a.target),
        "tlsAlertAddress": _text(a.address),
        "tlsAlertProtocol": _text(a.protocol),
        "tlsAlertDaysLeft": _text(days),
        "tlsAlertSummary": _text(a.summary),
        "tlsAlertRemedy": _text(a.remedy),
    }
    return [(mib.VARBINDS[name], value) for name, value in values.items()]


def trap_oid(alert: Alert) -> tuple[int, ...]:
    return mib.TRAP_FIRING if alert.status is AlertStatus.FIRING else mib.TRAP_RESOLVED


def _text(value: str) -> OctetString:
    # DisplayString is at most 255 octets; cut on a character boundary.
    data = value.encode()
    if len(data) > mib.DISPLAY_STRING_MAX:
        data = data[: mib.DISPLAY_STRING_MAX].decode(errors="ignore").encode()
    return OctetString(data)


class SnmpTrapSender:
    """Opens one short-lived SNMP engine per receiver and batch; ``session`` yields a send function."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = environ
        # One v3 session at a time per engine ID. Each SnmpEngine raises the engine's boots counter
        # (pysnmp keeps it on disk); two made at once race on it, and a trap carrying the lower
        # boots that arrives after one with the higher is outside the receiver's time window and
        # dropped (seen: a v3 trap logged as sent, never at snmptrapd). In turn, boots rise in the
        # order the traps leave.
        self._v3_turns: dict[str, asyncio.Lock] = {}

    def _env(self, name: str | None, what: str) -> str:
        value = (self._environ if self._environ is not None else os.environ).get(name or "")
        if not value:
            raise SnmpSendError(f"environment variable {name} ({what}) is not set")
        return value

    def _auth(self, receiver: SnmpReceiver) -> CommunityData | UsmUserData:
        if receiver.version is SnmpVersion.V2C:
            return CommunityData(self._env(receiver.community_env, "community"), mpModel=1)
        auth_key = priv_key = None
        if receiver.auth_protocol is not None:
            auth_key = self._password(receiver.auth_password_env, "auth password")
        if receiver.priv_protocol is not None:
            priv_key = self._password(receiver.priv_password_env, "privacy password")
        return UsmUserData(
            receiver.user or "",
            authKey=auth_key,
            privKey=priv_key,
            authProtocol=_AUTH[receiver.auth_protocol] if receiver.auth_protocol else USM_AUTH_NONE,
            privProtocol=_PRIV[receiver.priv_protocol] if receiver.priv_protocol else USM_PRIV_NONE,
        )

    def _password(self, env: str | None, what: str) -> str:
        value = self._env(env, what)
        if len(value) < USM_MIN_PASSWORD:
            raise SnmpSendError(f"{what} from {env} is shorter than {USM_MIN_PASSWORD} characters (USM needs 8)")
        return value

    @asynccontextmanager
    async def session(self, receiver: SnmpReceiver) -> AsyncIterator[SendOne]:
        """Raises SnmpSendError when nothing can be sent to this receiver (secret, name)."""
        auth = self._auth(receiver)
        engine_id = receiver.engine_id or default_engine_id()
        if receiver.version is SnmpVersion.V3:
            turn = self._v3_turns.setdefault(engine_id, asyncio.Lock())
            async with turn, self._engine_session(receiver, auth, engine_id) as send:
                yield send
        else:
            async with self._engine_session(receiver, auth, engine_id) as send:
                yield send

    @asynccontextmanager
    async def _engine_session(
        self, receiver: SnmpReceiver, auth: CommunityData | UsmUserData, engine_id: str
    ) -> AsyncIterator[SendOne]:
        engine = (
            SnmpEngine(snmpEngineID=OctetString(hexValue=engine_id))
            if receiver.version is SnmpVersion.V3
            else (SnmpEngine())
        )
        try:
            try:
                target = await asyncio.wait_for(UdpTransportTarget.create((receiver.host, receiver.port)), SEND_TIMEOUT)
            except (OSError, TimeoutError, Exception) as exc:  # pysnmp wraps resolution errors in its own
                raise SnmpSendError(f"cannot resolve {receiver.host}: {exc}") from None

            async def send(content: TrapContent) -> None:
                notification = NotificationType(ObjectIdentity(trap_oid(content.alert))).add_varbinds(
                    *(ObjectType(ObjectIdentity(oid), value) for oid, value in varbinds(content))
                )
                try:
                    error, _, _, _ = await send_notification(
                        engine, auth, target, ContextData(), "trap", notification, lookupMib=False
                    )
                except Exception as exc:  # pysnmp raises its own errors for encoding and transport faults
                    raise SnmpSendError(f"{type(exc).__name__}: {exc}") from None
                if error:
                    raise SnmpSendError(str(error))

            yield send
            await _flushed(engine)
        finally:
            engine.close_dispatcher()
