"""DANE (RFC 6698, RFC 7671, RFC 7672): does a served chain match a TLSA record set? Pure: values in,
a verdict out; the lookup is in ``exporter.judge.dns``.

A record matches by its usage:

- 3 DANE-EE: the leaf (its certificate or its key), nothing else; names and dates do not count
  (RFC 7671 section 5.1);
- 2 DANE-TA: a CA certificate of the served chain (position 1 and up; RFC 7671 section 5.2 says the
  trust anchor is served unless it is a key already known to the client) that the leaf chains up
  to by signatures through the served certificates;
- 1 PKIX-EE: the leaf, and the chain must also be valid (PKIX);
- 0 PKIX-TA: a CA certificate of the served chain or of the verified path, and the chain must be valid.

Selector 0 is the whole certificate (DER), 1 its SubjectPublicKeyInfo (DER); matching type 0 is the
data itself, 1 its SHA-256 and 2 its SHA-512. A record with another usage, selector or matching type
is unusable (RFC 6698 section 4.1) and matches nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from exporter.certs.chain import issuer_of

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = (0, 1)
MATCHING_TYPES = (0, 1, 2)


@dataclass(frozen=True, slots=True)
class TLSA:
    """One TLSA record: usage, selector, matching type and the certificate association data."""

    usage: int
    selector: int
    matching_type: int
    data: bytes

    @property
    def usable(self) -> bool:
        return self.usage in USAGES and self.selector in SELECTORS and self.matching_type in MATCHING_TYPES

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.matching_type} {self.data.hex()[:16]}…"


@dataclass(frozen=True, slots=True)
class DaneVerdict:
    matched: bool
    record: TLSA | None  # the first record that matched
    detail: str  # why: which record matched which certificate, or why none did


def association(cert: x509.Certificate, selector: int, matching_type: int) -> bytes:
    """What a TLSA record of this selector and matching type holds for ``cert``."""
    if selector == 0:
        selected = cert.public_bytes(Encoding.DER)
    elif selector == 1:
        selected = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    else:
        raise ValueError(f"unknown TLSA selector {selector}")
    if matching_type == 0:
        return selected
    if matching_type == 1:
        return hashlib.sha256(selected).digest()
    if matching_type == 2:
        return hashlib.sha512(selected).digest()
    raise ValueError(f"unknown TLSA matching type {matching_type}")


def record_for(cert: x509.Certificate, usage: int, selector: int, matching_type: int) -> TLSA:
    """The TLSA record that publishes ``cert`` (what an operator would put in the zone)."""
    return TLSA(usage, selector, matching_type, association(cert, selector, matching_type))


def _matches(record: TLSA, cert: x509.Certificate) -> bool:
    return association(cert, record.selector, record.matching_type) == record.data


def _anchors(served: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The served CA certificates the leaf chains up to, issuer by issuer (DANE-TA candidates)."""
    found: list[x509.Certificate] = []
    current = served[0]
    rest = list(served[1:])
    while rest:
        parent = issuer_of(current, rest)
        if parent is None or parent in found:
            break
        found.append(parent)
        rest.remove(parent)
        current = parent
    return [c for c in found if _is_ca(c)]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version is x509.Version.v1  # an old v1 root has no extensions at all
    except ValueError:
        return False


def match(
    records: Sequence[TLSA],
    served: Sequence[x509.Certificate],
    *,
    chain_valid: bool | None,
    path: Sequence[x509.Certificate] = (),
) -> DaneVerdict:
    """Whether the served chain (leaf first) matches one of ``records``.

    ``chain_valid``: the PKIX verdict of the chain (None when it could not be judged: the PKIX
    usages 0 and 1 then match nothing); ``path``: the verified path, whose CA certificates a
    PKIX-TA record may name besides the served ones.
    """
    if not served:
        return DaneVerdict(False, None, "no certificate served")
    usable = [r for r in records if r.usable]
    if not usable:
        return DaneVerdict(False, None, f"none of the {len(records)} TLSA record(s) is usable")
    leaf, cas = served[0], list(served[1:])
    anchors = _anchors(served)
    path_cas = [c for c in path[1:] if c not in cas]
    pkix_refused = []
    for record in usable:
        if record.usage in (1, 3):
            candidates = [("the leaf", leaf)]
        elif record.usage == 2:
            candidates = [(f"served certificate {i}", c) for i, c in enumerate(cas, start=1) if c in anchors]
        else:
            candidates = [(f"served certificate {i}", c) for i, c in enumerate(cas, start=1)]
            candidates += [("a CA certificate of the verified path", c) for c in path_cas]
        for where, cert in candidates:
            if not _matches(record, cert):
                continue
            if record.usage in (0, 1) and chain_valid is not True:
                pkix_refused.append(
                    f"{USAGES[record.usage]} record {record} matches {where}, but the chain is not valid"
                )
                continue
            return DaneVerdict(True, record, f"{USAGES[record.usage]} record {record} matches {where}")
    why = "; ".join(pkix_refused) or "no TLSA record matches the served chain"
    return DaneVerdict(False, None, why)


def tlsa_name(host: str, port: int) -> str:
    """``_25._tcp.mx.example.com.``: where the TLSA records of a TCP service live (RFC 6698 section 3)."""
    return f"_{port}._tcp.{host.rstrip('.')}."


__all__ = ["TLSA", "DaneVerdict", "association", "match", "record_for", "tlsa_name"]
