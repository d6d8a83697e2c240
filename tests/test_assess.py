from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from certs.posture_kit import (
    DAY,
    OpenSSLServer,
    RevocationServer,
    Seen,
    aia,
    crl_dp,
    make_crl,
    observe,
    ocsp_response,
    opener,
    sub_ca,
)
from helpers import make_config, make_target
from pki import NOW, PKI
from servers import LoopbackServers

from exporter.config.model import Profile
from exporter.judge.assess import Assessor
from exporter.judge.fetch import Fetcher
from exporter.judge.scan import Scanner
from exporter.pipeline import Pipeline
from exporter.results import Assessment, Step
from exporter.tls.hello import Opener

YEAR = "max-age=31536000; includeSubDomains"
T0 = NOW.timestamp()


@dataclass(frozen=True)
class Judged:
    """An assessment and the version scan it was given, as the scheduler's probe would see them."""

    assessment: Assessment
    protocols_accepted: tuple[tuple[str, bool], ...]
    log: tuple[str, ...]

    def __getattr__(self, name: str) -> object:
        return getattr(self.assessment, name)


class Harness:
    """The assessor plus the version scan that, in the exporter, runs on its own clock."""

    def __init__(self) -> None:
        self.assessor = Assessor(fetcher=Fetcher(timeout=5))
        self.scanner = Scanner(hello_timeout=5)

    async def assess(
        self, *, observation: Seen, server_name: str, profile: Profile, reopen: Opener | None, now: float
    ) -> Judged:
        scan = None
        if reopen is not None and profile.scan_protocol_versions:
            scan = await self.scanner.scan_now(("tls", observation.address, server_name), reopen)
        a = await self.assessor.assess(
            certificates=observation.chain_der,
            session=observation.session,
            server_name=server_name,
            profile=profile,
            scan=scan.hellos if scan else (),
            now=now,
        )
        return Judged(a, scan.accepted if scan else (), (*(scan.describe() if scan else ()), *a.log))

    async def close(self) -> None:
        await self.assessor.close()
        await self.scanner.close()


@pytest.fixture
async def assessor() -> AsyncIterator[Harness]:
    a = Harness()
    try:
        yield a
    finally:
        await a.close()


@pytest.fixture
async def responder() -> AsyncIterator[RevocationServer]:
    server = await RevocationServer().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def profile(pki: PKI) -> Profile:
    return Profile(trust=str(pki.root.cert_path))


def counting(port: int) -> tuple[Opener, list[int]]:
    calls: list[int] = []
    inner = opener(port)

    async def _open() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        calls.append(1)
        return await inner()

    return _open, calls


