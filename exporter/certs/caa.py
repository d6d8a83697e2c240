"""CAA (RFC 8659): may the CA that issued a leaf issue for its name? Pure: the record set found by the
tree climb (``exporter.judge.dns``) and the leaf in, a verdict out.

The issuer is known by the organizationName (O) of the leaf's issuer, matched case-insensitively:
``caa_issuer_domains:`` of the configuration first, then the built-in table of public CAs below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

INFO_TAGS = ("issue", "issuewild", "iodef")
CRITICAL_FLAG = 128
KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone"})

# Issuer organizationName (lowercase) -> the CAA domains that CA recognises as its own. The CA/B
# Forum Baseline Requirements (section 2.2) make every public CA list its CAA issuer domains in its
# CP/CPS (usually section 4.2.1, sometimes 4.2.4); each line names where that CA publishes them.
PUBLIC_CAS: dict[str, tuple[str, ...]] = {
    # ISRG CP/CPS 4.2.1; letsencrypt.org/docs/caa
    "let's encrypt": ("letsencrypt.org",),
    # DigiCert CPS 4.2.1; docs.digicert.com "DNS CAA resource record check" (also its legacy brands)
    "digicert inc": ("digicert.com", "digitalcertvalidation.com", "symantec.com", "thawte.com", "geotrust.com"),
    "digicert, inc.": ("digicert.com", "digitalcertvalidation.com"),  # the same CPS; newer issuing CAs spell O so
    # Sectigo CPS 4.2.1 (CAA identifying domains); ZeroSSL issues from Sectigo and names sectigo.com
    "sectigo limited": ("sectigo.com", "comodoca.com", "comodo.com", "usertrust.com", "trust-provider.com"),
    "zerossl": ("sectigo.com",),
    # GlobalSign CPS 4.2.1; support.globalsign.com "CAA record"
    "globalsign nv-sa": ("globalsign.com",),
    # Google Trust Services CPS 4.2.1; pki.goog/faq
    "google trust services": ("pki.goog",),
    "google trust services llc": ("pki.goog",),
    # Amazon Trust Services CPS 4.2.1; docs.aws.amazon.com/acm "CAA"
    "amazon": ("amazon.com", "amazontrust.com", "awstrust.com", "amazonaws.com"),
    # Entrust CPS 4.2.1
    "entrust, inc.": ("entrust.net", "affirmtrust.com"),
    # Buypass CPS 4.2.1
    "buypass as-983163327": ("buypass.com", "buypass.no"),
    # SSL.com CP/CPS 4.2.1
    "ssl corporation": ("ssl.com",),
}


@dataclass(frozen=True, slots=True)
class CAA:
    """One CAA record: flags, tag (lowercase) and value."""

    flags: int
    tag: str
    value: str


@dataclass(frozen=True, slots=True)
class CaaVerdict:
    permitted: bool
    detail: str


def info(records: Iterable[CAA]) -> dict[str, str]:
    """``{issue, issuewild, iodef}``: each tag's values, sorted and joined with commas ("" when absent)."""
    values: dict[str, set[str]] = {tag: set() for tag in INFO_TAGS}
    for r in records:
        if r.tag in values:
            values[r.tag].add(r.value.strip())
    return {tag: ",".join(sorted(v)) for tag, v in values.items()}


def issuer_organization(cert: x509.Certificate) -> str:
    names = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else ""


def issuer_domains(organization: str, configured: Mapping[str, str]) -> tuple[str, ...]:
    """The CAA domains of the CA named ``organization``: the configuration's, else the built-in table's."""
    key = organization.strip().lower()
    for name, domain in configured.items():
        if name.strip().lower() == key:
            return (domain.lower(),)
    return PUBLIC_CAS.get(key, ())


def _domain(value: str) -> str:
    """The issuer domain of an issue/issuewild value (``ca.example; account=1`` -> ``ca.example``)."""
    return value.split(";", 1)[0].strip().rstrip(".").lower()


def _wildcard(cert: x509.Certificate) -> tuple[bool, bool]:
    """Whether the leaf names wildcard and non-wildcard DNS names."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except x509.ExtensionNotFound:
        names = []
    wild = any(n.startswith("*.") for n in names)
    return wild, not names or any(not n.startswith("*.") for n in names)


def permits(
    records: Sequence[CAA], leaf: x509.Certificate, configured: Mapping[str, str], *, where: str = ""
) -> CaaVerdict:
    """Whether the relevant CAA set (``records``, found at ``where``) lets the leaf's issuer issue it.

    No set at all permits every CA. A critical record of a tag this exporter does not know forbids
    issuance (RFC 8659 section 4.5). Wildcard names follow ``issuewild`` when there is one, else
    ``issue``; other names ``issue``; a set without the property in question permits every CA.
    """
    if not records:
        return CaaVerdict(True, "no CAA record on the name or its parents: every CA may issue")
    at = f" at {where}" if where else ""
    unknown = sorted({r.tag for r in records if r.flags & CRITICAL_FLAG and r.tag not in KNOWN_TAGS})
    if unknown:
        return CaaVerdict(False, f"CAA{at} has a critical record of unknown tag {', '.join(unknown)}: no CA may issue")
    organization = issuer_organization(leaf)
    domains = issuer_domains(organization, configured)
    wild, plain = _wildcard(leaf)
    tags = [("issuewild" if any(r.tag == "issuewild" for r in records) else "issue")] if wild else []
    if plain:
        tags.append("issue")
    for tag in dict.fromkeys(tags):
        allowed = {_domain(r.value) for r in records if r.tag == tag}
        if not any(r.tag == tag for r in records):
            continue  # no such property: it does not restrict
        if allowed - {""} and set(domains) & allowed:
            continue
        issuer = f"issuer O={organization!r}" if organization else "an issuer without an organizationName"
        if not domains:
            why = f"{issuer} has no known CAA domain (add it to caa_issuer_domains)"
        else:
            why = f"{issuer} ({', '.join(domains)}) is not among them"
        listed = ", ".join(sorted(allowed - {""})) or "no CA (;)"
        return CaaVerdict(False, f"CAA {tag}{at} allows {listed}; {why}")
    return CaaVerdict(True, f"CAA{at} permits issuer O={organization!r}")


__all__ = ["CAA", "PUBLIC_CAS", "CaaVerdict", "info", "issuer_domains", "issuer_organization", "permits"]
