"""Basic auth: bcrypt checks, the cache of successful checks, and malformed headers."""

from __future__ import annotations

import base64

import bcrypt
import pytest

from exporter.web.guard import BasicAuth


def _header(user: str, password: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def auth() -> BasicAuth:
    return BasicAuth({"alice": bcrypt.hashpw(b"pa:ss", bcrypt.gensalt(4))}, cache_size=2)


async def test_good_credentials_are_checked_once_then_cached(auth: BasicAuth) -> None:
    for _ in range(5):
        assert await auth.allowed(_header("alice", "pa:ss"))  # a colon in the password is kept
    assert auth.bcrypt_checks == 1


async def test_failures_are_never_cached(auth: BasicAuth) -> None:
    for _ in range(3):
        assert not await auth.allowed(_header("alice", "wrong"))
    assert auth.bcrypt_checks == 3
    assert await auth.allowed(_header("alice", "pa:ss"))
    assert auth.bcrypt_checks == 4


async def test_unknown_user_costs_a_bcrypt_check_and_fails(auth: BasicAuth) -> None:
    assert not await auth.allowed(_header("mallory", "pa:ss"))
    assert auth.bcrypt_checks == 1  # checked against a dummy hash: as slow as a known user


async def test_cache_is_bounded(auth: BasicAuth) -> None:
    auth.users["bob"] = bcrypt.hashpw(b"b", bcrypt.gensalt(4))
    auth.users["carol"] = bcrypt.hashpw(b"c", bcrypt.gensalt(4))
    for user, password in (("alice", "pa:ss"), ("bob", "b"), ("carol", "c")):
        assert await auth.allowed(_header(user, password))
    assert auth.bcrypt_checks == 3
    assert await auth.allowed(_header("alice", "pa:ss"))  # evicted (cache of 2): checked again
    assert auth.bcrypt_checks == 4


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"alice-without-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:pa:ss").decode(),
    ],
)
async def test_malformed_headers_are_refused_without_bcrypt(auth: BasicAuth, header: str | None) -> None:
    assert not await auth.allowed(header)
    assert auth.bcrypt_checks == 0


async def test_scheme_is_case_insensitive(auth: BasicAuth) -> None:
    assert await auth.allowed(_header("alice", "pa:ss", scheme="basic"))
