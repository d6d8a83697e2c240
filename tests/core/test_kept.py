"""What the store, the facts cache and the version scans keep: the same values, held once.

At 10,000 endpoints (bench/memory.py) the step logs kept with every result were 20 MB, equal
reports held per endpoint 10 MB, equal version scans 8 MB, the DER keys of the facts cache
1-2 KB per distinct certificate.
"""

from __future__ import annotations

import dataclasses
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from helpers import make_target
from pki import PKI

from exporter.certs import judge as judge_mod
from exporter.certs.facts import cert_facts
from exporter.config.model import Profile
from exporter.judge.scan import Scanner, ScanResult
from exporter.results import Assessment, Observation, OcspStatus, Result, Session, Step
from exporter.schedule.store import Store
from exporter.support.errors import Outcome
from exporter.support.intern import SLACK, Interner
from exporter.tls.hello import HelloResult


def _result(pki: PKI, port: int, *, staple: bytes | None = b"\x30\x03staple", log: str = "step") -> Result:
    """A judged, assessed result as the pipeline returns it: step logs, a staple, its own objects."""
    target = make_target(port)
    der = tuple(c.public_bytes(Encoding.DER) for c in pki["good"].chain)
    session = Session(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", cipher_bits=128, ocsp_staple=staple)
    obs = Observation(
        location=target.target,
        outcome=Outcome.CERTIFICATE_FOUND,
        certificates=der,
        session=session,
        started_at=1000.0 + port,
        duration=0.01,
        log=(f"{log} {port}",),
    )
    result = judge_mod.judge(obs, target, Profile(), ())
    assert result.report is not None
    a = Assessment(
        chain_valid=False,
        chain_issues=frozenset({"untrusted_root"}),
        chain_reasons=("untrusted_root: the chain ends at CN=Test Root CA",),
        ocsp_status=OcspStatus.GOOD,
        ocsp_stapled=True,
        grade="T",
        score=90.0,
        reasons=("cap T: untrusted",),
        errors=frozenset({Step.REVOCATION}),
        log=(f"chain: invalid {port}",),
    )
    return dataclasses.replace(result, report=dataclasses.replace(result.report, assessment=a))


def test_the_store_keeps_every_value_the_outputs_read_without_logs_or_staple(pki: PKI) -> None:
    store = Store()
    results = {port: _result(pki, port) for port in (1001, 1002, 1003)}
    targets = {port: make_target(port) for port in results}
    store.apply_config(targets.values())
    for port, result in results.items():
        store.record(targets[port], [result])
    kept = {port: store.get(targets[port].key)[1][results[port].location].result for port in results}  # type: ignore[index]
    for port, result in results.items():
        k = kept[port]
        without_staple = dataclasses.replace(result.session, ocsp_staple=None)  # type: ignore[arg-type]
        # every compared field: outcome, detail, times, session but its staple, report, assessment
        assert k == dataclasses.replace(result, session=without_staple)
        assert (k.location, k.started_at, k.duration) == (result.location, 1000.0 + port, 0.01)
        assert k.log == () and k.session is not None and k.session.ocsp_staple is None
        assert (k.session.version, k.session.cipher, k.session.cipher_bits) == (
            "TLSv1.3",
            "TLS_AES_128_GCM_SHA256",
            128,
        )
        assert k.report is not None and k.report.assessment is not None and k.report.assessment.log == ()
        a = k.report.assessment
        assert (a.ocsp_status, a.ocsp_stapled, a.grade, a.score, a.chain_issues) == (
            "good",
            True,
            "T",
            90.0,
            {"untrusted_root"},
        )
        assert k.report.leaf.fingerprint_sha256 == pki["good"].fingerprint
    # three endpoints serving the same chain hold one report, one assessment, one session
    assert kept[1001].report is kept[1002].report is kept[1003].report
    assert kept[1001].session is kept[1003].session
    # the caller's own results are untouched: /probe?debug=true and check show their logs
    assert results[1001].log == ("step 1001",) and results[1001].session.ocsp_staple == b"\x30\x03staple"  # type: ignore[union-attr]


def test_different_reports_stay_apart(pki: PKI) -> None:
    store = Store()
    a, b = make_target(1001), make_target(1002, server_name="other.test")
    store.apply_config([a, b])
    store.record(a, [_result(pki, 1001)])
    other = _result(pki, 1002)
    assert other.report is not None
    other = dataclasses.replace(other, report=dataclasses.replace(other.report, hostname_match=False))
    store.record(b, [other])
    ka = store.get(a.key)[1]["127.0.0.1:1001"].result  # type: ignore[index]
    kb = store.get(b.key)[1]["127.0.0.1:1002"].result  # type: ignore[index]
    assert ka.report is not None and kb.report is not None
    assert (ka.report.hostname_match, kb.report.hostname_match) == (True, False)
    assert ka.report.assessment is kb.report.assessment  # equal assessments still shared


def test_the_intern_tables_are_swept_down_to_what_is_held(pki: PKI) -> None:
    store = Store()
    targets = [make_target(1000 + i) for i in range(5)]
    store.apply_config(targets)
    base = _result(pki, 1000)
    assert base.report is not None and base.report.assessment is not None
    # 3,000 passes, each a new score: a new assessment and report every time, one held per target
    for i in range(3000):
        a = dataclasses.replace(base.report.assessment, score=float(i))
        result = dataclasses.replace(base, report=dataclasses.replace(base.report, assessment=a))
        t = targets[i % 5]
        store.record(t, [dataclasses.replace(result, location=t.target)])
    shared = store._shared
    assert len(shared.reports) <= 2 * 5 + SLACK and len(shared.assessments) <= 2 * 5 + SLACK
    scores = sorted(e.result.report.assessment.score for _, es in store.snapshot() for e in es.values())  # type: ignore[union-attr]
    assert scores == [2995.0, 2996.0, 2997.0, 2998.0, 2999.0]


def test_interner_gives_the_first_equal_value_and_sweeps_to_the_held_ones() -> None:
    intern = Interner[tuple[str, int]]()
    first = ("a", 1)
    assert intern(first) is first
    assert intern(("a", int("1"))) is first
    assert intern(("b", 2)) == ("b", 2) and len(intern) == 2
    assert not intern.due(live=0)  # within the slack
    for i in range(SLACK + 1):
        intern(("x", i))
    assert intern.due(live=0) and not intern.due(live=SLACK)
    intern.sweep([first])
    assert len(intern) == 1 and intern(("a", 1)) is first


def test_the_facts_cache_is_keyed_by_the_digest_and_gives_the_same_facts(pki: PKI) -> None:
    der = pki["good-rsa"].cert.public_bytes(Encoding.DER)
    facts = judge_mod.facts_from_der(der)
    assert facts == cert_facts(x509.load_der_x509_certificate(der))
    assert judge_mod.FACTS.get(hashlib.sha256(der).digest()) is facts
    assert judge_mod.FACTS.get(der) is None  # no copy of the DER is kept as a key
    assert judge_mod.facts_from_der(bytes(der)) is facts


async def test_scans_alike_share_their_hellos_without_the_staple() -> None:
    scanner = Scanner()

    def hellos(staple: bytes | None) -> tuple[HelloResult, ...]:
        return (
            HelloResult(version="TLSv1.2", accepted=True, server_version="TLSv1.2", suite=0xC02B, staple=staple),
            HelloResult(version="TLSv1.1", accepted=False, alert=70),
        )

    one = scanner._keep(("tls", "192.0.2.1:443", "a.test"), ScanResult(at=1.0, hellos=hellos(b"\x30\x01")))
    two = scanner._keep(("tls", "192.0.2.2:443", "b.test"), ScanResult(at=2.0, hellos=hellos(b"\x30\x02")))
    assert one.hellos is two.hellos and (one.at, two.at) == (1.0, 2.0)
    assert one.accepted == (("TLSv1.2", True), ("TLSv1.1", False))
    assert [h.staple for h in one.hellos] == [None, None]
    assert one.hellos[0].suite == 0xC02B and one.hellos[1].alert == 70
    assert scanner.latest(("tls", "192.0.2.2:443", "b.test")) is two
