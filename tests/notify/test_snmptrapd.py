"""The running exporter relays a posted Alertmanager payload as traps to Debian's real snmptrapd:
SNMPv2c and SNMPv3 authPriv (SHA and SHA-256 with AES), decoded with the shipped MIB; a receiver
whose secret is missing fails alone, logged and counted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from e2e.harness import exporter_argv, free_port, http, one, parse_metrics, running, wait_for, wait_ready

from .payloads import alert, payload
from .trapd import ENGINE_ID, V3User, snmptrapd

COMMUNITY = "tls-test-community"
USERS = [
    V3User("tls-sha256", "SHA-256", "auth-pass-256", "priv-pass-256"),
    V3User("tls-sha", "SHA", "auth-pass-sha", "priv-pass-sha"),
]
ENV = {
    "TEST_SNMP_COMMUNITY": COMMUNITY,
    "TEST_AUTH_256": "auth-pass-256",
    "TEST_PRIV_256": "priv-pass-256",
    "TEST_AUTH_SHA": "auth-pass-sha",
    "TEST_PRIV_SHA": "priv-pass-sha",
}


def exporter_config(port: int) -> str:
    dest = f"127.0.0.1:{port}"
    return f"""
notifications:
  snmp:
    - {{destination: "{dest}", version: v2c, community_env: TEST_SNMP_COMMUNITY}}
    - destination: "{dest}"
      version: v3
      user: tls-sha256
      auth_protocol: SHA-256
      auth_password_env: TEST_AUTH_256
      priv_protocol: AES
      priv_password_env: TEST_PRIV_256
      engine_id: "0x{ENGINE_ID}"
    - destination: "{dest}"
      version: v3
      user: tls-sha
      auth_protocol: SHA
      auth_password_env: TEST_AUTH_SHA
      priv_protocol: AES
      priv_password_env: TEST_PRIV_SHA
      engine_id: "0x{ENGINE_ID}"
    - {{destination: "{dest}", version: v2c, community_env: TEST_SNMP_UNSET}}
