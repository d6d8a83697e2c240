"""Verify a served chain as a strict client would, and say what is wrong with it.

``verify_chain`` runs ``cryptography.x509.verification`` on the certificates exactly as served
(leaf first; the rest is an unordered bag of intermediates, as for every real client) against a
trust ``Store`` at a given time, then classifies the failure, since the verifier only gives a
message. Issues (the ``tls_chain_issue`` label values):

- ``expired`` / ``not_yet_valid``: a certificate of the path is outside its validity at that time;
- ``self_signed``: the leaf is self-signed and not a trust anchor;
- ``untrusted_root``: the chain ends at (or cannot reach beyond) an issuer the store does not hold;
- ``incomplete``: it verifies only with intermediates fetched from AIA (``extra`` below);
- ``wrong_order``: a certificate is not followed by its issuer although the issuer was served
  (clients accept this; the chain can still be valid);
- ``hostname_mismatch``: the leaf does not cover ``server_name`` (RFC 6125, SANs only).

Name, time and trust are judged independently: an expired certificate for the wrong name under
an unknown root shows all three issues.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import AuthorityInformationAccessOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    Subject,
    VerificationError,
)

from exporter.certs.causes import Finding, diagnose
from exporter.certs.facts import sans_of
from exporter.certs.identity import SanMatcher
from exporter.certs.pairmemo import PairMemo
from exporter.certs.pathrules import Policy, path_findings


class ChainIssue(StrEnum):
    """What can be wrong with a served chain (``tls_chain_issue{issue}``)."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNTRUSTED_ROOT = "untrusted_root"
    INCOMPLETE = "incomplete"
    WRONG_ORDER = "wrong_order"
    SELF_SIGNED = "self_signed"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    REVOKED = "revoked"
    BAD_SIGNATURE = "bad_signature"
    WEAK_SIGNATURE = "weak_signature"
    KEY_USAGE = "key_usage"
    BASIC_CONSTRAINTS = "basic_constraints"
    NAME_CONSTRAINTS = "name_constraints"
    # What RFC 5280 or the CA/Browser Forum forbid beyond the library (``pathrules``):
    COMMON_NAME = "common_name"  # a leaf's commonName that copies no SAN value
    KEY_IDENTIFIER = "key_identifier"  # a missing or malformed authority/subject key identifier
    KEY_SIZE = "key_size"  # an RSA key under 2048 bits, or a modulus not a multiple of 8 bits
    PUBLIC_SUFFIX = "public_suffix"  # a wildcard over a public suffix (*.co.uk)
    NAME_SYNTAX = "name_syntax"  # a malformed name: a SAN that is no host name (foo_bar.example.com), an empty issuer
    SERIAL_NUMBER = "serial_number"  # zero or negative
    CRITICALITY = "criticality"  # an extension marked critical that must not be, or the reverse
    KEY_ALGORITHM = "key_algorithm"  # a key algorithm clients refuse (DSA, P-192, explicit curve parameters)
    EXTENSION = "extension"  # an unknown critical extension, or one forbidden where it stands
    SELF_ISSUED = "self_issued"  # refused at a self-issued CA under a new key (the verifier builds no path through it)
    OTHER = "other"  # refused for a reason none of the above names; the verifier's words go to the debug log


ISSUES = tuple(issue.value for issue in ChainIssue)
RULE_ISSUES = (
    ChainIssue.COMMON_NAME,
    ChainIssue.KEY_IDENTIFIER,
    ChainIssue.KEY_SIZE,
    ChainIssue.PUBLIC_SUFFIX,
    ChainIssue.NAME_SYNTAX,
    ChainIssue.SERIAL_NUMBER,
    ChainIssue.CRITICALITY,
    ChainIssue.KEY_ALGORITHM,
    ChainIssue.EXTENSION,
)


@dataclass(frozen=True, slots=True)
class Rules:
    """The policy a path is held to (``pathrules``), and whether the store's roots are curated
    (the system store: its roots are taken as their curator ships them)."""

    policy: str = Policy.RFC5280
    curated: bool = False

    def findings(
        self, path: Sequence[x509.Certificate], served: Sequence[x509.Certificate], anchored: bool = True
    ) -> tuple[Finding, ...]:
        return path_findings(path, served, self.policy, anchored=anchored, curated=self.curated)


