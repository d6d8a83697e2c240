"""Leaf analysis end to end: serve each fixture certificate, probe it, render /metrics, read values back."""

from __future__ import annotations

import dataclasses
import time

import pytest
from helpers import Samples, make_config, make_target, parse, render, states, value
from pki import PKI
from servers import LoopbackServers, closed_port

from exporter.config.model import Config, Expect, ExpiryTiers, OwnerRule, Profile, Target, Threshold
from exporter.metrics.render import StoreRenderer
from exporter.pipeline import Pipeline
from exporter.schedule.store import Store

DAY = 86400.0


async def scrape(config: Config, now: float | None = None) -> Samples:
    store = Store()
    store.apply_config(config.targets)
    prober = Pipeline()
    for target in config.targets:
        store.record(target, await prober.probe(target, config))
    clock = (lambda: now) if now is not None else time.time
    return parse(render(StoreRenderer(store, lambda: config, clock=clock)))


async def scrape_leaf(servers: LoopbackServers, pki: PKI, leaf: str, **target_args: object) -> tuple[Samples, Target]:
    port = servers.tls(pki[leaf].server_context())
    target = make_target(port, **target_args)  # type: ignore[arg-type]
    return await scrape(make_config(target)), target


def days_expected(pki: PKI, leaf: str) -> float:
    return (pki[leaf].cert.not_valid_after_utc.timestamp() - time.time()) / DAY


@pytest.mark.parametrize(
    ("leaf", "tier"),
    [
        ("good", "ok"),
        ("expiring-60d", "info"),
        ("expiring-20d", "warning"),
        ("expiring-5d", "critical"),
        ("expired", "expired"),
    ],
)
async def test_days_and_tier(servers: LoopbackServers, pki: PKI, leaf: str, tier: str) -> None:
    s, t = await scrape_leaf(servers, pki, leaf)
    labels = {"target": t.target}
    assert value(s, "tls_probe_success", **labels) == 1
    assert value(s, "tls_cert_days_until_expiry", **labels) == pytest.approx(days_expected(pki, leaf), abs=0.01)
    tiers = states(s, "tls_cert_expiry_tier", "tier", **labels)
    assert tiers == {k: (1.0 if k == tier else 0.0) for k in ("ok", "info", "warning", "critical", "expired")}
    assert value(s, "tls_cert_not_after_timestamp_seconds", **labels) == pki[leaf].cert.not_valid_after_utc.timestamp()
    assert (
        value(s, "tls_cert_not_before_timestamp_seconds", **labels) == pki[leaf].cert.not_valid_before_utc.timestamp()
    )


async def test_expired_days_are_negative(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "expired")
    assert value(s, "tls_cert_days_until_expiry") == pytest.approx(-10, abs=0.01)


async def test_days_are_computed_at_scrape_time(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["expiring-20d"].server_context())
    config = make_config(make_target(port))
    later = time.time() + 15 * DAY
    s = await scrape(config, now=later)
    assert value(s, "tls_cert_days_until_expiry") == pytest.approx(5, abs=0.01)
    assert states(s, "tls_cert_expiry_tier", "tier")["critical"] == 1


