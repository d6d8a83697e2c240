"""The pure parts of DANE and CAA (exporter.certs.dane, exporter.certs.caa), reading a resolver's
answer (exporter.judge.dns.read_answer), and the configuration keys, with made-up values."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from cryptography import x509
from pki import PKI

from exporter.certs.caa import CAA, info, issuer_domains, permits
from exporter.certs.dane import TLSA, match, record_for, tlsa_name
from exporter.config import load_config
from exporter.config.parse import parse_config
from exporter.judge.dns import MAX_RECORDS, DnsError, DnsLookup, read_answer
from exporter.support.deadline import Deadline
from exporter.support.errors import ConfigError

# -- DANE matching ---------------------------------------------------------------------------------


def chain(pki: PKI, name: str) -> list[x509.Certificate]:
    leaf = pki.leaves.get(name) or pki.issue(name, sans=(f"{name}.test",))
    return [leaf.cert, pki.intermediate.cert]


def test_tlsa_name() -> None:
    assert tlsa_name("mx1.example.com.", 25) == "_25._tcp.mx1.example.com."


@pytest.mark.parametrize(("selector", "matching"), [(s, m) for s in (0, 1) for m in (0, 1, 2)])
def test_dane_ee_matches_the_leaf_by_every_selector_and_matching_type(pki: PKI, selector: int, matching: int) -> None:
    served = chain(pki, "dane-rules")
    v = match([record_for(served[0], 3, selector, matching)], served, chain_valid=False)
    assert v.matched, v.detail  # DANE-EE ignores the PKIX verdict (RFC 7671 section 5.1)
    assert match([record_for(served[1], 3, selector, matching)], served, chain_valid=True).matched is False


def test_dane_ta_matches_a_ca_certificate_of_the_served_chain_only(pki: PKI) -> None:
    served = chain(pki, "dane-rules")
    assert match([record_for(served[1], 2, 1, 1)], served, chain_valid=None).matched
    assert not match([record_for(served[0], 2, 1, 1)], served, chain_valid=True).matched  # the leaf is no TA
    # The root is not served: a DANE-TA record of it does not match.
    assert not match([record_for(pki.root.cert, 2, 1, 1)], served, chain_valid=True).matched


def test_dane_ta_needs_a_ca_the_leaf_chains_up_to(pki: PKI) -> None:
    leaf, intermediate = chain(pki, "dane-rules")
    stranger = pki._ca("Unrelated CA", pki.root).cert  # served too, but it did not issue the leaf
    served = [leaf, stranger, intermediate]
    assert not match([record_for(stranger, 2, 1, 1)], served, chain_valid=True).matched
    v = match([record_for(stranger, 2, 1, 1), record_for(intermediate, 2, 1, 1)], served, chain_valid=True)
    assert (v.matched, v.detail.split(" matches ")[1]) == (True, "served certificate 2")


def test_pkix_usages_need_a_valid_chain(pki: PKI) -> None:
    served = chain(pki, "dane-rules")
    ee, ta = record_for(served[0], 1, 1, 1), record_for(pki.root.cert, 0, 0, 1)
    assert match([ee], served, chain_valid=True).matched
    v = match([ee], served, chain_valid=False)
    assert not v.matched and "the chain is not valid" in v.detail
    path = [served[0], served[1], pki.root.cert]
    assert match([ta], served, chain_valid=True, path=path).matched  # PKIX-TA may name the verified root
    assert not match([ta], served, chain_valid=None, path=path).matched


def test_unusable_records_match_nothing(pki: PKI) -> None:
    served = chain(pki, "dane-rules")
    good = record_for(served[0], 3, 1, 1)
    odd = [TLSA(4, 1, 1, good.data), TLSA(3, 2, 1, good.data), TLSA(3, 1, 3, good.data)]
    v = match(odd, served, chain_valid=True)
    assert (v.matched, v.detail) == (False, "none of the 3 TLSA record(s) is usable")
    assert match([*odd, good], served, chain_valid=True).record == good


# -- CAA -------------------------------------------------------------------------------------------


def test_caa_info_joins_each_tags_values_sorted() -> None:
    records = [CAA(0, "issue", "pki.goog"), CAA(0, "issue", "letsencrypt.org"), CAA(0, "iodef", "mailto:a@b.test")]
    assert info(records) == {"issue": "letsencrypt.org,pki.goog", "issuewild": "", "iodef": "mailto:a@b.test"}


def test_issuer_domains_configured_first_then_the_built_in_table() -> None:
    assert issuer_domains("Let's Encrypt", {}) == ("letsencrypt.org",)
    assert issuer_domains("LET'S ENCRYPT", {"let's encrypt": "acme.example"}) == ("acme.example",)
    assert issuer_domains("Google Trust Services", {}) == ("pki.goog",)
    assert issuer_domains("Nobody Ltd", {}) == ()


@pytest.mark.parametrize(
    ("records", "wildcard", "permitted"),
    [
        ([], False, True),  # no set: every CA
        ([CAA(0, "issue", "ca.tls-exporter.test")], False, True),
        ([CAA(0, "issue", "CA.TLS-Exporter.test.; account=42")], False, True),  # parameters, case, trailing dot
        ([CAA(0, "issue", "letsencrypt.org")], False, False),
        ([CAA(0, "issue", ";")], False, False),  # no CA at all
        ([CAA(0, "iodef", "mailto:a@b.test")], False, True),  # no issue property: not restricted
        (
            [CAA(0, "issue", "letsencrypt.org"), CAA(0, "issuewild", "ca.tls-exporter.test")],
            True,
            False,
        ),  # also a plain name
        ([CAA(0, "issue", "ca.tls-exporter.test"), CAA(0, "issuewild", ";")], True, False),
        ([CAA(0, "issuewild", "ca.tls-exporter.test")], True, True),
        ([CAA(0, "issue", "ca.tls-exporter.test"), CAA(128, "tbs", "x")], False, False),  # critical unknown tag
        ([CAA(0, "issue", "ca.tls-exporter.test"), CAA(0, "tbs", "x")], False, True),  # not critical: ignored
    ],
)
def test_caa_permits(pki: PKI, records: list[CAA], wildcard: bool, permitted: bool) -> None:
    sans = ("*.wild.test", "wild.test") if wildcard else ("plain.test",)
    leaf = pki.issue(f"caa-{'wild' if wildcard else 'plain'}", sans=sans).cert
    v = permits(records, leaf, {"tls-exporter tests": "ca.tls-exporter.test"}, where="wild.test")
    assert v.permitted is permitted, v.detail


def test_an_issuer_without_a_known_caa_domain_says_how_to_add_one(pki: PKI) -> None:
    v = permits([CAA(0, "issue", "letsencrypt.org")], chain(pki, "dane-rules")[0], {}, where="x.test")
    assert not v.permitted
    assert v.detail == (
        "CAA issue at x.test allows letsencrypt.org; issuer O='tls-exporter tests' has no known CAA domain "
        "(add it to caa_issuer_domains)"
    )


# -- reading a resolver's answer -------------------------------------------------------------------


def response(qname: str, rdtype: str, *rrsets: tuple[str, str, list[str]], ad: bool = True) -> dns.message.Message:
    q = dns.message.make_query(qname, rdtype, want_dnssec=True)
    r = dns.message.make_response(q)
    for name, kind, rdatas in rrsets:
        rdtype = dns.rdatatype.from_text(kind)
        rrset = r.find_rrset(r.answer, dns.name.from_text(name), dns.rdataclass.IN, rdtype, create=True)
        for text in rdatas:
            rrset.add(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text), 300)
    if ad:
        r.flags |= dns.flags.AD
    return r


def test_the_records_after_cnames_with_the_ad_bit() -> None:
    r = response(
        "_25._tcp.mx.test.",
        "TLSA",
        ("_25._tcp.mx.test.", "CNAME", ["tlsa.hosting.test."]),
        ("tlsa.hosting.test.", "TLSA", ["3 1 1 " + "ab" * 32]),
    )
    a = read_answer("_25._tcp.mx.test.", dns.rdatatype.TLSA, r)
    assert (a.name, a.secure, a.cnames, a.ttl) == ("tlsa.hosting.test.", True, True, 300)
    assert a.records == (TLSA(3, 1, 1, bytes.fromhex("ab" * 32)),)


def test_a_cname_loop_in_the_answer_is_an_error() -> None:
    r = response(
        "_25._tcp.mx.test.",
        "TLSA",
        ("_25._tcp.mx.test.", "CNAME", ["a.test."]),
        ("a.test.", "CNAME", ["_25._tcp.mx.test."]),
    )
    with pytest.raises(DnsError, match=r"CNAME loop: a\.test\. -> _25\._tcp\.mx\.test\."):
        read_answer("_25._tcp.mx.test.", dns.rdatatype.TLSA, r)


def test_too_many_records_and_errors_are_errors() -> None:
    many = [f"3 1 1 {i:064x}" for i in range(MAX_RECORDS + 1)]
    with pytest.raises(DnsError, match=rf"{MAX_RECORDS + 1} TLSA records at x\.test\., more than {MAX_RECORDS}"):
        read_answer("x.test.", dns.rdatatype.TLSA, response("x.test.", "TLSA", ("x.test.", "TLSA", many)))
    big = [f"3 0 0 {i:02x}" + "00" * 2000 for i in range(10)]
    with pytest.raises(DnsError, match=r"bytes of TLSA records at x\.test\., more than 16384"):
        read_answer("x.test.", dns.rdatatype.TLSA, response("x.test.", "TLSA", ("x.test.", "TLSA", big)))
    failed = response("x.test.", "TLSA")
    failed.set_rcode(dns.rcode.SERVFAIL)
    with pytest.raises(DnsError, match="the resolver answered SERVFAIL"):
        read_answer("x.test.", dns.rdatatype.TLSA, failed)


def test_a_negative_answer_is_empty_and_says_whether_it_validated() -> None:
    r = response("x.test.", "TLSA", ad=False)
    r.set_rcode(dns.rcode.NXDOMAIN)
    a = read_answer("x.test.", dns.rdatatype.TLSA, r)
    assert (a.records, a.secure, a.rcode) == ((), False, "NXDOMAIN")


# -- configuration ---------------------------------------------------------------------------------


def errors(doc: object) -> list[str]:
    with pytest.raises(ConfigError) as info_:
        parse_config(doc, base_dir=Path("."))
    return info_.value.errors


def test_dns_and_caa_keys_parse() -> None:
    c = parse_config(
        {
            "profiles": {"mail": {"dane": True, "caa": True}},
            "dns": {"resolver": ["127.0.0.1:5353", "[::1]", "192.0.2.53"]},
            "caa_issuer_domains": {"Example CA": "CA.Example.NET."},
        },
        base_dir=Path("."),
    )
    assert (c.profile("mail").dane, c.profile("mail").caa, c.profile("default").dane) == (True, True, False)
    assert c.dns.resolvers == (("127.0.0.1", 5353), ("::1", 53), ("192.0.2.53", 53))
    assert dict(c.caa_issuer_domains) == {"Example CA": "ca.example.net"}
    assert parse_config({"dns": {"resolver": "127.0.0.53:53"}}, base_dir=Path(".")).dns.resolvers == (
        ("127.0.0.53", 53),
    )


def test_bad_dns_and_caa_keys_name_the_key_and_the_reason() -> None:
    assert errors({"dns": {"resolver": "resolver.example.com:53"}}) == [
        "dns.resolver: invalid resolver 'resolver.example.com:53': not an IP address "
        "(use IP:port, e.g. 127.0.0.1:53 or [::1]:53)"
    ]
    assert errors({"dns": {"resolver": ["127.0.0.1:99999", 53]}}) == [
        "dns.resolver[0]: invalid resolver '127.0.0.1:99999': invalid port '99999' (1-65535) "
        "(use IP:port, e.g. 127.0.0.1:53 or [::1]:53)",
        "dns.resolver[1]: expected an address like 127.0.0.1:53 or [::1]:53",
    ]
    assert errors({"dns": {"resolvers": "127.0.0.1"}}) == ["dns: unknown key 'resolvers' (did you mean 'resolver'?)"]
    assert errors({"caa_issuer_domains": {"Example CA": "https://ca.example"}}) == [
        "caa_issuer_domains: invalid CAA domain 'https://ca.example' for 'Example CA' "
        "(a domain name like letsencrypt.org)"
    ]
    assert errors({"caa_issuer_domains": ["letsencrypt.org"]}) == [
        "caa_issuer_domains: expected a mapping of issuer organizationName to CAA domain"
    ]
    assert errors({"caa_issuer_domains": {"Example CA": "a.example", "EXAMPLE CA": "b.example"}}) == [
        "caa_issuer_domains: 'EXAMPLE CA' repeats 'Example CA' (names match case-insensitively)"
    ]
    assert errors({"profiles": {"mail": {"dane": "yes"}}}) == ["profiles.mail.dane: expected a boolean"]


def test_errors_of_a_file_point_at_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "profiles:\n"
        "  mail: {dane: yes please, caa: true}\n"
        "dns:\n"
        "  resolver:\n"
        "    - 127.0.0.1:53\n"
        "    - dns.example.com\n"
        "caa_issuer_domains:\n"
        "  Let's Encrypt: letsencrypt.org\n"
        "  Example CA: https://ca.example\n"
    )
    with pytest.raises(ConfigError) as info_:
        load_config(path)
    assert info_.value.errors == [
        f"{path}:2:10: profiles.mail.dane: expected a boolean",
        f"{path}:6:7: dns.resolver[1]: invalid resolver 'dns.example.com': not an IP address "
        "(use IP:port, e.g. 127.0.0.1:53 or [::1]:53)",
        f"{path}:7:1: caa_issuer_domains: invalid CAA domain 'https://ca.example' for 'Example CA' "
        "(a domain name like letsencrypt.org)",
    ]


# -- the cache and single flight, with a resolver made up in the test ------------------------------


class Scripted(DnsLookup):
    """A lookup whose queries are answered from a table (name -> TLSA data, TTL), counting them."""

    def __init__(self, answers: dict[str, tuple[str, int]], **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.answers = answers
        self.asked: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def _query(
        self, qname: str, rdtype: dns.rdatatype.RdataType, address: str, port: int, timeout: float
    ) -> dns.message.Message:
        self.asked.append(qname)
        await self.gate.wait()
        data, ttl = self.answers[qname]
        r = response(qname, "TLSA", (qname, "TLSA", [f"3 1 1 {data}"]))
        for rrset in r.answer:
            rrset.ttl = ttl
        return r


SERVERS = [("192.0.2.53", 53)]


async def test_concurrent_callers_share_one_query_and_the_ttl_keeps_the_answer() -> None:
    lookup = Scripted({"a.test.": ("aa" * 32, 300)})
    lookup.gate.clear()
    callers = [asyncio.ensure_future(lookup.tlsa("a.test.", SERVERS, Deadline(5))) for _ in range(5)]
    await asyncio.sleep(0.05)  # every caller is waiting on the one query held at the gate
    lookup.gate.set()
    answers = await asyncio.gather(*callers)
    assert lookup.asked == ["a.test."]
    assert all(a is answers[0] for a in answers)
    await lookup.tlsa("a.test.", SERVERS, Deadline(5))
    assert lookup.asked == ["a.test."]  # from the cache


async def test_a_caller_whose_deadline_runs_out_leaves_the_query_to_the_others() -> None:
    lookup = Scripted({"a.test.": ("aa" * 32, 300)})
    lookup.gate.clear()
    patient = asyncio.ensure_future(lookup.tlsa("a.test.", SERVERS, Deadline(5)))
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await lookup.tlsa("a.test.", SERVERS, Deadline(0.05))
    lookup.gate.set()
    assert len((await patient).records) == 1
    assert lookup.asked == ["a.test."]


async def test_the_cache_is_bounded_in_bytes_and_a_zero_ttl_is_not_kept() -> None:
    names = {f"n{i}.test.": ("bb" * 32, 300) for i in range(10)}
    lookup = Scripted({**names, "zero.test.": ("cc" * 32, 0)}, max_cache_bytes=400)
    for name in names:
        await lookup.tlsa(name, SERVERS, Deadline(5))
    assert 0 < lookup.cached_bytes <= 400
    asked = len(lookup.asked)
    await lookup.tlsa("n9.test.", SERVERS, Deadline(5))  # the newest is kept
    assert len(lookup.asked) == asked
    await lookup.tlsa("n0.test.", SERVERS, Deadline(5))  # the oldest was evicted: asked again
    assert len(lookup.asked) == asked + 1
    await lookup.tlsa("zero.test.", SERVERS, Deadline(5))
    await lookup.tlsa("zero.test.", SERVERS, Deadline(5))
    assert lookup.asked[-2:] == ["zero.test.", "zero.test."]
