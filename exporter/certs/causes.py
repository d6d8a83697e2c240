"""Why a strict client refuses a chain: walk the served chain leaf to issuer and name the cause.

``cryptography.x509.verification`` answers with a message only. ``diagnose`` rebuilds the path
by name (the served certificates, the AIA ones, the trust anchors), then looks, certificate by
certificate, for what a WebPKI client refuses; each finding names its cause, its position in the
served chain and its subject, in plain words:

- ``bad_signature``: an issuer's key does not verify the signature it is named on;
- ``weak_signature``: MD5 or SHA-1 signs the leaf or an intermediate;
- ``basic_constraints``: a leaf that is a CA, or an intermediate that is not (CA:FALSE or no
  basicConstraints at all);
- ``key_usage``: keyUsage/extendedKeyUsage forbid the use: a leaf without serverAuth (clientAuth
  only, say), a leaf allowed to sign certificates, an intermediate without keyCertSign;
- ``name_constraints``: an issuer's nameConstraints exclude (or do not permit) a name of the leaf.

When none holds and the walk ends at an issuer neither served nor trusted, the chain is
``untrusted_root``; when it reaches a trust anchor and the verifier still refused, ``other``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID

from exporter.certs.facts import sans_of, signature_of
from exporter.certs.identity import ip_of
from exporter.certs.pairmemo import PairMemo

WEAK_HASHES = frozenset({"md5", "sha1"})
MAX_PATH = 10
MAX_NAME_CHECKS = 4096  # names x subtrees compared at most (pyca's verifier stops at a similar limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    cause: str  # a ChainIssue value
    position: int | None  # index in the served chain; None for a certificate not served (an anchor, AIA)
    subject: str
    reason: str

    def __str__(self) -> str:
        where = f"certificate {self.position}" if self.position is not None else "issuer"
        return f"{self.cause}: {where} ({self.subject}): {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    reaches_anchor: bool  # the walk by name ended at a trust anchor
    unknown_issuer: str  # the issuer name the walk could not find ("" when it did not stop there)
    path: tuple[x509.Certificate, ...] = ()  # the walk: leaf, its issuer, ...


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, TypeError):  # malformed extensions: a finding of their own (``_malformed``)
        return None


_NAME_CONSTRAINTS_OID = bytes.fromhex("0603551d1e")  # 2.5.29.30, as it stands in the DER


def _malformed(cert: x509.Certificate) -> tuple[str, str] | None:
    """(cause, reason) when the certificate's extensions cannot be parsed: clients refuse it."""
    try:
        cert.extensions  # noqa: B018 (parsing is the point)
    except (ValueError, TypeError) as exc:
        if _NAME_CONSTRAINTS_OID in cert.tbs_certificate_bytes:
            return "name_constraints", f"malformed name constraints ({exc})"
        return "other", f"malformed extensions ({exc})"
    return None


_SIGNED = PairMemo[bool | None]()  # ten thousand leaves under one intermediate share its check


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool | None:
    """True when ``issuer``'s key verifies the signature of ``cert``, False when it does not,
    None when we cannot tell (an algorithm we cannot check)."""
    if cert.issuer != issuer.subject:
        return False
    return _SIGNED(_signed_by, cert, issuer)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool | None:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except Exception:  # cryptography refuses SHA-1 and others here: check the signature ourselves
        pass
    from exporter.certs.revocation import verify_signature  # (imported at first use: `check` starts faster)

    try:
        verify_signature(issuer.public_key(), cert.signature, cert.tbs_certificate_bytes, cert.signature_hash_algorithm)
    except InvalidSignature:
        return False
    except Exception:
        return None
    return True


