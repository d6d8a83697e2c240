"""Policy lines of a profile that are not about expiry: the minimum protocol version and the
longest validity a leaf may have. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.results import CertFacts

VERSION_ORDER = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
DAY = 86400.0


def below_minimum(accepted: Iterable[tuple[str, bool]], minimum: str) -> tuple[str, ...]:
    """The versions the server accepts that are older than ``minimum`` (e.g. ("TLSv1.0",))."""
    floor = VERSION_ORDER.index(minimum) if minimum in VERSION_ORDER else 0
    return tuple(v for v, ok in accepted if ok and v in VERSION_ORDER and VERSION_ORDER.index(v) < floor)


def validity_too_long(cert: CertFacts, max_validity: float | None) -> bool | None:
    """True when a leaf is valid for longer than ``max_validity`` seconds; None when there is no
    limit or the certificate is a CA (the limit is about the certificates servers present)."""
    if max_validity is None or cert.is_ca:
        return None
    return cert.not_after - cert.not_before > max_validity
