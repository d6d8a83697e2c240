from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from certs.posture_kit import DAY, RevocationServer, crl_dp, make_crl, ocsp_response, ocsp_signer
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_der_x509_crl, ocsp
from pki import NOW, PKI
from servers import LoopbackServers

from exporter.certs.revocation import crl_urls, judge_crl, judge_ocsp, ocsp_request
from exporter.judge.fetch import Fetcher, FetchError, parse_certificates


@pytest.fixture
async def responder() -> AsyncIterator[RevocationServer]:
    server = await RevocationServer().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    f = Fetcher(timeout=5)
    try:
        yield f
    finally:
        await f.close()


# -- OCSP, judged ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["good", "revoked", "unknown"])
def test_ocsp_statuses(pki: PKI, status: str) -> None:
    good = pki["good"]
    v = judge_ocsp(ocsp_response(good.cert, pki.intermediate, status), good.cert, pki.intermediate.cert, NOW)
    assert v.status == status
    assert v.next_update is not None and v.next_update > NOW
    assert (v.revoked_at is not None) == (status == "revoked")


def test_ocsp_delegated_responder(pki: PKI, tmp_path: Path) -> None:
    good = pki["good"]
    signer = ocsp_signer(pki, pki.intermediate)
    data = ocsp_response(good.cert, pki.intermediate, "good", signer=signer)
    assert judge_ocsp(data, good.cert, pki.intermediate.cert, NOW).status == "good"
    # A responder certificate from another CA is not a delegate of our issuer.
    stranger = ocsp_signer(PKI(tmp_path), PKI(tmp_path / "x").intermediate, "Stranger")
    forged = ocsp_response(good.cert, pki.intermediate, "good", signer=stranger)
    v = judge_ocsp(forged, good.cert, pki.intermediate.cert, NOW)
    assert (v.status, v.detail) == ("error", "bad OCSP signature (not the issuer nor a delegated responder)")


def test_ocsp_errors(pki: PKI) -> None:
    good, other = pki["good"], pki["good-rsa"]
    inter = pki.intermediate
    cases = {
        "other serial": judge_ocsp(ocsp_response(other.cert, inter, "good"), good.cert, inter.cert, NOW),
        "stale": judge_ocsp(
            ocsp_response(good.cert, inter, "good", this_update=NOW - 3 * DAY, next_update=NOW - DAY),
            good.cert,
            inter.cert,
            NOW,
        ),
        "future": judge_ocsp(
            ocsp_response(good.cert, inter, "good", this_update=NOW + DAY, next_update=NOW + 2 * DAY),
            good.cert,
            inter.cert,
            NOW,
        ),
        "issuer": judge_ocsp(ocsp_response(good.cert, inter, "good"), good.cert, pki.root.cert, NOW),
        "unsuccessful": judge_ocsp(
            ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(
                serialization.Encoding.DER
            ),
            good.cert,
            inter.cert,
            NOW,
        ),
        "garbage": judge_ocsp(b"\x30\x03\x0a\x01\x00junk", good.cert, inter.cert, NOW),
    }
    assert {k: v.status for k, v in cases.items()} == dict.fromkeys(cases, "error")
    assert cases["other serial"].detail == "response is not about this certificate (serial)"
    assert cases["stale"].detail == "stale OCSP response (nextUpdate passed)"
    assert cases["future"].detail == "OCSP response from the future (thisUpdate)"
    assert cases["issuer"].detail == "response is not about this certificate (issuer)"
    assert cases["unsuccessful"].detail == "responder said try_later"
    assert cases["garbage"].detail.startswith("unparsable OCSP response")


def test_ocsp_request_names_the_certificate(pki: PKI) -> None:
    req = ocsp.load_der_ocsp_request(ocsp_request(pki["good"].cert, pki.intermediate.cert))
    assert req.serial_number == pki["good"].cert.serial_number


# -- CRL, judged ----------------------------------------------------------------------------------


def test_crl_judgements(pki: PKI, tmp_path: Path) -> None:
    good, inter = pki["good"], pki.intermediate
    listed = make_crl(inter, [good.cert.serial_number])
    assert judge_crl(make_crl(inter, [12345]), good.cert, inter.cert, NOW).status == "good"
    revoked = judge_crl(listed, good.cert, inter.cert, NOW)
    assert (revoked.status, revoked.detail) == ("revoked", "listed in the CRL")
    pem = load_der_x509_crl(listed).public_bytes(serialization.Encoding.PEM)
    assert judge_crl(pem, good.cert, inter.cert, NOW).status == "revoked"
    stale = judge_crl(make_crl(inter, next_update=NOW - DAY), good.cert, inter.cert, NOW)
    assert (stale.status, stale.detail) == ("error", "stale CRL (nextUpdate passed)")
    by_root = judge_crl(make_crl(pki.root), good.cert, inter.cert, NOW)
    assert (by_root.status, by_root.detail) == ("error", "CRL issued by another name")
    impostor = PKI(tmp_path).intermediate  # same name, other key
    forged = judge_crl(make_crl(impostor, [good.cert.serial_number]), good.cert, inter.cert, NOW)
    assert (forged.status, forged.detail) == ("error", "bad CRL signature")
    assert judge_crl(b"nope", good.cert, inter.cert, NOW).status == "error"


def test_crl_urls(pki: PKI) -> None:
    leaf = pki.issue("with-crl", extensions=[crl_dp("http://127.0.0.1:9/crl/inter")])
    assert crl_urls(leaf.cert) == ("http://127.0.0.1:9/crl/inter",)
    assert crl_urls(pki["good"].cert) == ()