async def test_identity_connection_and_chain(servers: LoopbackServers, pki: PKI) -> None:
    s, t = await scrape_leaf(servers, pki, "good")
    good = pki["good"]
    info = s["tls_cert_info"][0][0]
    assert info["serial"] == good.serial_hex
    assert info["fingerprint_sha256"] == good.fingerprint
    assert info["subject"] == "O=tls-exporter tests,CN=localhost"
    assert info["issuer"] == "O=tls-exporter tests,CN=Test Intermediate CA"
    assert info["sans"] == "localhost,good.test,127.0.0.1,::1"
    assert info["address"] == t.target and info["protocol"] == "tls" and info["name"] == t.target
    assert value(s, "tls_cert_hostname_match") == 1
    assert value(s, "tls_cert_key_bits", key_type="ec") == 256
    assert value(s, "tls_cert_key_weak") == 0
    assert value(s, "tls_cert_signature_info", algorithm="ecdsa-with-SHA256", hash="sha256") == 1
    assert value(s, "tls_cert_signature_weak") == 0
    ((conn_labels, conn_value),) = s["tls_connection_info"]
    assert conn_value == 1 and conn_labels["version"] == "TLSv1.3" and conn_labels["cipher"].startswith("TLS_")
    chain = {
        lbl["position"]: (lbl["role"], lbl["serial"], v) for lbl, v in s["tls_chain_cert_not_after_timestamp_seconds"]
    }
    assert chain == {
        "0": ("leaf", good.serial_hex, good.cert.not_valid_after_utc.timestamp()),
        "1": (
            "intermediate",
            format(pki.intermediate.cert.serial_number, "x"),
            pki.intermediate.cert.not_valid_after_utc.timestamp(),
        ),
    }
    assert value(s, "tls_chain_days_until_expiry") == pytest.approx(days_expected(pki, "good"), abs=0.01)
    assert value(s, "tls_target_distinct_certificates") == 1
    # First sighting: last change is the certificate's issue date (the best estimate there is).
    assert value(s, "tls_cert_last_change_timestamp_seconds") == good.cert.not_valid_before_utc.timestamp()
    outcome = states(s, "tls_handshake_outcome", "outcome")
    assert outcome["certificate_found"] == 1 and sum(outcome.values()) == 1 and len(outcome) == 10


async def test_series_count_per_address_stays_small(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "good")
    per_address = sum(len(v) for k, v in s.items() if k != "tls_target_distinct_certificates")
    assert per_address <= 45


async def test_wrong_host(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "wrong-host")
    assert value(s, "tls_cert_hostname_match") == 0


async def test_hostname_match_by_ip_literal(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "good", server_name="127.0.0.1")
    assert value(s, "tls_cert_hostname_match") == 1


async def test_weak_rsa_key(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "rsa-1024")
    assert value(s, "tls_cert_key_bits", key_type="rsa") == 1024
    assert value(s, "tls_cert_key_weak") == 1


async def test_rsa_2048_is_not_weak(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "good-rsa")
    assert value(s, "tls_cert_key_bits", key_type="rsa") == 2048
    assert value(s, "tls_cert_key_weak") == 0


async def test_sha1_signature_is_weak(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "sha1")
    assert value(s, "tls_cert_signature_info", hash="sha1") == 1
    assert (
        s["tls_cert_signature_info"][0][0]["algorithm"] == "ecdsa-with-SHA1"
    )  # the EC intermediate signed it with SHA-1
    assert value(s, "tls_cert_signature_weak") == 1


async def test_self_signed_and_not_yet_valid(servers: LoopbackServers, pki: PKI) -> None:
    s, _ = await scrape_leaf(servers, pki, "self-signed")
    chain = s["tls_chain_cert_not_after_timestamp_seconds"]
    assert [lbl["role"] for lbl, _ in chain] == ["leaf"]
    s, _ = await scrape_leaf(servers, pki, "not-yet-valid")
    assert value(s, "tls_cert_days_until_expiry") == pytest.approx(days_expected(pki, "not-yet-valid"), abs=0.01)
    assert states(s, "tls_cert_expiry_tier", "tier")["ok"] == 1


async def test_expected_serial_and_fingerprint(servers: LoopbackServers, pki: PKI) -> None:
    good = pki["good"]
    s, _ = await scrape_leaf(
        servers, pki, "good", expect=Expect(serial=good.serial_hex, fingerprint_sha256=good.fingerprint)
    )
    assert value(s, "tls_cert_expected_match", check="serial") == 1
    assert value(s, "tls_cert_expected_match", check="fingerprint") == 1
    s, _ = await scrape_leaf(servers, pki, "good", expect=Expect(serial=pki["expired"].serial_hex))
    assert value(s, "tls_cert_expected_match", check="serial") == 0
    assert "fingerprint" not in {lbl["check"] for lbl, _ in s["tls_cert_expected_match"]}


