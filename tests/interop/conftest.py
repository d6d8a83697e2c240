"""Session-scoped fixtures, one per real server, each started lazily the first time a test asks.

Every fixture yields a started ``RealServer`` (``.ports`` maps a role such as ``"imaps"`` to
its port) and stops it at the end of the session, whether the tests passed or not. All state
lives in a pytest tmp dir named after the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pki import PKI

from .realservers import (
    RealServer,
    start_dovecot,
    start_innd,
    start_kamailio,
    start_mariadb,
    start_mosquitto,
    start_ngircd,
    start_nnrpd_tls,
    start_postfix,
    start_postgres,
    start_prosody,
    start_redis,
    start_slapd,
    start_vsftpd,
)


def _serve(
    tmp_path_factory: pytest.TempPathFactory, name: str, start: Callable[[Path], RealServer]
) -> Iterator[RealServer]:
    server = start(tmp_path_factory.mktemp(name))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_postfix(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "postfix", lambda d: start_postfix(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_dovecot(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "dovecot", lambda d: start_dovecot(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_dovecot_notls(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory, "dovecot-notls", lambda d: start_dovecot(d, good.chain_path, good.key_path, tls=False)
    )


@pytest.fixture(scope="session")
def real_vsftpd(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory, "vsftpd", lambda d: start_vsftpd(d, good.chain_path, good.key_path, implicit=False)
    )


@pytest.fixture(scope="session")
def real_vsftpd_implicit(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory, "vsftpd-implicit", lambda d: start_vsftpd(d, good.chain_path, good.key_path, implicit=True)
    )


@pytest.fixture(scope="session")
def real_slapd(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory, "slapd", lambda d: start_slapd(d, good.chain_path, good.key_path, pki.root.cert_path)
    )


@pytest.fixture(scope="session")
def real_postgres(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "postgres", lambda d: start_postgres(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_mariadb(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory, "mariadb", lambda d: start_mariadb(d, good.chain_path, good.key_path, pki.root.cert_path)
    )


@pytest.fixture(scope="session")
def real_prosody(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "prosody", lambda d: start_prosody(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_kamailio(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "kamailio", lambda d: start_kamailio(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_vsftpd_notls(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory,
        "vsftpd-notls",
        lambda d: start_vsftpd(d, good.chain_path, good.key_path, implicit=False, tls=False),
    )


@pytest.fixture(scope="session")
def real_slapd_notls(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory,
        "slapd-notls",
        lambda d: start_slapd(d, good.chain_path, good.key_path, pki.root.cert_path, tls=False),
    )


@pytest.fixture(scope="session")
def real_innd(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "innd", lambda d: start_innd(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_innd_notls(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(
        tmp_path_factory, "innd-notls", lambda d: start_innd(d, good.chain_path, good.key_path, tls=False)
    )


@pytest.fixture(scope="session")
def real_nnrpd_tls(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "nnrpd-tls", lambda d: start_nnrpd_tls(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_ngircd(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "ngircd", lambda d: start_ngircd(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_mosquitto(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "mosquitto", lambda d: start_mosquitto(d, good.chain_path, good.key_path))


@pytest.fixture(scope="session")
def real_redis(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    good = pki["good"]
    yield from _serve(tmp_path_factory, "redis", lambda d: start_redis(d, good.chain_path, good.key_path))