def _key_ids_match(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The authority key identifier of ``cert`` names ``issuer``'s key (or one of them is absent):
    a same-named certificate with another key is another CA, not a bad signature."""
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    ski = _ext(issuer, x509.SubjectKeyIdentifier)
    if not isinstance(aki, x509.AuthorityKeyIdentifier) or aki.key_identifier is None:
        return True
    if not isinstance(ski, x509.SubjectKeyIdentifier):
        return True
    return aki.key_identifier == ski.digest


def _walk(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], bool, str]:
    """leaf, its issuer, ... by name (preferring a candidate whose signature verifies)."""
    path = [leaf]
    while len(path) < MAX_PATH:
        current = path[-1]
        # A root ends the walk; a self-issued CA under another key (a re-keyed CA) does not.
        if current.issuer == current.subject and len(path) > 1 and signed_by(current, current) is not False:
            return path, any(current == a for a in anchors), ""
        candidates = [
            c for c in (*pool, *anchors) if c.subject == current.issuer and c not in path and _key_ids_match(current, c)
        ]
        if not candidates:
            return path, False, current.issuer.rfc4514_string()
        issuer = next((c for c in candidates if signed_by(current, c) is not False), candidates[0])
        path.append(issuer)
        if any(issuer == a for a in anchors):
            return path, True, ""
    return path, False, ""


def _key_usage_of_leaf(leaf: x509.Certificate) -> str:
    eku = _ext(leaf, x509.ExtendedKeyUsage)
    if isinstance(eku, x509.ExtendedKeyUsage):
        usages = set(eku)
        # anyExtendedKeyUsage alone does not do: a server verifier requires serverAuth itself.
        if ExtendedKeyUsageOID.SERVER_AUTH not in usages:
            names = ", ".join(sorted(getattr(u, "_name", u.dotted_string) for u in usages)) or "none"
            return f"extendedKeyUsage does not allow TLS server authentication ({names})"
    ku = _ext(leaf, x509.KeyUsage)
    if isinstance(ku, x509.KeyUsage):
        if ku.key_cert_sign:
            return "keyUsage allows signing certificates (keyCertSign) on a leaf"
        if not (ku.digital_signature or ku.key_encipherment or ku.key_agreement):
            return "keyUsage allows neither digitalSignature nor keyEncipherment"
    return ""


def _dns_within(name: str, base: str) -> bool:
    name, base = name.lower().rstrip("."), base.lower().lstrip(".").rstrip(".")
    return name == base or name.endswith("." + base)


def _ip_within(ip: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(ip) in net
    except ValueError:
        return False


def _name_constraints(issuer: x509.Certificate, leaf: x509.Certificate) -> str:
    nc = _ext(issuer, x509.NameConstraints)
    if not isinstance(nc, x509.NameConstraints):
        return ""
    names = sans_of(leaf)
    subtrees = len(nc.excluded_subtrees or ()) + len(nc.permitted_subtrees or ())
    if len(names) * subtrees > MAX_NAME_CHECKS:
        # A hostile chain must not cost a probe's worth of CPU here; clients refuse it as well.
        return f"{len(names)} names against {subtrees} name constraints: more checks than clients make"
    for n in names:
        is_ip = ip_of(n) is not None
        for excluded in nc.excluded_subtrees or ():
            if isinstance(excluded, x509.DNSName) and not is_ip and _dns_within(n, excluded.value):
                return f"nameConstraints exclude {n} (excluded {excluded.value})"
            if isinstance(excluded, x509.IPAddress) and is_ip and _ip_within(n, excluded.value):  # type: ignore[arg-type]
                return f"nameConstraints exclude {n} (excluded {excluded.value})"
        permitted = nc.permitted_subtrees or ()
        dns_permitted = [p.value for p in permitted if isinstance(p, x509.DNSName)]
        ip_permitted = [p.value for p in permitted if isinstance(p, x509.IPAddress)]
        if not is_ip and dns_permitted and not any(_dns_within(n, p) for p in dns_permitted):
            return f"nameConstraints do not permit {n} (permitted {', '.join(dns_permitted)})"
        if is_ip and ip_permitted and not any(_ip_within(n, p) for p in ip_permitted):  # type: ignore[arg-type]
            return f"nameConstraints do not permit {n} (permitted {', '.join(map(str, ip_permitted))})"
    return ""


# (path, the served chain, whether the path ends at an anchor) -> what a policy refuses (pathrules)
PathRules = Callable[[Sequence[x509.Certificate], Sequence[x509.Certificate], bool], Sequence[Finding]]


def diagnose(
    chain: Sequence[x509.Certificate],
    *,
    extra: Sequence[x509.Certificate] = (),
    anchors: Sequence[x509.Certificate] = (),
    rules: PathRules | None = None,
) -> Diagnosis:
    """The findings of a strict client on ``chain`` (as served, leaf first); see the module
    docstring. ``rules``: a policy's further rules, applied to the path walked."""
    leaf = chain[0]
    path, reaches_anchor, unknown = _walk(leaf, [*chain[1:], *extra], anchors)
    findings: list[Finding] = []

    def add(cause: str, cert: x509.Certificate, reason: str) -> None:
        position = next((i for i, c in enumerate(chain) if c == cert), None)
        findings.append(Finding(cause=cause, position=position, subject=cert.subject.rfc4514_string(), reason=reason))

    anchored = {id(c) for c in path if any(c == a for a in anchors)}
    for i, cert in enumerate(path):
        is_leaf, is_anchor = i == 0, id(cert) in anchored
        if i + 1 < len(path) and signed_by(cert, path[i + 1]) is False:
            add(
                "bad_signature",
                cert,
                f"the signature does not verify with the key of {path[i + 1].subject.rfc4514_string()}",
            )
        if not is_anchor and not (cert.issuer == cert.subject and not is_leaf):
            digest = signature_of(cert)[1]
            if digest in WEAK_HASHES:
                add("weak_signature", cert, f"signed with {digest.upper()}, which clients no longer accept")
        if not is_leaf:
            try:
                cert.public_key()
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                add("bad_signature", cert, f"its public key cannot be read ({exc}): nothing it signed verifies")
        broken = _malformed(cert)
        if broken is not None:  # its extensions cannot be read: that is the finding, not their absence
            add(broken[0], cert, broken[1])
            continue
        bc = _ext(cert, x509.BasicConstraints)
        is_ca = isinstance(bc, x509.BasicConstraints) and bc.ca
        if is_leaf:
            if is_ca and cert.issuer != cert.subject:
                add("basic_constraints", cert, "a leaf that is a CA (basicConstraints CA:TRUE)")
            usage = _key_usage_of_leaf(cert)
            if usage:
                add("key_usage", cert, usage)
        elif not is_anchor:
            if bc is None:
                add("basic_constraints", cert, "an intermediate without basicConstraints (not a CA)")
            elif not is_ca:
                add("basic_constraints", cert, "an intermediate that is not a CA (basicConstraints CA:FALSE)")
            ku = _ext(cert, x509.KeyUsage)
            if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
                add("key_usage", cert, "an intermediate whose keyUsage does not allow signing certificates")
        if not is_leaf:
            constrained = _name_constraints(cert, leaf)
            if constrained:
                add("name_constraints", cert, constrained)
    if rules is not None:
        findings.extend(f for f in rules(path, chain, reaches_anchor) if f not in findings)
    return Diagnosis(findings=tuple(findings), reaches_anchor=reaches_anchor, unknown_issuer=unknown, path=tuple(path))