"""


def test_posted_payload_reaches_snmptrapd_v2c_and_v3(tmp_path: Path) -> None:
    with snmptrapd(tmp_path / "trapd", community=COMMUNITY, users=USERS) as trapd:
        config = tmp_path / "exporter.yml"
        config.write_text(exporter_config(trapd.port))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "TEST_SNMP_UNSET"} | ENV
        with running("exporter", exporter_argv(config, port), tmp_path, env=env) as exporter:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, exporter)
            body = payload(
                alert("TLSCertificateExpired", owner="payments", server_owner="web-team", days_left="-2.5",
                      summary="Certificate of Shop front end has expired",
                      remedy="Renew the certificate now, install it with its full chain and reload the service."),
                alert("TLSEndpointConnectionRefused", owner="hsm-team", target="hsm.example.com:8443",
                      address="192.0.2.20:8443", protocol="tls"),
                alert("TLSCertificateExpiryWarning", status="resolved", severity="warning", days_left="29.96"),
            )  # fmt: skip
            resp = http(f"{base}/alertmanager/snmp", method="POST", data=body)
            assert resp.status == 200, resp.body
            assert resp.json() == {"sent": 9, "failed": 3}

            traps = wait_for(
                lambda: t if len(t := trapd.traps()) >= 9 else None,
                timeout=20,
                what="9 traps at snmptrapd",
                proc=exporter,
            )
            metrics = parse_metrics(http(f"{base}/metrics").body)
            stderr = exporter.stderr()

    assert len(traps) == 9, trapd.log()
    by_security: dict[str, list[str]] = {}
    for trap in traps:
        by_security.setdefault(trap.security, []).append(trap.values["tlsAlertName"])
    v2c = [s for s in by_security if COMMUNITY in s]
    assert len(v2c) == 1 and by_security[v2c[0]] == [
        "TLSCertificateExpired", "TLSEndpointConnectionRefused", "TLSCertificateExpiryWarning",
    ]  # fmt: skip
    for user in ("tls-sha256", "tls-sha"):
        matching = [s for s in by_security if f"SNMP v3, user {user}," in s]
        assert len(matching) == 1, (user, by_security)
        assert sorted(by_security[matching[0]]) == sorted(by_security[v2c[0]])

    expired = next(t for t in traps if t.values["tlsAlertName"] == "TLSCertificateExpired")
    assert expired.oid == "TLS-EXPORTER-MIB::tlsAlertFiring"
    assert expired.values == expired.values | {
        "tlsAlertStatus": "firing(1)",
        "tlsAlertSeverity": "critical(1)",
        "tlsAlertOwner": "payments",
        "tlsAlertServerOwner": "web-team",
        "tlsAlertTarget": "shop.example.com",
        "tlsAlertAddress": "192.0.2.10:443",
        "tlsAlertProtocol": "https",
        "tlsAlertDaysLeft": "-2.5",
        "tlsAlertSummary": "Certificate of Shop front end has expired",
        "tlsAlertRemedy": "Renew the certificate now, install it with its full chain and reload the service.",
    }
    refused = next(t for t in traps if t.values["tlsAlertName"] == "TLSEndpointConnectionRefused")
    assert refused.values["tlsAlertServerOwner"] == "hsm-team"  # no server_owner label: the owner
    assert refused.values["tlsAlertDaysLeft"] == ""  # unknown: not configured here, no annotation
    resolved = [t for t in traps if t.values["tlsAlertName"] == "TLSCertificateExpiryWarning"]
    assert len(resolved) == 3
    for trap in resolved:
        assert trap.oid == "TLS-EXPORTER-MIB::tlsAlertResolved"
        assert trap.values["tlsAlertStatus"] == "resolved(2)"
        assert trap.values["tlsAlertSeverity"] == "warning(2)"
        assert trap.values["tlsAlertDaysLeft"] == "30.0"

    dest = f"127.0.0.1:{trapd.port}"
    assert stderr.count(f"SNMP trap sent to trap host {dest}") == 9, stderr
    assert (
        stderr.count(
            f"SNMP trap not sent to trap host {dest}: environment variable TEST_SNMP_UNSET (community) is not set"
        )
        == 3
    ), stderr
    assert one(metrics, "tls_exporter_notifications_total", channel="snmp", result="sent").value == 9
    assert one(metrics, "tls_exporter_notifications_total", channel="snmp", result="error").value == 3


# pysnmp's SnmpEngine opens its boots file (/tmp/__pysnmp/<engine id>/boots) and leaves it to the
# garbage collector: a library leak, seen here only because this test runs pysnmp in-process.
@pytest.mark.filterwarnings("ignore:Exception ignored in.*__pysnmp/.*/boots:pytest.PytestUnraisableExceptionWarning")
async def test_a_trap_queued_before_the_socket_exists_still_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first trap of an engine is queued by pysnmp until its UDP endpoint is made. When the
    loop is slow to make it (a loaded machine; here a 0.3 s delay injected into the endpoint's
    creation), closing the engine right after "sent" dropped the trap: it must reach snmptrapd."""
    import asyncio

    from exporter.config.parse import parse_config
    from exporter.notify.alerts import parse_payload
    from exporter.notify.snmp import SnmpTrapSender
    from exporter.notify.trap import TrapContent

    loop = asyncio.get_running_loop()
    make_endpoint = loop.create_datagram_endpoint

    async def slow_endpoint(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0.3)
        return await make_endpoint(*args, **kwargs)  # type: ignore[arg-type]

    with snmptrapd(tmp_path / "trapd", community=COMMUNITY, users=USERS) as trapd:
        config = parse_config(yaml.safe_load(exporter_config(trapd.port)), base_dir=tmp_path)
        v3 = config.notifications.snmp[1]
        [expired] = parse_payload(json.loads(payload(alert("TLSCertificateExpired", days_left="-1"))))
        monkeypatch.setattr(loop, "create_datagram_endpoint", slow_endpoint)
        async with SnmpTrapSender(environ=ENV).session(v3) as send:
            await send(TrapContent(alert=expired, days_left=-1.0))
        monkeypatch.undo()
        traps = await asyncio.to_thread(
            wait_for, lambda: trapd.traps() or None, timeout=20, what="the trap at snmptrapd"
        )
    [trap] = traps
    assert trap.values["tlsAlertName"] == "TLSCertificateExpired" and "SNMP v3, user tls-sha256," in trap.security


@pytest.mark.filterwarnings("ignore:Exception ignored in.*__pysnmp/.*/boots:pytest.PytestUnraisableExceptionWarning")
async def test_concurrent_v3_batches_all_arrive(tmp_path: Path) -> None:
    """Alertmanager posts groups at once: each batch opens its own engine, and each engine raises the
    engine's boots; batches to one v3 receiver take turns, so no trap carries boots older than one
    snmptrapd already saw (which it would drop as outside the time window)."""
    import asyncio

    from exporter.config.parse import parse_config
    from exporter.notify.alerts import parse_payload
    from exporter.notify.snmp import SnmpTrapSender
    from exporter.notify.trap import TrapContent

    names = [f"TLSCertificateExpired{i}" for i in range(6)]
    with snmptrapd(tmp_path / "trapd", community=COMMUNITY, users=USERS) as trapd:
        config = parse_config(yaml.safe_load(exporter_config(trapd.port)), base_dir=tmp_path)
        v3 = config.notifications.snmp[1]
        sender = SnmpTrapSender(environ=ENV)

        async def batch(name: str) -> None:
            [one_alert] = parse_payload(json.loads(payload(alert(name))))
            async with sender.session(v3) as send:
                await send(TrapContent(alert=one_alert, days_left=None))

        await asyncio.gather(*(batch(name) for name in names))
        traps = await asyncio.to_thread(
            wait_for, lambda: t if len(t := trapd.traps()) >= len(names) else None, timeout=20, what="6 traps"
        )
    assert sorted(t.values["tlsAlertName"] for t in traps) == names
