"""A month of exporter history, written as OpenMetrics for `promtool tsdb create-blocks-from`.

Six endpoints, every fact a function of time, so the test knows what any report must say:

| target           | owner    | story                                                                    |
|------------------|----------|--------------------------------------------------------------------------|
| shop.example.com | web-team | 90-day certificate, 5 days left at the end, renewed 12 h before the end  |
| api.example.com  | payments | replaced 4 days before the end by a certificate of another subject       |
| old.example.com  | (none)   | RSA-1024, SHA-1, accepts TLSv1.0, grade F; expired 2 days before the end |
| mail.example.com | hsm-team | connection refused for the last 36 hours                                 |
| vpn.example.com  | web-team | 25 days left at the end (32 a week earlier: entered warning), grade B    |
| long.example.com | platform | 1,100-day certificate, 300 days left                                     |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

DAY = 86400
STEP = 3600  # one sample an hour (promtool's block creation is the slow part); report times are multiples of it
SPAN = 32 * DAY


@dataclass(frozen=True)
class Cert:
    subject: str
    issuer: str
    serial: str
    not_before: float
    not_after: float
    key_weak: bool = False
    signature_weak: bool = False
    grade: str = "A"
    legacy: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    target: str
    address: str
    protocol: str
    owner: str
    cert_at: Callable[[float], Cert | None]  # None: the probe fails (connection refused)
    last_change_at: Callable[[float], float]
    server_name: str = ""  # a label when part of the target's identity (two names on one address)
    since: float = 0.0  # no series before this time (first seen by the exporter then)


def scenario(end: float) -> list[Endpoint]:
    ca = "CN=Example CA R1,O=Example"
    shop_old = Cert("CN=shop.example.com", ca, "a01", end - 85 * DAY, end + 5 * DAY)
    shop_new = Cert("CN=shop.example.com", ca, "a02", end - DAY / 2, end + 90 * DAY - DAY / 2)
    api_old = Cert("CN=api-old.example.com", "CN=Old CA,O=Example", "b01", end - 200 * DAY, end + 165 * DAY)
    api_new = Cert("CN=api.example.com", ca, "b02", end - 4 * DAY, end + 61 * DAY)
    old = Cert("CN=old.example.com", "CN=Legacy CA", "c01", end - 732 * DAY, end - 2 * DAY,
               key_weak=True, signature_weak=True, grade="F", legacy=("TLSv1.0",))  # fmt: skip
    mail = Cert("CN=mail.example.com", ca, "d01", end - 30 * DAY, end + 335 * DAY)
    vpn = Cert("CN=vpn.example.com", ca, "e01", end - 340 * DAY, end + 25 * DAY, grade="B")
    long = Cert("CN=long.example.com", "CN=Private CA", "f01", end - 800 * DAY, end + 300 * DAY)
    return [
        Endpoint("shop.example.com", "192.0.2.10:443", "https", "web-team",
                 lambda t: shop_new if t >= end - DAY / 2 else shop_old,
                 lambda t: end - DAY / 2 if t >= end - DAY / 2 else end - 85 * DAY),
        Endpoint("api.example.com", "192.0.2.11:443", "https", "payments",
                 lambda t: api_new if t >= end - 4 * DAY else api_old,
                 lambda t: end - 4 * DAY if t >= end - 4 * DAY else end - 200 * DAY),
        Endpoint("old.example.com", "192.0.2.12:443", "https", "", lambda t: old, lambda t: end - 732 * DAY),
        Endpoint("mail.example.com", "192.0.2.13:25", "smtp", "hsm-team",
                 lambda t: None if t > end - 1.5 * DAY else mail, lambda t: end - 30 * DAY),
        Endpoint("vpn.example.com", "192.0.2.14:443", "https", "web-team", lambda t: vpn, lambda t: end - 340 * DAY),
        Endpoint("long.example.com", "192.0.2.15:443", "https", "platform", lambda t: long, lambda t: end - 800 * DAY),
    ]  # fmt: skip


def tier(days: float) -> str:
    return (
        "expired"
        if days <= 0
        else "critical"
        if days < 7
        else "warning"
        if days < 30
        else ("info" if days < 90 else "ok")
    )


def fresh(end: float) -> list[Endpoint]:
    """Fifteen minutes of history (a new Prometheus): two server names on one address, one of them
    a certificate first seen ten minutes ago whose notBefore is tomorrow (installed ahead of time),
    and a server accepting TLSv1.1 besides TLSv1.2 and TLSv1.3."""
    ca = "CN=Example CA R1,O=Example"
    a = Cert("CN=a.example.com", ca, "1a", end - 30 * DAY, end + 300 * DAY, legacy=("TLSv1.1",))
    b = Cert("CN=b.example.com", ca, "1b", end + DAY, end + 366 * DAY)
    return [
        Endpoint("192.0.2.20:443", "192.0.2.20:443", "https", "web-team", lambda t: a, lambda t: end - 30 * DAY,
                 server_name="a.example.com"),
        Endpoint("192.0.2.20:443", "192.0.2.20:443", "https", "web-team", lambda t: b, lambda t: end + DAY,
                 server_name="b.example.com", since=end - 600),
    ]  # fmt: skip


def openmetrics(end: float, endpoints: list[Endpoint] | None = None, span: int = SPAN, step: int = STEP) -> str:
    """Every sample from ``span`` before ``end`` to ``end``, family by family (as OpenMetrics wants)."""
    times = [end - span + i * step for i in range(span // step + 1)]
    endpoints = scenario(end) if endpoints is None else endpoints
    families: dict[str, list[str]] = {}

    def add(name: str, labels: dict[str, str], t: float, value: float) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        families.setdefault(name, []).append(f"{name}{{{text}}} {float(value)!r} {t:.0f}")

    for e in endpoints:
        base = {"job": "tls-exporter", "instance": "127.0.0.1:9632", "target": e.target, "address": e.address,
                "protocol": e.protocol, "name": e.target, "owner": e.owner}  # fmt: skip
        if e.server_name:
            base["server_name"] = e.server_name
        for series in _series(e, base, [t for t in times if t >= e.since]):
            add(*series)
    out = []
    for name, lines in families.items():
        out.append(f"# TYPE {name} gauge")
        # OpenMetrics wants each series' samples together and in time order.
        out.extend(sorted(lines, key=lambda line: (line.rsplit(" ", 2)[0], float(line.rsplit(" ", 1)[1]))))
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _series(
    e: Endpoint, base: dict[str, str], times: list[float]
) -> Iterator[tuple[str, dict[str, str], float, float]]:
    for t in times:
        cert = e.cert_at(t)
        # State sets carry only the state at 1 here: the report reads `== 1`, and fewer series keep
        # promtool's block creation short.
        yield "tls_probe_success", base, t, 0 if cert is None else 1
        outcome = "certificate_found" if cert is not None else "connection_refused"
        yield "tls_handshake_outcome", base | {"outcome": outcome}, t, 1
        if cert is None:
            continue
        days = (cert.not_after - t) / DAY
        yield "tls_cert_expiry_tier", base | {"tier": tier(days)}, t, 1
        yield "tls_cert_days_until_expiry", base, t, days
        yield "tls_cert_not_after_timestamp_seconds", base, t, cert.not_after
        yield "tls_cert_not_before_timestamp_seconds", base, t, cert.not_before
        info = {"subject": cert.subject, "issuer": cert.issuer, "serial": cert.serial,
                "fingerprint_sha256": cert.serial * 8, "sans": e.target}  # fmt: skip
        yield "tls_cert_info", base | info, t, 1
        yield "tls_cert_last_change_timestamp_seconds", base, t, e.last_change_at(t)
        yield "tls_cert_hostname_match", base, t, 1
        yield "tls_cert_key_weak", base, t, float(cert.key_weak)
        yield "tls_cert_signature_weak", base, t, float(cert.signature_weak)
        yield "tls_chain_valid", base, t, float(days > 0)
        if days <= 0:
            yield "tls_chain_issue", base | {"issue": "expired"}, t, 1
        yield "tls_security_grade", base | {"grade": cert.grade}, t, 1
        for version in (*cert.legacy, "TLSv1.2", "TLSv1.3"):
            yield "tls_protocol_accepted", base | {"version": version}, t, 1
        yield "tls_protocol_below_minimum", base | {"minimum": "TLSv1.2"}, t, float(bool(cert.legacy))