def static(chain: list[bytes] | tuple[bytes, ...], **kw: object) -> Seen:
    base = {"address": "127.0.0.1:1", "version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "cipher_bits": 256}
    base.update(kw)
    return Seen(chain_der=tuple(chain), **base)  # type: ignore[arg-type]


def der(*certs: object) -> list[bytes]:
    from cryptography.hazmat.primitives.serialization import Encoding

    return [c.public_bytes(Encoding.DER) for c in certs]  # type: ignore[attr-defined]


# -- posture and grade against real loopback servers ------------------------------------------------


@pytest.mark.parametrize(("hsts", "expected"), [(YEAR, "A+"), (None, "A"), ("max-age=600", "A")])
async def test_https_hsts_decides_a_plus(
    pki: PKI, servers: LoopbackServers, assessor: Harness, profile: Profile, hsts: str | None, expected: str
) -> None:
    port = servers.https(pki["good"].server_context(), hsts=hsts)
    obs = await observe(port, http=True)
    assert obs.hsts == hsts
    reopen, calls = counting(port)
    a = await assessor.assess(observation=obs, server_name="localhost", profile=profile, reopen=reopen, now=T0)
    assert a.protocols_accepted == (
        ("SSLv3", False),
        ("TLSv1.0", False),
        ("TLSv1.1", False),
        ("TLSv1.2", True),
        ("TLSv1.3", True),
    )
    assert len(calls) == 5
    assert (a.chain_valid, a.chain_issues, a.grade, a.score) == (True, frozenset(), expected, 100.0)
    assert a.ocsp_status == "not_checked" and a.ocsp_stapled is False  # no responder URL in the fixture
    assert "hello TLSv1.2: accepted ECDHE-ECDSA-" in "\n".join(a.log)


async def test_tls13_only_server(pki: PKI, servers: LoopbackServers, assessor: Harness, profile: Profile) -> None:
    ctx = pki["good"].server_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    port = servers.tls(ctx)
    obs = await observe(port)
    a = await assessor.assess(observation=obs, server_name="localhost", profile=profile, reopen=opener(port), now=T0)
    assert dict(a.protocols_accepted) == {
        "SSLv3": False,
        "TLSv1.0": False,
        "TLSv1.1": False,
        "TLSv1.2": False,
        "TLSv1.3": True,
    }
    assert (a.grade, a.score) == ("A", 100.0)


async def test_tls10_only_openssl_server_is_capped(
    pki: PKI, tmp_path: Path, assessor: Harness, profile: Profile
) -> None:
    leaf = pki["good-rsa"]
    # What a legacy-capable handshake would have observed; the posture comes from the real server.
    obs = static(der(*leaf.chain), version="TLSv1", cipher="ECDHE-RSA-AES256-SHA", cipher_bits=256)
    with OpenSSLServer(leaf, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0", workdir=tmp_path) as server:
        obs = replace(obs, address=f"127.0.0.1:{server.port}")
        a = await assessor.assess(
            observation=obs, server_name="localhost", profile=profile, reopen=opener(server.port), now=T0
        )
    accepted = dict(a.protocols_accepted)
    assert (accepted["TLSv1.0"], accepted["TLSv1.2"], accepted["TLSv1.3"]) == (True, False, False)
    assert (a.grade, a.score) == ("C", 94.0)  # 27 + 27 (RSA-2048) + 40
    assert "cap B: TLS 1.0 accepted" in a.reasons and "cap C: no TLS 1.2 or 1.3" in a.reasons
    assert a.chain_valid is True


async def test_version_scans_run_on_their_own_clock(pki: PKI, servers: LoopbackServers) -> None:
    port = servers.tls(pki["good"].server_context())
    reopen, calls = counting(port)
    scanner = Scanner(hello_timeout=5)
    key = ("tls", f"127.0.0.1:{port}", "localhost")
    try:
        assert scanner.latest(key) is None and scanner.due(key, 600)
        assert scanner.request(key, reopen, 600) is True
        assert scanner.request(key, reopen, 600) is False  # one scan of an address at a time
        for _ in range(200):
            if scanner.latest(key) is not None:
                break
            await asyncio.sleep(0.02)
        first = scanner.latest(key)
        assert first is not None and len(calls) == 5 and dict(first.accepted)["TLSv1.3"] is True
        assert not scanner.due(key, 600) and scanner.request(key, reopen, 600) is False
        assert scanner.due(key, 600, now=first.at + 600)  # due again once the interval has passed
        other = ("tls", f"127.0.0.1:{port}", "good.test")  # another server name is another scan
        assert scanner.due(other, 600)
        await scanner.scan_now(other, reopen)
        assert (len(calls), scanner.scans) == (10, 2)
    finally:
        await scanner.close()


# -- chain issues through assess ------------------------------------------------------------------


async def test_missing_intermediate_fetched_from_aia_is_incomplete(
    tmp_path: Path, responder: RevocationServer, assessor: Harness
) -> None:
    pki = PKI(tmp_path)
    url = responder.serve_ca("inter", pki.intermediate.cert)
    leaf = pki.issue("bare", extensions=[aia(ca_issuers=url)])
    prof = Profile(trust=str(pki.root.cert_path))
    a = await assessor.assess(
        observation=static(der(leaf.cert)), server_name="localhost", profile=prof, reopen=None, now=T0
    )
    assert (a.chain_valid, a.chain_issues, a.grade) == (False, frozenset({"incomplete"}), "B")
    assert responder.hits == ["/ca/inter"]
    assert any(line.startswith(f"aia: {url}: 1 certificate(s), issuer ") for line in a.log)
    responder.down = True  # cached: no second fetch needed
    b = await assessor.assess(
        observation=static(der(leaf.cert)), server_name="localhost", profile=prof, reopen=None, now=T0 + 60
    )
    assert b.chain_issues == {"incomplete"} and responder.hits == ["/ca/inter"]


async def test_aia_down_leaves_untrusted_root(tmp_path: Path, responder: RevocationServer, assessor: Harness) -> None:
    pki = PKI(tmp_path)
    leaf = pki.issue("bare", extensions=[aia(ca_issuers=f"{responder.base}/ca/none")])
    a = await assessor.assess(
        observation=static(der(leaf.cert)),
        server_name="localhost",
        profile=Profile(trust=str(pki.root.cert_path)),
        reopen=None,
        now=T0,
    )
    assert (a.chain_valid, a.chain_issues, a.grade) == (False, frozenset({"untrusted_root"}), "T")
    assert any("HTTP 404" in line for line in a.log)


@pytest.mark.parametrize(
    ("name", "server_name", "issues", "grade"),
    [
        ("expired", "localhost", {"expired"}, "T"),
        ("not-yet-valid", "localhost", {"not_yet_valid"}, "T"),
        ("self-signed", "localhost", {"self_signed"}, "T"),
        ("wrong-host", "localhost", {"hostname_mismatch"}, "M"),
        ("good", "other.test", {"hostname_mismatch"}, "M"),
    ],
)
async def test_chain_issues_and_special_grades(
    pki: PKI, assessor: Harness, profile: Profile, name: str, server_name: str, issues: set[str], grade: str
) -> None:
    a = await assessor.assess(
        observation=static(der(*pki[name].chain)), server_name=server_name, profile=profile, reopen=None, now=T0
    )
    assert (a.chain_valid, a.chain_issues, a.grade, a.score) == (False, issues, grade, 100.0)
    assert a.protocols_accepted == ()


async def test_unknown_root_and_wrong_order(tmp_path: Path, pki: PKI, assessor: Harness, profile: Profile) -> None:
    stranger = PKI(tmp_path).issue("stranger")
    a = await assessor.assess(
        observation=static(der(*stranger.chain)), server_name="localhost", profile=profile, reopen=None, now=T0
    )
    assert (a.chain_valid, a.chain_issues, a.grade) == (False, {"untrusted_root"}, "T")
    good = pki["good"]
    b = await assessor.assess(
        observation=static(der(good.cert, pki.root.cert, pki.intermediate.cert)),
        server_name="localhost",
        profile=profile,
        reopen=None,
        now=T0,
    )
    assert (b.chain_valid, b.chain_issues, b.grade) == (True, {"wrong_order"}, "A-")


# -- revocation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "valid"), [("good", True), ("revoked", False), ("unknown", True)])
async def test_ocsp_responder_answers(
    tmp_path: Path, responder: RevocationServer, assessor: Harness, status: str, valid: bool
) -> None:
    pki = PKI(tmp_path)
    leaf = pki.issue("leaf", extensions=[aia(ocsp_url=f"{responder.base}/ocsp")])
    responder.register(leaf.cert, pki.intermediate, status)
    a = await assessor.assess(
        observation=static(der(*leaf.chain)),
        server_name="localhost",
        profile=Profile(trust=str(pki.root.cert_path)),
        reopen=None,
        now=T0,
    )
    assert (a.ocsp_status, a.ocsp_stapled, a.chain_valid) == (status, False, valid)
    assert a.chain_issues == (frozenset({"revoked"}) if status == "revoked" else frozenset())
    assert a.grade == ("T" if status == "revoked" else "A")
    assert responder.hits == ["GET /ocsp"]


async def test_ocsp_responder_down_is_error_and_no_url_is_not_checked(
    tmp_path: Path, responder: RevocationServer, assessor: Harness
) -> None:
    pki = PKI(tmp_path)
    prof = Profile(trust=str(pki.root.cert_path))
    leaf = pki.issue("leaf", extensions=[aia(ocsp_url=f"{responder.base}/ocsp")])
    responder.register(leaf.cert, pki.intermediate, "good")
    responder.down = True
    a = await assessor.assess(
        observation=static(der(*leaf.chain)), server_name="localhost", profile=prof, reopen=None, now=T0
    )
    # The responder did not answer: revocation could not be judged (not a finding), the chain stands.
    assert (a.ocsp_status, a.chain_valid, a.errors) == (None, True, frozenset({Step.REVOCATION}))
    assert any("HTTP 503" in line for line in a.log)
    assert any(line.startswith("revocation: could not be judged: ") for line in a.log)
    plain = pki.issue("plain")
    b = await assessor.assess(
        observation=static(der(*plain.chain)), server_name="localhost", profile=prof, reopen=None, now=T0
    )
    assert b.ocsp_status == "not_checked"
    off = await assessor.assess(
        observation=static(der(*leaf.chain)),
        server_name="localhost",
        profile=replace(prof, revocation="none"),
        reopen=None,
        now=T0,
    )
    assert off.ocsp_status == "not_checked" and len(responder.hits) == 1


@pytest.mark.parametrize(("flag", "version"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
async def test_a_valid_staple_of_the_real_handshake_counts_and_the_responder_is_not_asked(
    tmp_path: Path, responder: RevocationServer, flag: str, version: str
) -> None:
    """openssl s_server staples a file: the probe's own handshake reads it, in TLS 1.2 and 1.3."""
    pki = PKI(tmp_path)
    leaf = pki.issue("stapled", extensions=[aia(ocsp_url=f"{responder.base}/ocsp")])
    responder.register(leaf.cert, pki.intermediate, "revoked")  # would say revoked if asked
    staple = tmp_path / "staple.der"
    staple.write_bytes(ocsp_response(leaf.cert, pki.intermediate, "good"))
    profile = Profile(trust=str(pki.root.cert_path), scan_protocol_versions=False)
    with OpenSSLServer(leaf, flag, "-status_file", str(staple), workdir=tmp_path) as server:
        target = make_target(server.port)
        pipeline = Pipeline(assessor=Assessor(fetcher=Fetcher(timeout=5)))
        try:
            (result,) = await pipeline.probe(target, make_config(target, profiles=[profile]))
        finally:
            await pipeline.close()
    assert result.session is not None and result.session.version == version
    assert result.report is not None and result.report.assessment is not None
    a = result.report.assessment
    assert (a.ocsp_status, a.ocsp_stapled, a.chain_valid) == ("good", True, True)
    assert responder.hits == []
    assert any("and a stapled OCSP response" in line for line in result.log)


async def test_without_a_staple_the_responder_is_asked_and_stapled_is_0(
    tmp_path: Path, responder: RevocationServer
) -> None:
    pki = PKI(tmp_path)
    leaf = pki.issue("plain", extensions=[aia(ocsp_url=f"{responder.base}/ocsp")])
    responder.register(leaf.cert, pki.intermediate, "good")
    profile = Profile(trust=str(pki.root.cert_path), scan_protocol_versions=False)
    with OpenSSLServer(leaf, "-tls1_3", workdir=tmp_path) as server:
        target = make_target(server.port)
        pipeline = Pipeline(assessor=Assessor(fetcher=Fetcher(timeout=5)))
        try:
            (result,) = await pipeline.probe(target, make_config(target, profiles=[profile]))
        finally:
            await pipeline.close()
    assert result.report is not None and result.report.assessment is not None
    a = result.report.assessment
    assert (a.ocsp_status, a.ocsp_stapled) == ("good", False)
    assert len(responder.hits) == 1


async def test_a_valid_staple_counts_on_every_probe_also_when_the_chain_verdict_is_cached(
    tmp_path: Path, responder: RevocationServer, assessor: Harness
) -> None:
    """The second probe of a chain takes its verdict from the cache; the verdict's path must be
    this probe's certificates, or the leaf's issuer is not found and the staple is ignored."""
    pki = PKI(tmp_path)
    leaf = pki.issue("leaf", extensions=[aia(ocsp_url=f"{responder.base}/ocsp")])
    responder.register(leaf.cert, pki.intermediate, "revoked")  # would say revoked if asked
    staple = ocsp_response(leaf.cert, pki.intermediate, "good")
    seen = []
    for _ in range(3):
        seen.append(
            await assessor.assess(
                observation=static(der(*leaf.chain), ocsp_staple=staple),
                server_name="localhost",
                profile=Profile(trust=str(pki.root.cert_path), scan_protocol_versions=False),
                reopen=None,
                now=T0,
            )
        )
    assert assessor.assessor.verdicts.hits == 2
    assert [(a.ocsp_status, a.ocsp_stapled, a.chain_valid) for a in seen] == [("good", True, True)] * 3
    assert responder.hits == []


async def test_stale_staple_falls_back_to_the_responder(
    tmp_path: Path, responder: RevocationServer, assessor: Harness
) -> None:
    pki = PKI(tmp_path)
    leaf = pki.issue("leaf", extensions=[aia(ocsp_url=f"{responder.base}/ocsp")])
    responder.register(leaf.cert, pki.intermediate, "revoked")
    stale = ocsp_response(
        leaf.cert,
        pki.intermediate,
        "good",
        this_update=NOW.replace(year=NOW.year - 1),
        next_update=NOW.replace(year=NOW.year - 1).replace(month=1, day=2),
    )
    a = await assessor.assess(
        observation=static(der(*leaf.chain), ocsp_staple=stale),
        server_name="localhost",
        profile=Profile(trust=str(pki.root.cert_path)),
        reopen=None,
        now=T0,
    )
    # A stale staple is no valid staple: stapled is 0, and the responder's answer decides.
    assert (a.ocsp_status, a.ocsp_stapled, a.chain_issues) == ("revoked", False, {"revoked"})
    assert any(line.startswith("ocsp: staple error (stale OCSP response") for line in a.log)


async def test_crl_revokes_leaf_and_intermediate(
    tmp_path: Path, responder: RevocationServer, assessor: Harness
) -> None:
    pki = PKI(tmp_path)
    prof = Profile(trust=str(pki.root.cert_path), revocation="crl")
    leaf = pki.issue("leaf", extensions=[crl_dp(f"{responder.base}/crl/inter")])
    responder.crls["inter"] = make_crl(pki.intermediate, [12345])
    a = await assessor.assess(
        observation=static(der(*leaf.chain)), server_name="localhost", profile=prof, reopen=None, now=T0
    )
    assert (a.chain_valid, a.chain_issues, a.ocsp_status) == (True, frozenset(), "not_checked")
    responder.crls["inter"] = make_crl(pki.intermediate, [leaf.cert.serial_number], next_update=NOW + 30 * DAY)
    b = await assessor.assess(
        observation=static(der(*leaf.chain)), server_name="localhost", profile=prof, reopen=None, now=T0 + 8 * 86400
    )  # the first CRL's nextUpdate (7 days) passed
    assert (b.chain_valid, b.chain_issues, b.grade) == (False, frozenset({"revoked"}), "T")
    # An intermediate revoked by the root's CRL.
    mid = sub_ca(pki, "Mid CA", extensions=[crl_dp(f"{responder.base}/crl/root")])
    under = pki.issue("under-mid", issuer=mid)
    responder.crls["root"] = make_crl(pki.root, [mid.cert.serial_number])
    c = await assessor.assess(
        observation=static(der(*under.chain)), server_name="localhost", profile=prof, reopen=None, now=T0
    )
    assert (c.chain_valid, c.chain_issues) == (False, frozenset({"revoked"}))
    assert any(line.startswith("crl: CN=Mid CA: ") and line.endswith(": revoked (listed in the CRL)") for line in c.log)


# -- failures never raise --------------------------------------------------------------------------


async def test_failures_become_log_lines(pki: PKI, assessor: Harness, tmp_path: Path) -> None:
    async def broken() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise OSError("no route")

    good = pki["good"]
    a = await assessor.assess(
        observation=static(der(*good.chain)),
        server_name="localhost",
        profile=Profile(trust=str(tmp_path / "missing.pem")),
        reopen=broken,
        now=T0,
    )
    assert isinstance(a.assessment, Assessment)
    # No trust store: the chain could not be judged (absent, never "invalid"); the grade still stands.
    assert (a.chain_valid, a.chain_issues, a.protocols_accepted) == (None, frozenset(), ())
    assert a.errors == frozenset({Step.CHAIN}) and a.grade is not None
    assert any(line.startswith("chain: could not be judged: TrustError: trust bundle ") for line in a.log)
    assert any(line.startswith("hello TLSv1.3: unknown (connect: OSError: no route)") for line in a.log)
    junk = await assessor.assess(observation=static([b"junk"]), server_name="x", profile=Profile(), reopen=None, now=T0)
    assert (junk.chain_valid, junk.grade, junk.ocsp_status) == (None, None, None)
    assert junk.errors == frozenset({Step.CHAIN, Step.REVOCATION, Step.GRADE})