# -- fetching over loopback HTTP ------------------------------------------------------------------


async def test_ocsp_fetch_uses_get_and_caches_until_next_update(
    pki: PKI, responder: RevocationServer, fetcher: Fetcher
) -> None:
    good = pki["good"]
    responder.register(good.cert, pki.intermediate, "revoked")
    req = ocsp_request(good.cert, pki.intermediate.cert)
    now = NOW.timestamp()
    first = await fetcher.ocsp(f"{responder.base}/ocsp", req, now=now)
    assert judge_ocsp(first, good.cert, pki.intermediate.cert, NOW).status == "revoked"
    assert await fetcher.ocsp(f"{responder.base}/ocsp", req, now=now + 3600) == first
    assert (responder.hits, fetcher.requests) == (["GET /ocsp"], 1)
    await fetcher.ocsp(f"{responder.base}/ocsp", req, now=now + 2 * 86400)  # past nextUpdate (1 day)
    assert (responder.hits, fetcher.requests) == (["GET /ocsp", "GET /ocsp"], 2)


async def test_unsuccessful_ocsp_is_not_cached(pki: PKI, responder: RevocationServer, fetcher: Fetcher) -> None:
    req = ocsp_request(pki["good"].cert, pki.intermediate.cert)  # not registered: "unauthorized"
    for _ in range(2):
        body = await fetcher.ocsp(f"{responder.base}/ocsp", req, now=NOW.timestamp())
        assert judge_ocsp(body, pki["good"].cert, pki.intermediate.cert, NOW).detail == "responder said unauthorized"
    assert fetcher.requests == 2


async def test_crl_and_aia_fetch_and_cache(pki: PKI, responder: RevocationServer, fetcher: Fetcher) -> None:
    now = NOW.timestamp()
    responder.crls["inter"] = make_crl(pki.intermediate, [7])
    url = f"{responder.base}/crl/inter"
    crl = await fetcher.crl(url, now=now)
    assert crl.public_bytes(serialization.Encoding.DER) == responder.crls["inter"]
    assert await fetcher.crl(url, now=now + 6 * 86400) is crl  # parsed once; nextUpdate is 7 days out
    assert fetcher.requests == 1
    der_url = responder.serve_ca("inter", pki.intermediate.cert)
    p7c_url = responder.serve_p7c("both", [pki.intermediate.cert, pki.root.cert])
    assert await fetcher.ca_issuers(der_url, now=now) == (pki.intermediate.cert,)
    assert set(await fetcher.ca_issuers(p7c_url, now=now)) == {pki.intermediate.cert, pki.root.cert}  # a SET: any order
    assert await fetcher.ca_issuers(der_url, now=now + 3600) == (pki.intermediate.cert,)
    assert fetcher.requests == 3
    pem = pki.intermediate.cert.public_bytes(serialization.Encoding.PEM)
    assert parse_certificates(pem) == (pki.intermediate.cert,)
    assert parse_certificates(b"junk") == ()


async def test_one_download_per_url_at_a_time_and_answers_kept_at_most_max_age(
    pki: PKI, responder: RevocationServer, fetcher: Fetcher
) -> None:
    now = NOW.timestamp()
    responder.crls["inter"] = make_crl(pki.intermediate, [7])  # nextUpdate 7 days out
    url = f"{responder.base}/crl/inter"
    crls = await asyncio.gather(*(fetcher.crl(url, now=now, max_age=3600) for _ in range(10)))
    assert fetcher.requests == 1 and all(c is crls[0] for c in crls)  # single-flight: one request, one parse
    assert await fetcher.crl(url, now=now + 3599, max_age=3600) is crls[0]
    assert fetcher.requests == 1
    await fetcher.crl(url, now=now + 3601, max_age=3600)  # revocation_interval over: fetched again
    assert fetcher.requests == 2


async def test_fetch_failures(pki: PKI, responder: RevocationServer, fetcher: Fetcher) -> None:
    now = NOW.timestamp()
    with pytest.raises(FetchError, match="only http:// URLs"):
        await fetcher.crl("https://127.0.0.1/crl", now=now)
    with pytest.raises(FetchError, match="only http:// URLs"):
        await fetcher.ca_issuers("ldap://127.0.0.1/cn=x", now=now)
    with pytest.raises(FetchError, match="HTTP 404"):
        await fetcher.crl(f"{responder.base}/crl/missing", now=now)
    small = Fetcher(timeout=5, max_bytes=1024)
    try:
        with pytest.raises(FetchError, match="over the 1024 byte cap"):
            await small.ca_issuers(f"{responder.base}/big", now=now)
    finally:
        await small.close()
    responder.crls["junk"] = b"not a crl"
    with pytest.raises(FetchError, match="not a CRL"):
        await fetcher.crl(f"{responder.base}/crl/junk", now=now)
    responder.down = True
    with pytest.raises(FetchError, match="HTTP 503"):
        await fetcher.ocsp(f"{responder.base}/ocsp", b"\x30\x00", now=now)


async def test_fetch_timeout(servers: LoopbackServers) -> None:
    port = servers.silent()
    f = Fetcher(timeout=0.3)
    try:
        with pytest.raises(FetchError, match=r"timed out after 0\.3s"):
            await f.crl(f"http://127.0.0.1:{port}/crl", now=NOW.timestamp())
    finally:
        await f.close()