async def test_percentage_tiers(servers: LoopbackServers, pki: PKI) -> None:
    # expiring-20d lives 90 days and has 20 left: 22% of its lifetime.
    port = servers.tls(pki["expiring-20d"].server_context())
    pct = Profile(
        name="pct", expiry_tiers=ExpiryTiers(info=None, warning=Threshold(percent=33), critical=Threshold(percent=10))
    )
    target = make_target(port, profile="pct")
    s = await scrape(make_config(target, profiles=[pct]))
    assert states(s, "tls_cert_expiry_tier", "tier")["warning"] == 1
    tight = Profile(name="pct", expiry_tiers=ExpiryTiers(critical=Threshold(percent=25)))
    s = await scrape(make_config(target, profiles=[tight]))
    assert states(s, "tls_cert_expiry_tier", "tier")["critical"] == 1


async def test_owner_precedence(servers: LoopbackServers, pki: PKI) -> None:
    port = servers.tls(pki["good"].server_context())
    rule = OwnerRule(field="subject_cn", pattern="LOCAL*", owner="payments")
    with_rule = make_config(make_target(port, owner="web-team"), owners=[rule], default_owner="platform")
    ruled = await scrape(with_rule)
    assert {lbl["owner"] for lbl, _ in ruled["tls_cert_info"]} == {"payments"}
    # Two layers: the rule's owner, and the team that runs the server, so an alert can reach both.
    assert {lbl.get("server_owner") for lbl, _ in ruled["tls_cert_info"]} == {"web-team"}
    target_owner = make_config(make_target(port, owner="web-team"), default_owner="platform")
    plain = await scrape(target_owner)
    assert {lbl["owner"] for lbl, _ in plain["tls_cert_info"]} == {"web-team"}
    assert not any("server_owner" in lbl for lbl, _ in plain["tls_cert_info"])  # only when they differ


async def test_failed_probe_has_no_certificate_series() -> None:
    target = make_target(closed_port(), labels=(("env", "prod"),))
    s = await scrape(make_config(target))
    assert value(s, "tls_probe_success", env="prod") == 0
    assert states(s, "tls_handshake_outcome", "outcome")["connection_refused"] == 1
    assert not any(k.startswith(("tls_cert_", "tls_chain_")) for k in s)
    assert "tls_cert_expiry_tier" not in s


async def test_dns_error_has_one_series_set_with_empty_address() -> None:
    target = make_target(443, host="nothing-here.invalid", protocol="https")
    s = await scrape(make_config(target))
    assert value(s, "tls_probe_success", address="") == 0
    assert states(s, "tls_handshake_outcome", "outcome", address="")["dns_error"] == 1


async def test_new_certificate_detected_and_distinct_leaves(servers: LoopbackServers, pki: PKI) -> None:
    port_a = servers.tls(pki["good"].server_context())
    port_b = servers.tls(pki["expiring-60d"].server_context())
    target = make_target(port_a)
    config = make_config(target)
    store = Store()
    store.apply_config(config.targets)
    prober = Pipeline()
    events = store.record(target, await prober.probe(target, config))
    assert [e.kind for e in events] == []
    # Same address, now serving another certificate (a renewal): exactly one event.
    moved = await prober.probe(make_target(port_b), config)
    renewed = [dataclasses.replace(r, location=f"127.0.0.1:{port_a}") for r in moved]
    events = store.record(target, renewed)
    assert [(e.kind, e.certificate and e.certificate.serial) for e in events] == [
        ("renewed", pki["expiring-60d"].serial_hex)
    ]
    s = parse(render(StoreRenderer(store, lambda: config)))
    assert value(s, "tls_cert_last_change_timestamp_seconds") == pytest.approx(renewed[0].started_at)
    # The same certificate again is no change.
    assert store.record(target, renewed) == []


async def test_removed_targets_vanish(servers: LoopbackServers, pki: PKI) -> None:
    a, b = make_target(servers.tls(pki["good"].server_context())), make_target(closed_port())
    config = make_config(a, b)
    store = Store()
    store.apply_config(config.targets)
    for t in (a, b):
        store.record(t, await Pipeline().probe(t, config))
    smaller = make_config(a)
    store.apply_config(smaller.targets)
    s = parse(render(StoreRenderer(store, lambda: smaller)))
    assert {lbl["target"] for lbl, _ in s["tls_probe_success"]} == {a.target}