_TIME_ERROR = "not valid at validation time"
_ONE_SECOND = dt.timedelta(seconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainVerdict:
    valid: bool  # verifies to the store for server_name at the time, from what was served alone
    issues: frozenset[str]
    roles: tuple[str, ...]  # per served certificate: leaf | intermediate | root
    path: tuple[x509.Certificate, ...]  # leaf ... anchor when a path was found (else ())
    detail: str  # the verifier's message, or "" when valid
    completable: bool  # an issuer is missing and the last served certificate names where to fetch it (AIA)
    reasons: tuple[str, ...] = ()  # one line per issue in plain words: the cause, the certificate, why
    cross_signed: bool = False  # ``path`` goes through a cross-signed certificate (``cross_signed``)


_ISSUED = PairMemo[bool]()  # a private-CA chain's signatures were checked again on every probe


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer`` signed ``cert`` (names and signature)."""
    return _ISSUED(_issued_by, cert, issuer)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    except Exception:  # unsupported key or algorithm: not provably issued
        return False
    return True


def self_issued(cert: x509.Certificate, vouched: Vouched | None = None) -> bool:
    return cert.subject == cert.issuer and _signed(cert, cert, vouched)


# cert -> its issuer on a path the verifier built: signatures it already checked (and anchors
# the store vouches for, as their own issuers), so they need not be verified again.
Vouched = Mapping[x509.Certificate, x509.Certificate]


def vouched_by(path: Sequence[x509.Certificate]) -> dict[x509.Certificate, x509.Certificate]:
    pairs = {path[i]: path[i + 1] for i in range(len(path) - 1)}
    if path and path[-1].subject == path[-1].issuer:
        pairs[path[-1]] = path[-1]
    return pairs


def _signed(cert: x509.Certificate, issuer: x509.Certificate, vouched: Vouched | None) -> bool:
    if vouched is not None and vouched.get(cert) == issuer:
        return True
    return issued_by(cert, issuer)


def roles(chain: Sequence[x509.Certificate], vouched: Vouched | None = None) -> tuple[str, ...]:
    return tuple(
        "leaf" if i == 0 else ("root" if self_issued(c, vouched) else "intermediate") for i, c in enumerate(chain)
    )


def ca_issuer_urls(cert: x509.Certificate) -> tuple[str, ...]:
    return _aia(cert, AuthorityInformationAccessOID.CA_ISSUERS)


def ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    return _aia(cert, AuthorityInformationAccessOID.OCSP)


def _aia(cert: x509.Certificate, method: x509.ObjectIdentifier) -> tuple[str, ...]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(
        d.access_location.value
        for d in aia
        if d.access_method == method and isinstance(d.access_location, x509.UniformResourceIdentifier)
    )


def wrong_order(chain: Sequence[x509.Certificate], vouched: Vouched | None = None) -> bool:
    """Some certificate is not followed by its issuer, though its issuer was served elsewhere."""
    for i in range(len(chain) - 1):
        cert = chain[i]
        if self_issued(cert, vouched) or _signed(cert, chain[i + 1], vouched):
            continue
        if any(issued_by(cert, other) for j, other in enumerate(chain) if j not in (i, i + 1)):
            return True
    return False


def _subject(name: str) -> Subject | None:
    try:
        return IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    try:
        return DNSName(name.rstrip(".").lower())
    except ValueError:
        return None


def subject_for(server_name: str, name_ok: bool, own: Subject | None) -> Subject | None:
    """The subject trust is judged under: the name when the leaf covers it, else the leaf's own
    (``leaf_subject``), so that trust is judged apart from the name."""
    if name_ok:
        subject = _subject(server_name)
        if subject is not None:
            return subject
    return own


def leaf_subject(leaf: x509.Certificate, sans: Sequence[str] | None = None) -> Subject | None:
    """The leaf's own first usable SAN as a subject (a wildcard stands for one label): the
    subject under which trust is judged whatever name was asked for."""
    for san in sans_of(leaf) if sans is None else sans:
        candidate = "wildcard-match" + san[1:] if san.startswith("*.") else san
        subject = _subject(candidate)
        if subject is not None:
            return subject
    return None


def name_ok(matcher: SanMatcher, server_name: str) -> bool:
    """The leaf covers ``server_name`` (RFC 6125, SANs only); no name asked for is no mismatch."""
    return not server_name or matcher.covers(server_name)


def trust_subject(leaf: x509.Certificate, server_name: str) -> tuple[Subject | None, bool]:
    """(the subject ``verify_chain`` judges trust under, whether the leaf covers ``server_name``)."""
    sans = sans_of(leaf)
    ok = name_ok(SanMatcher(sans), server_name)
    return subject_for(server_name, ok, leaf_subject(leaf, sans)), ok


def _verify(
    leaf: x509.Certificate,
    bag: Sequence[x509.Certificate],
    store: Store,
    subject: Subject | None,
    at: dt.datetime,
    *,
    ca_leaf: bool = False,
) -> tuple[x509.Certificate, ...]:
    builder = PolicyBuilder().store(store).time(at)
    if ca_leaf:
        # RFC 5280 lets a CA certificate end a path (4.2.1.9); the server verifier's end-entity
        # policy refuses one. The leaf's extensions are judged by ``causes``/``pathrules`` instead.
        ee = ExtensionPolicy.permit_all().require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        builder = builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
    if subject is not None:
        return tuple(builder.build_server_verifier(subject).verify(leaf, list(bag)))
    # A leaf without any usable SAN: judge trust alone, with a client verifier that does not
    # look at the leaf's extensions (server verifiers insist on a SAN).
    builder = builder.extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
    )
    return tuple(builder.build_client_verifier().verify(leaf, list(bag)).chain)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError, TypeError):
        return False


def expired_at(cert: x509.Certificate, at: dt.datetime) -> bool:
    """notAfter is inclusive and to the second (RFC 5280 4.1.2.5): expired once that second is over."""
    return at >= cert.not_valid_after_utc + _ONE_SECOND


def _time_issues(certs: Sequence[x509.Certificate], at: dt.datetime) -> set[str]:
    issues: set[str] = set()
    for c in certs:
        if expired_at(c, at):
            issues.add(ChainIssue.EXPIRED)
        if c.not_valid_before_utc > at:
            issues.add(ChainIssue.NOT_YET_VALID)
    return issues


def _inside_all(certs: Sequence[x509.Certificate]) -> dt.datetime | None:
    """A moment inside every certificate's validity window, if the windows overlap."""
    start = max(c.not_valid_before_utc for c in certs) + _ONE_SECOND
    end = min(c.not_valid_after_utc for c in certs)
    return start if start <= end else None


def verify_chain(
    chain: Sequence[x509.Certificate],
    store: Store,
    server_name: str,
    at: dt.datetime,
    *,
    extra: Sequence[x509.Certificate] = (),
    anchors: Sequence[x509.Certificate] = (),
    policy: str = Policy.RFC5280,
    curated: bool = False,
) -> ChainVerdict:
    """Judge ``chain`` (as served, leaf first) for ``server_name`` at ``at`` (tz-aware).

    ``extra``: intermediates fetched from AIA. A chain that verifies only with them is
    ``incomplete`` and not valid (``tls_chain_valid`` judges what was served). ``anchors``: the
    certificates of ``store``, so that a refusal can be told apart from an unknown root.
    ``policy``: ``webpki`` or ``rfc5280``, the rules of ``pathrules`` on top of the library's;
    ``curated``: the store is the system's, whose roots are taken as shipped (no root-profile rules).
    """
    rules = Rules(policy, curated)
    if not chain:
        return verify_trust(chain, store, None, at, extra=extra, anchors=anchors, rules=rules)
    subject, ok = trust_subject(chain[0], server_name)
    verdict = verify_trust(chain, store, subject, at, extra=extra, anchors=anchors, rules=rules)
    return named(verdict, chain, server_name, ok)


def verify_trust(
    chain: Sequence[x509.Certificate],
    store: Store,
    subject: Subject | None,
    at: dt.datetime,
    *,
    extra: Sequence[x509.Certificate] = (),
    anchors: Sequence[x509.Certificate] = (),
    rules: Rules | None = None,
) -> ChainVerdict:
    """Everything ``verify_chain`` judges but the host name (path, signatures, validity, trust),
    with the verifier given ``subject`` (one the leaf covers: ``trust_subject``). ``named`` adds
    the name's verdict; the name does not change the rest, so this part can be shared by names."""
    rules = rules or Rules()
    return _explained(_judge(chain, store, subject, at, extra, anchors, rules), chain, at, extra, anchors, rules)


def named(trust: ChainVerdict, chain: Sequence[x509.Certificate], server_name: str, ok: bool) -> ChainVerdict:
    """The verdict for ``server_name`` from the name-independent one: ``hostname_mismatch`` added
    when the leaf does not cover it (``ok`` is ``name_ok``), not valid then, its reason first."""
    if ok or not chain:
        return trust
    return replace(
        trust,
        valid=False,
        issues=trust.issues | {ChainIssue.HOSTNAME_MISMATCH},
        reasons=(
            f"hostname_mismatch: certificate 0 ({chain[0].subject.rfc4514_string()}) does not cover {server_name}",
            *trust.reasons,
        ),
    )


def _judge(
    chain: Sequence[x509.Certificate],
    store: Store,
    subject: Subject | None,
    at: dt.datetime,
    extra: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    rules: Rules,
) -> ChainVerdict:
    if not chain:
        return ChainVerdict(
            valid=False, issues=frozenset(), roles=(), path=(), detail="no certificate", completable=False
        )
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    leaf, served_bag = chain[0], list(chain[1:])
    issues: set[str] = set()

    # Under RFC 5280 alone a CA certificate may be the leaf; browsers (webpki) refuse it.
    ca_leaf = rules.policy == Policy.RFC5280 and _is_ca(leaf) and not self_issued(leaf)

    def attempt(bag: Sequence[x509.Certificate], when: dt.datetime) -> tuple[tuple[x509.Certificate, ...], str]:
        try:
            return _verify(leaf, bag, store, subject, when, ca_leaf=ca_leaf), ""
        except VerificationError as e:
            return (), str(e)
        except ValueError as e:  # policy or subject the verifier refuses to build
            return (), f"verifier: {e}"

    path, detail = attempt(served_bag, at)
    vouched = vouched_by(path)
    if wrong_order(chain, vouched):
        issues.add(ChainIssue.WRONG_ORDER)
    if path:
        # The library built a path: hold it to the policy's rules it does not enforce itself.
        refused = rules.findings(path, chain)
        issues |= {ChainIssue(f.cause) for f in refused}
        v = _verdict(chain, issues, path, detail="", trusted=True, vouched=vouched)
        return replace(v, cross_signed=cross_signed(path, [*chain, *anchors]))

    first_detail = detail
    if _TIME_ERROR in detail:
        # Separate "trusted but out of date" from "untrusted": retry inside every window.
        moment = _inside_all(chain)
        if moment is not None:
            path, detail = attempt(served_bag, moment)
        issues |= _time_issues(path or chain, at)
        if path:
            return _verdict(chain, issues, path, detail=first_detail, trusted=False)

    if self_issued(leaf):
        issues.add(ChainIssue.SELF_SIGNED)
        return _verdict(chain, issues, (), detail=first_detail, trusted=False)

    last = chain[-1]
    completable = not self_issued(last) and bool(ca_issuer_urls(last))
    if extra:
        bag = [*served_bag, *extra]
        path, detail = attempt(bag, at)
        if not path and _TIME_ERROR in detail:
            moment = _inside_all([*chain, *extra])
            if moment is not None:
                path, _ = attempt(bag, moment)
            if path:
                issues |= _time_issues(path, at)
        if path:
            issues.add(ChainIssue.INCOMPLETE)
            return _verdict(chain, issues, path, detail=first_detail, trusted=False)
    # Refused: name the cause rather than calling every refusal an unknown root.
    diagnosis = diagnose(chain, extra=extra, anchors=anchors, rules=rules.findings)
    causes = {ChainIssue(f.cause) for f in diagnosis.findings}
    said = _library_cause(first_detail) if not causes else None
    reasons: tuple[str, ...] = ()
    if causes:
        issues |= causes
    elif said is not None and not issues & {ChainIssue.EXPIRED, ChainIssue.NOT_YET_VALID}:
        # Our walk found nothing, the verifier's refusal names a rule: take its cause.
        issues.add(said[0])
        reasons = (f"{said[0]}: {said[1]} (the verifier: {first_detail})",)
    elif diagnosis.reaches_anchor and not issues & {ChainIssue.EXPIRED, ChainIssue.NOT_YET_VALID}:
        # Good signatures up to an anchor, and still refused: name the one shape we know the
        # verifier does not build through, else say the verifier's words.
        rekeyed = any(c.subject == c.issuer for c in diagnosis.path[1:-1])
        issues.add(ChainIssue.SELF_ISSUED if rekeyed else ChainIssue.OTHER)
    elif not diagnosis.reaches_anchor:
        issues.add(ChainIssue.UNTRUSTED_ROOT)
    v = _verdict(chain, issues, (), detail=first_detail, trusted=False, completable=completable and not extra)
    return replace(v, reasons=reasons) if reasons else v


# The verifier's words for refusals our own walk does not see (they concern the path as the
# verifier builds it), and the cause each one is. Checked in order; the first that matches wins.
_LIBRARY_CAUSES = (
    ("path length constraint", ChainIssue.BASIC_CONSTRAINTS, "a CA's pathLenConstraint is exceeded"),
    ("name constraint", ChainIssue.NAME_CONSTRAINTS, "a name constraint of an issuer refuses the chain"),
    ("no basicconstraints", ChainIssue.BASIC_CONSTRAINTS, "a CA certificate without basicConstraints"),
    ("keycertsign must be asserted", ChainIssue.KEY_USAGE, "a CA certificate whose keyUsage lacks keyCertSign"),
    ("incorrect criticality", ChainIssue.CRITICALITY, "an extension with the wrong criticality"),
    ("must be critical", ChainIssue.CRITICALITY, "an extension that must be critical and is not"),
    ("serial between", ChainIssue.SERIAL_NUMBER, "a serial number longer than 20 octets (RFC 5280 4.1.2.2)"),
    ("non-empty issuer", ChainIssue.NAME_SYNTAX, "a certificate with an empty issuer name (RFC 5280 4.1.2.4)"),
    ("non-empty subject", ChainIssue.NAME_SYNTAX, "a CA certificate with an empty subject name (RFC 5280 4.1.2.6)"),
    ("no matching subjectaltname", ChainIssue.HOSTNAME_MISMATCH, "no subjectAltName of the right type covers the name"),
    (
        "forbidden public key algorithm",
        ChainIssue.KEY_ALGORITHM,
        "a key algorithm clients refuse (DSA, P-192, explicit curve parameters)",
    ),
    ("prohibited extension", ChainIssue.EXTENSION, "an extension forbidden in that certificate"),
    ("unaccounted-for critical extension", ChainIssue.EXTENSION, "a critical extension the verifier does not know"),
)


def _library_cause(detail: str) -> tuple[ChainIssue, str] | None:
    lowered = detail.lower()
    return next(((issue, why) for words, issue, why in _LIBRARY_CAUSES if words in lowered), None)


def _explained(
    v: ChainVerdict,
    chain: Sequence[x509.Certificate],
    at: dt.datetime,
    extra: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    rules: Rules,
) -> ChainVerdict:
    """The verdict with one plain-words line per issue: the cause, the certificate, why."""
    if not v.issues:
        return v
    lines: list[str] = list(v.reasons)  # what the judgement already said in words

    def where(i: int, c: x509.Certificate) -> str:
        return f"certificate {i} ({c.subject.rfc4514_string()})"

    if chain:
        leaf = chain[0]
        for i, c in enumerate(chain):
            if ChainIssue.EXPIRED in v.issues and expired_at(c, at):
                lines.append(f"expired: {where(i, c)} expired on {c.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
            if ChainIssue.NOT_YET_VALID in v.issues and c.not_valid_before_utc > at:
                lines.append(
                    f"not_yet_valid: {where(i, c)} is not valid before {c.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
                )
        if ChainIssue.SELF_SIGNED in v.issues:
            lines.append(f"self_signed: {where(0, leaf)} is self-signed and not a trust anchor")
        if ChainIssue.INCOMPLETE in v.issues:
            lines.append(
                "incomplete: the server does not send every intermediate; the chain verifies only with "
                "the one fetched from the AIA caIssuers URL"
            )
        if ChainIssue.WRONG_ORDER in v.issues:
            lines.append("wrong_order: a certificate is not followed by its issuer (clients accept it)")
        structural = {
            ChainIssue.BAD_SIGNATURE,
            ChainIssue.WEAK_SIGNATURE,
            ChainIssue.KEY_USAGE,
            ChainIssue.BASIC_CONSTRAINTS,
            ChainIssue.NAME_CONSTRAINTS,
            ChainIssue.UNTRUSTED_ROOT,
            *RULE_ISSUES,
        }
        if v.issues & structural:
            if v.path:  # a path the library accepted: the rules it broke, on that very path
                found: Sequence[Finding] = rules.findings(v.path, chain)
            else:
                found = diagnose(chain, extra=extra, anchors=anchors, rules=rules.findings).findings
            lines.extend(str(f) for f in found)
        if ChainIssue.UNTRUSTED_ROOT in v.issues:
            ends = diagnose(chain, extra=extra, anchors=anchors).unknown_issuer or chain[-1].issuer.rfc4514_string()
            lines.append(f"untrusted_root: the chain ends at {ends}, which the trust store does not hold")
        if ChainIssue.SELF_ISSUED in v.issues:
            walked = diagnose(chain, extra=extra, anchors=anchors).path
            for c in walked[1:-1]:
                if c.subject == c.issuer:
                    position = next((j for j, s in enumerate(chain) if s == c), None)
                    where_c = where(position, c) if position is not None else f"issuer ({c.subject.rfc4514_string()})"
                    lines.append(
                        f"self_issued: {where_c} is a self-issued CA certificate under a new key: the chain "
                        f"reaches a trust anchor with valid signatures, but the verifier builds no path through "
                        f"it ({v.detail})"
                    )
        if ChainIssue.OTHER in v.issues:
            lines.append(f"other: the verifier refused the chain: {v.detail}")
    return ChainVerdict(
        valid=v.valid,
        issues=v.issues,
        roles=v.roles,
        path=v.path,
        detail=v.detail,
        completable=v.completable,
        reasons=tuple(lines),
        cross_signed=v.cross_signed,
    )


def _verdict(
    chain: Sequence[x509.Certificate],
    issues: set[str],
    path: tuple[x509.Certificate, ...],
    *,
    detail: str,
    trusted: bool,
    completable: bool = False,
    vouched: Vouched | None = None,
) -> ChainVerdict:
    valid = trusted and not (issues - {ChainIssue.WRONG_ORDER})
    return ChainVerdict(
        valid=valid,
        issues=frozenset(issues),
        roles=roles(chain, vouched or vouched_by(path)),
        path=path,
        detail=detail if not valid else "",
        completable=completable,
    )


def cross_signed(path: Sequence[x509.Certificate], known: Sequence[x509.Certificate]) -> bool:
    """``path`` holds a certificate whose subject and key are those of a self-signed certificate
    of ``known`` (served or trusted) but that another CA issued: a root cross-signed by an older
    one, the way a new CA reaches clients that only trust the old root."""
    for cert in path:
        if cert.subject == cert.issuer:
            continue
        for other in known:
            if other.subject == cert.subject and other.issuer == other.subject and _same_key(cert, other):
                return True
    return False


def _same_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    try:
        return a.public_key() == b.public_key()
    except (ValueError, TypeError):  # a key type cryptography cannot load
        return False


def issuer_of(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The first candidate that signed ``cert``."""
    for c in candidates:
        if c is not cert and issued_by(cert, c):
            return c
    return None
