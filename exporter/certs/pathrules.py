"""What RFC 5280 and the CA/Browser Forum require of a certification path, beyond what
``cryptography.x509.verification`` enforces: checked on the path the verifier built (or, for a
refused chain, on the path ``causes.diagnose`` walks), so that a chain a browser refuses is not
called valid, and a refusal names its cause.

Each rule applies under the policies it names (``Policy``): ``rfc5280`` holds every certificate
to RFC 5280's MUSTs; ``webpki`` adds the CA/Browser Forum Baseline Requirements a browser applies
(host name only from the SAN and a commonName that copies one, serverAuth and no anyEKU, RSA keys
of 2048 bits and more, key identifiers on roots, no wildcard over a public suffix). Where the two
disagree (a non-critical nameConstraints: RFC 5280 forbids it, browsers accept it), each policy
keeps its own rule. The findings are ``causes.Finding``: a chain issue, the certificate (its
position in the served chain, or None for a trust anchor that was not served) and why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from exporter.certs.causes import Finding

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList


class Policy(StrEnum):
    WEBPKI = "webpki"
    RFC5280 = "rfc5280"


BOTH = frozenset(Policy)
WEBPKI = frozenset({Policy.WEBPKI})
RFC5280 = frozenset({Policy.RFC5280})
MIN_RSA_BITS = 2048  # CA/Browser Forum BR 6.1.5


@dataclass(frozen=True, slots=True)
class Place:
    """One certificate of the path and what it is there."""

    cert: x509.Certificate
    index: int  # in the path, 0 = leaf
    leaf: bool
    anchor: bool  # the trust anchor the path ends at
    self_signed: bool  # subject == issuer (a root, an anchor's own certificate)


Rule = Callable[[Place], Iterator[tuple[str, str]]]  # -> (chain issue, why)


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    except (ValueError, TypeError):  # unparsable: causes._malformed names it
        return None


def _self_signed(cert: x509.Certificate) -> bool:
    """Signed by its own key (a root), whatever its issuer name says."""
    if cert.subject == cert.issuer:
        return True
    from exporter.certs.revocation import verify_signature  # (imported at first use: `check` starts faster)

    try:
        verify_signature(cert.public_key(), cert.signature, cert.tbs_certificate_bytes, cert.signature_hash_algorithm)
    except Exception:  # another key signed it, or an algorithm we cannot check: not provably self-signed
        return False
    return True


def _serial(p: Place) -> Iterator[tuple[str, str]]:
    # RFC 5280 4.1.2.2: "The serial number MUST be a positive integer".
    serial = p.cert.serial_number
    if not p.anchor and serial <= 0:
        yield "serial_number", f"serial number {serial} (RFC 5280 requires a positive integer)"


def _key_identifiers(p: Place) -> Iterator[tuple[str, str]]:
    # RFC 5280 4.2.1.1/4.2.1.2: every certificate but a self-signed one carries an AKI keyIdentifier
    # and every CA certificate an SKI; both are non-critical.
    aki = _extension(p.cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    ski = _extension(p.cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    if not p.self_signed and (aki is None or getattr(aki.value, "key_identifier", None) is None):
        yield "key_identifier", "no authorityKeyIdentifier naming its issuer's key (RFC 5280 4.2.1.1)"
    if not p.leaf and ski is None:
        yield "key_identifier", "a CA certificate without subjectKeyIdentifier (RFC 5280 4.2.1.2)"
    for ext, name in ((aki, "authorityKeyIdentifier"), (ski, "subjectKeyIdentifier")):
        if ext is not None and ext.critical:
            yield "criticality", f"{name} marked critical (RFC 5280: MUST be non-critical)"


def _critical_constraints(oid: x509.ObjectIdentifier, name: str, section: str) -> Rule:
    def rule(p: Place) -> Iterator[tuple[str, str]]:
        ext = _extension(p.cert, oid)
        if ext is not None and not ext.critical:
            yield "criticality", f"{name} not marked critical (RFC 5280 {section}: MUST be critical)"

    return rule


def _root_key_identifier(p: Place) -> Iterator[tuple[str, str]]:
    # BR 7.1.2.1.3: a root's AKI, if present, holds its own keyIdentifier and nothing else.
    if not (p.anchor and p.self_signed):
        return
    ext = _extension(p.cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    if ext is None or not isinstance(ext.value, x509.AuthorityKeyIdentifier):
        return
    aki = ext.value
    if aki.key_identifier is None:
        yield "key_identifier", "a root whose authorityKeyIdentifier has no keyIdentifier (BR 7.1.2.1.3)"
    if aki.authority_cert_issuer is not None or aki.authority_cert_serial_number is not None:
        yield "key_identifier", "a root whose authorityKeyIdentifier names an issuer or serial (BR 7.1.2.1.3)"
    ski = _extension(p.cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    own = ski.value if ski is not None else None
    mismatch = isinstance(own, x509.SubjectKeyIdentifier) and aki.key_identifier not in (None, own.digest)
    if mismatch:
        yield "key_identifier", "a root whose authorityKeyIdentifier differs from its own subjectKeyIdentifier"


def _extended_key_usage(p: Place) -> Iterator[tuple[str, str]]:
    ext = _extension(p.cert, ExtensionOID.EXTENDED_KEY_USAGE)
    usages = set(ext.value) if ext is not None and isinstance(ext.value, x509.ExtendedKeyUsage) else None
    if p.leaf:
        # BR 7.1.2.7.10: a subscriber certificate MUST have EKU with serverAuth, and MUST NOT anyEKU.
        if usages is None:
            yield "key_usage", "no extendedKeyUsage (a server certificate must list serverAuth, BR 7.1.2.7.10)"
        elif ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
            yield "key_usage", "extendedKeyUsage holds anyExtendedKeyUsage (forbidden in a server certificate)"
    elif p.anchor and p.self_signed and usages is not None:
        yield "key_usage", "a root with extendedKeyUsage (BR 7.1.2.1.2: MUST NOT be present)"


def _rsa_key(p: Place) -> Iterator[tuple[str, str]]:
    # BR 6.1.5: RSA moduli of at least 2048 bits, their size in bits divisible by 8.
    try:
        key = p.cert.public_key()
    except (ValueError, TypeError):
        return
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < MIN_RSA_BITS:
            yield "key_size", f"an RSA key of {bits} bits (at least {MIN_RSA_BITS}, BR 6.1.5)"
        elif bits % 8:
            yield "key_size", f"an RSA modulus of {bits} bits, not a multiple of 8 (BR 6.1.5)"


def _common_name(p: Place) -> Iterator[tuple[str, str]]:
    # BR 7.1.4.3: a subscriber certificate's commonName, if present, is exactly one entry that copies
    # a SAN value character for character (an IP address in its canonical text form).
    if not p.leaf:
        return
    names = p.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return
    if len(names) > 1:
        yield "common_name", "more than one commonName (BR 7.1.4.3: exactly one)"
        return
    cn = names[0].value if isinstance(names[0].value, str) else names[0].value.decode("latin-1")
    ext = _extension(p.cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    san = ext.value if ext is not None and isinstance(ext.value, x509.SubjectAlternativeName) else None
    dns = san.get_values_for_type(x509.DNSName) if san is not None else []
    ips = san.get_values_for_type(x509.IPAddress) if san is not None else []
    # A copy of a dNSName, or of a wildcard's FQDN portion (CN=example.com beside *.example.com).
    if cn in dns or any(d.startswith("*.") and d[2:] == cn for d in dns):
        return
    try:
        ip = ipaddress.ip_address(cn)
    except ValueError:
        ip = None
    if ip is not None and str(ip) == cn and ip in ips:
        return
    yield "common_name", f"commonName {cn!r} is not a copy of a subjectAltName value (BR 7.1.4.3)"


def _leaf_dns_names(p: Place) -> list[str]:
    """The dNSNames of the leaf's subjectAltName (none for another certificate of the path)."""
    if not p.leaf:
        return []
    ext = _extension(p.cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if ext is None or not isinstance(ext.value, x509.SubjectAlternativeName):
        return []
    return ext.value.get_values_for_type(x509.DNSName)


_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _san_syntax(p: Place) -> Iterator[tuple[str, str]]:
    # RFC 5280 4.2.1.6: a dNSName in the preferred name syntax (letters, digits, hyphens; a wildcard
    # only as the whole leftmost label); the Baseline Requirements forbid underscores since 2019.
    for name in _leaf_dns_names(p):
        labels = name.removesuffix(".").split(".")
        if labels and labels[0] == "*":
            labels = labels[1:]
        if not labels or not all(_LDH_LABEL.fullmatch(label) for label in labels):
            yield "name_syntax", f"the subjectAltName {name!r} is not a host name (RFC 5280 4.2.1.6)"


@cache
def _public_suffixes() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList  # its list loads on first use only

    return PublicSuffixList()


def _public_suffix_wildcard(p: Place) -> Iterator[tuple[str, str]]:
    # BR 3.2.2.6: no wildcard whose remainder is a public suffix (ICANN or private section).
    for name in _leaf_dns_names(p):
        if name.startswith("*.") and _public_suffixes().is_public(name[2:].rstrip(".").lower()):
            yield "public_suffix", f"the wildcard {name} covers a public suffix (BR 3.2.2.6)"


# (rule, the policies it holds under), in the order their findings are listed.
RULES: tuple[tuple[Rule, frozenset[Policy]], ...] = (
    (_serial, BOTH),
    (_san_syntax, BOTH),
    (_key_identifiers, BOTH),
    (_critical_constraints(ExtensionOID.POLICY_CONSTRAINTS, "policyConstraints", "4.2.1.11"), BOTH),
    (_critical_constraints(ExtensionOID.NAME_CONSTRAINTS, "nameConstraints", "4.2.1.10"), RFC5280),
    (_root_key_identifier, WEBPKI),
    (_extended_key_usage, WEBPKI),
    (_rsa_key, WEBPKI),
    (_common_name, WEBPKI),
    (_public_suffix_wildcard, WEBPKI),
)


def path_findings(
    path: Sequence[x509.Certificate],
    served: Sequence[x509.Certificate],
    policy: str,
    *,
    anchored: bool = True,
    curated: bool = False,
) -> tuple[Finding, ...]:
    """What ``policy`` refuses in ``path`` (leaf first; its last certificate the trust anchor when
    ``anchored``); positions refer to ``served``. ``curated``: the anchor comes from the system
    store and is taken as its curator ships it (roots from before the Baseline Requirements' root
    profile, such as Go Daddy Class 2 with an authorityCertIssuer in its AKI, are trusted by every
    browser); an anchor from a `trust:` bundle is held to the rules like any certificate."""
    rules = [rule for rule, policies in RULES if policy in policies]
    out: list[Finding] = []
    for i, cert in enumerate(path):
        if curated and anchored and i == len(path) - 1 and i > 0:
            continue
        place = Place(
            cert=cert,
            index=i,
            leaf=i == 0,
            anchor=anchored and i == len(path) - 1 and i > 0,
            # Only an anchor's signature is checked for it: elsewhere the issuer name decides.
            self_signed=i > 0 and (_self_signed(cert) if i == len(path) - 1 else cert.subject == cert.issuer),
        )
        position = next((j for j, c in enumerate(served) if c == cert), None)
        for rule in rules:
            for issue, why in rule(place):
                out.append(Finding(cause=issue, position=position, subject=cert.subject.rfc4514_string(), reason=why))
    return tuple(out)
