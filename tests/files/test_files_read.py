"""read_file, expand and read_target against real files in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from certfiles import DER, PEM, der, key_pem, p7, p12, pem, write
from pki import PKI

from exporter.certs.judge import judge
from exporter.config.model import FileTarget, OwnerRule, Profile
from exporter.results import CertFacts, Result
from exporter.sources import file as file_prober
from exporter.sources.file import MAX_FILE_BYTES, FileSource, expand, read_file
from exporter.support.deadline import Deadline
from exporter.support.errors import FileOutcome

NOW = 1_700_000_000.0
PROFILE = Profile()


def _target(path: str | Path, **kw: Any) -> FileTarget:
    return FileTarget(path=str(path), name="appliance", owner=kw.pop("owner", "hsm-team"), **kw)


@dataclass(frozen=True)
class Read:
    """A judged file result, field by field as these tests read it."""

    path: str
    outcome: FileOutcome
    detail: str
    read_at: float
    certificates: tuple[CertFacts, ...]
    owners: tuple[str, ...]
    key_weak: tuple[bool, ...]
    signature_weak: tuple[bool, ...]


def _view(r: Result) -> Read:
    rep = r.report
    assert isinstance(r.outcome, FileOutcome)
    return Read(
        path=r.location,
        outcome=r.outcome,
        detail=r.detail,
        read_at=r.started_at,
        certificates=rep.chain if rep else (),
        owners=rep.owners if rep else (),
        key_weak=rep.key_weak if rep else (),
        signature_weak=rep.signature_weak if rep else (),
    )


def _read(path: str | Path, rules: tuple[OwnerRule, ...] = (), **kw: Any) -> Read:
    target = _target(path, **kw)
    return _view(judge(read_file(str(path), target, NOW), target, PROFILE, rules))


async def read_target(target: FileTarget, profile: Profile, rules: tuple[OwnerRule, ...]) -> list[Read]:
    """What the file source observes for one entry, judged."""
    observations = await FileSource().observe(target, Deadline(60.0))
    return [_view(judge(o, target, profile, rules)) for o in observations]


def _serials(result: Read) -> list[str]:
    return [c.serial for c in result.certificates]


def _hex(serial: int) -> str:
    return format(serial, "x")


# -- formats ---------------------------------------------------------------------------------


def test_pem_single(pki: PKI, tmp_path: Path) -> None:
    good = pki["good"]
    result = _read(write(tmp_path / "server.pem", pem(good.cert)))
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert result.path == str(tmp_path / "server.pem")
    assert result.detail == ""
    assert result.read_at == NOW
    assert len(result.certificates) == 1
    facts = result.certificates[0]
    assert facts.serial == good.serial_hex
    assert facts.fingerprint_sha256 == good.fingerprint
    assert facts.not_after == good.cert.not_valid_after_utc.timestamp()
    assert result.owners == ("hsm-team",)
    assert result.key_weak == (False,)
    assert result.signature_weak == (False,)


def test_pem_bundle_of_three_positions_and_owners(pki: PKI, tmp_path: Path) -> None:
    chain = [pki["good"].cert, pki.intermediate.cert, pki.root.cert]
    rules = (OwnerRule(field="subject_cn", pattern="test INTERMEDIATE *", owner="pki-team"),)
    result = _read(write(tmp_path / "bundle.pem", pem(*chain)), rules)
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert _serials(result) == [_hex(c.serial_number) for c in chain]
    assert [c.subject_cn for c in result.certificates] == ["localhost", "Test Intermediate CA", "Test Root CA"]
    assert [c.is_ca for c in result.certificates] == [False, True, True]
    assert result.owners == ("hsm-team", "pki-team", "hsm-team")
    assert result.key_weak == (False, False, False)
    assert result.signature_weak == (False, False, False)


def test_pem_with_key_before_the_certificate(pki: PKI, tmp_path: Path) -> None:
    good = pki["good"]
    result = _read(write(tmp_path / "combined.pem", key_pem(good.key) + pem(good.cert)))
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert _serials(result) == [good.serial_hex]


def test_key_only_pem_is_a_parse_error(pki: PKI, tmp_path: Path) -> None:
    result = _read(write(tmp_path / "server.key.pem", key_pem(pki["good"].key)))
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert result.detail == "no certificate found (PEM file holds: PRIVATE KEY)"
    assert result.certificates == () and result.owners == ()


def test_der(pki: PKI, tmp_path: Path) -> None:
    result = _read(write(tmp_path / "server.der", der(pki["good"].cert)))
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert _serials(result) == [pki["good"].serial_hex]


def test_truncated_der_is_a_parse_error(pki: PKI, tmp_path: Path) -> None:
    result = _read(write(tmp_path / "server.der", der(pki["good"].cert)[:100]))
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert result.detail == "truncated or invalid DER"


@pytest.mark.parametrize(("encoding", "name"), [(PEM, "bundle.p7c"), (DER, "bundle.p7b")])
def test_pkcs7(pki: PKI, tmp_path: Path, encoding: Any, name: str) -> None:
    chain = [pki["good"].cert, pki.intermediate.cert, pki.root.cert]
    result = _read(write(tmp_path / name, p7(chain[::-1], encoding)))
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert _serials(result) == [_hex(c.serial_number) for c in chain]  # leaf first whatever the SET order


def test_pkcs12_without_password(pki: PKI, tmp_path: Path) -> None:
    good = pki["good"]
    result = _read(write(tmp_path / "server.p12", p12(good.key, good.cert, [pki.intermediate.cert])))
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert _serials(result) == [good.serial_hex, _hex(pki.intermediate.cert.serial_number)]


def test_pkcs12_password_from_environment(pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = pki["good"]
    path = write(tmp_path / "server.pfx", p12(good.key, good.cert, password="s3crét".encode()))
    monkeypatch.setenv("APPLIANCE_P12_PASSWORD", "s3crét")  # UTF-8 bytes are the password
    result = _read(path, password_env="APPLIANCE_P12_PASSWORD")
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND
    assert _serials(result) == [good.serial_hex]


def test_pkcs12_password_from_file_first_line(pki: PKI, tmp_path: Path) -> None:
    good = pki["good"]
    path = write(tmp_path / "server.p12", p12(good.key, good.cert, password=b"s3cret"))
    for content in (b"s3cret\nsecond line\n", b"s3cret\r\n", b"s3cret"):
        secret = write(tmp_path / "secret.txt", content)
        result = _read(path, password_file=str(secret))
        assert result.outcome is FileOutcome.CERTIFICATE_FOUND, content
        assert _serials(result) == [good.serial_hex]


def test_pkcs12_wrong_password(pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = pki["good"]
    path = write(tmp_path / "server.p12", p12(good.key, good.cert, password=b"s3cret"))
    monkeypatch.setenv("P12_PASSWORD", "not-it")
    result = _read(path, password_env="P12_PASSWORD")
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert result.detail == "PKCS#12: wrong password (or not valid PKCS#12)"


def test_pkcs12_password_source_unavailable(pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = pki["good"]
    path = write(tmp_path / "server.p12", p12(good.key, good.cert, password=b"s3cret"))
    monkeypatch.delenv("P12_UNSET", raising=False)
    result = _read(path, password_env="P12_UNSET")
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert result.detail == (
        "PKCS#12 needs a password (or is not valid PKCS#12); environment variable P12_UNSET is not set"
    )
    result = _read(path, password_file=str(tmp_path / "nope.txt"))
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert result.detail.endswith(f"; password file {tmp_path / 'nope.txt'}: No such file or directory (ENOENT)")
    # A PEM file does not need the password: its absence is not mentioned.
    result = _read(write(tmp_path / "plain.pem", pem(good.cert)), password_env="P12_UNSET")
    assert result.outcome is FileOutcome.CERTIFICATE_FOUND


def test_weak_key_and_weak_signature_per_certificate(pki: PKI, tmp_path: Path) -> None:
    data = pem(pki["rsa-1024"].cert, pki["sha1"].cert, pki["good-rsa"].cert)
    result = _read(write(tmp_path / "mixed.pem", data))
    assert [c.key_bits for c in result.certificates] == [1024, 2048, 2048]
    assert result.key_weak == (True, False, False)
    assert result.signature_weak == (False, True, False)


def test_certificate_owner_rules_and_fallback(pki: PKI, tmp_path: Path) -> None:
    rules = (
        OwnerRule(field="san", pattern="WRONG.example.test", owner="misc"),
        OwnerRule(field="san", pattern="*.test", owner="web"),
    )
    result = _read(write(tmp_path / "two.pem", pem(pki["wrong-host"].cert, pki["good"].cert, pki.root.cert)), rules)
    assert result.owners == ("misc", "web", "hsm-team")


# -- failures reading --------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    result = _read(tmp_path / "absent.pem")
    assert result.outcome is FileOutcome.MISSING
    assert result.detail == "No such file or directory (ENOENT)"
    assert result.read_at == NOW


def test_path_under_a_file_is_missing(pki: PKI, tmp_path: Path) -> None:
    parent = write(tmp_path / "server.pem", pem(pki["good"].cert))
    result = _read(parent / "child.pem")
    assert result.outcome is FileOutcome.MISSING
    assert result.detail == "Not a directory (ENOTDIR)"


def test_dangling_symlink_is_missing(tmp_path: Path) -> None:
    (tmp_path / "link.pem").symlink_to(tmp_path / "gone.pem")
    assert _read(tmp_path / "link.pem").outcome is FileOutcome.MISSING


def test_directory_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "certs.pem").mkdir()
    result = _read(tmp_path / "certs.pem")
    assert result.outcome is FileOutcome.UNREADABLE
    assert result.detail == "Is a directory (EISDIR)"


def test_fifo_is_unreadable_and_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.pem")
    result = _read(tmp_path / "pipe.pem")
    assert result.outcome is FileOutcome.UNREADABLE
    assert result.detail == "certificate file is a FIFO, not a regular file (EINVAL)"


def test_file_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "huge.pem"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing written
    result = _read(big)
    assert result.outcome is FileOutcome.PARSE_ERROR
    assert result.detail == "file larger than 4 MiB"


def test_file_at_the_limit_is_read(pki: PKI, tmp_path: Path) -> None:
    data = pem(pki["good"].cert)
    path = write(tmp_path / "padded.pem", data + b"\n" * (MAX_FILE_BYTES - len(data)))
    assert os.path.getsize(path) == MAX_FILE_BYTES
    assert _read(path).outcome is FileOutcome.CERTIFICATE_FOUND


_CHILD = r"""
import json, os, pwd, sys
from exporter.config.model import FileTarget
from exporter.sources.file import read_file
if os.geteuid() == 0:  # drop to nobody after the imports: root reads every file
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)
out = {}
for path in sys.argv[1:]:
    r = read_file(path, FileTarget(path=path, name="x", owner="o"), 1.0)
    out[path] = [r.outcome.value, r.detail, len(r.certificates)]
print(json.dumps(out))
"""


def test_permission_denied_is_unreadable(pki: PKI, tmp_path: Path) -> None:
    """EACCES for real: as root (CI) the read runs in a child that drops to `nobody`; as any
    other user chmod 000 is enough. Paths are relative to the child's working directory, so
    only tmp_path itself (not its 0700 parents) must be searchable by `nobody`."""
    tmp_path.chmod(0o755)
    write(tmp_path / "readable.pem", pem(pki["good"].cert)).chmod(0o644)
    write(tmp_path / "secret.pem", pem(pki["good"].cert)).chmod(0o000)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, "readable.pem", "secret.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["readable.pem"] == ["certificate_found", "", 1]
    assert out["secret.pem"] == ["unreadable", "Permission denied (EACCES)", 0]


# -- expand --------------------------------------------------------------------------------------


def test_expand_plain_path(tmp_path: Path) -> None:
    assert expand(str(tmp_path / "absent.pem")) == [str(tmp_path / "absent.pem")]
    write(tmp_path / "there.txt", b"x")
    assert expand(str(tmp_path / "there.txt")) == [str(tmp_path / "there.txt")]


def test_expand_glob_sorted_without_directories(tmp_path: Path) -> None:
    for name in ("b.pem", "a.pem", "c.crt", "10.pem"):
        write(tmp_path / name, b"x")
    (tmp_path / "dir.pem").mkdir()
    assert expand(str(tmp_path / "*.pem")) == [str(tmp_path / n) for n in ("10.pem", "a.pem", "b.pem")]
    assert expand(str(tmp_path / "[ab].pem")) == [str(tmp_path / n) for n in ("a.pem", "b.pem")]
    assert expand(str(tmp_path / "?.crt")) == [str(tmp_path / "c.crt")]
    assert expand(str(tmp_path / "*.der")) == []


def test_expand_directory_lists_certificate_files_only(tmp_path: Path) -> None:
    names = ("a.PEM", "b.crt", "c.cer", "d.der", "e.p7b", "f.p7c", "g.p12", "h.pfx", "notes.txt", "server.key", "pem")
    for name in names:
        write(tmp_path / name, b"x")
    write(tmp_path / "sub" / "deep.pem", b"x")
    (tmp_path / "dir.pem").mkdir()
    expected = [str(tmp_path / n) for n in names[:8]]
    assert expand(str(tmp_path)) == expected
    assert expand(str(tmp_path) + "/") == [str(tmp_path) + "/" + n for n in names[:8]]


# -- read_target ---------------------------------------------------------------------------------


async def test_glob_matching_nothing_is_one_missing_result(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.pem")
    results = await read_target(_target(pattern), PROFILE, ())
    assert [(r.path, r.outcome, r.detail, r.certificates) for r in results] == [
        (pattern, FileOutcome.MISSING, "no file matches the pattern", ())
    ]


async def test_empty_directory_is_one_missing_result(tmp_path: Path) -> None:
    write(tmp_path / "readme.txt", b"x")
    results = await read_target(_target(tmp_path), PROFILE, ())
    assert [(r.path, r.outcome, r.detail) for r in results] == [
        (str(tmp_path), FileOutcome.MISSING, "no certificate file in the directory")
    ]


async def test_plain_missing_path_keeps_its_own_reason(tmp_path: Path) -> None:
    results = await read_target(_target(tmp_path / "gone.pem"), PROFILE, ())
    assert [(r.path, r.outcome) for r in results] == [(str(tmp_path / "gone.pem"), FileOutcome.MISSING)]
    assert results[0].detail == "No such file or directory (ENOENT)"


async def test_directory_of_mixed_files(pki: PKI, tmp_path: Path) -> None:
    write(tmp_path / "a-good.pem", pem(pki["good"].cert))
    write(tmp_path / "b-key.pem", key_pem(pki["good"].key))
    write(tmp_path / "c-broken.der", der(pki["good"].cert)[:50])
    write(tmp_path / "d-bundle.p12", p12(pki["expired"].key, pki["expired"].cert))
    results = await read_target(_target(tmp_path), PROFILE, ())
    assert [(Path(r.path).name, r.outcome) for r in results] == [
        ("a-good.pem", FileOutcome.CERTIFICATE_FOUND),
        ("b-key.pem", FileOutcome.PARSE_ERROR),
        ("c-broken.der", FileOutcome.PARSE_ERROR),
        ("d-bundle.p12", FileOutcome.CERTIFICATE_FOUND),
    ]
    assert results[3].certificates[0].serial == pki["expired"].serial_hex


async def test_glob_over_a_thousand_files_in_batches(pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, broken = pem(pki["good"].cert), key_pem(pki["good"].key)
    for i in range(1000):
        write(tmp_path / f"cert-{i:04d}.pem", broken if i % 100 == 7 else good)
    write(tmp_path / "ignored.txt", good)

    calls = active = peak = 0
    real_to_thread = file_prober.in_file_thread

    async def counting_to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls, active, peak
        calls += 1
        active += 1
        peak = max(peak, active)
        try:
            coro: Awaitable[Any] = real_to_thread(func, *args)
            return await coro
        finally:
            active -= 1

    monkeypatch.setattr(file_prober, "in_file_thread", counting_to_thread)
    results = await read_target(_target(tmp_path / "cert-*.pem"), PROFILE, ())

    assert len(results) == 1000
    assert [r.path for r in results] == [str(tmp_path / f"cert-{i:04d}.pem") for i in range(1000)]
    bad = [i for i, r in enumerate(results) if r.outcome is FileOutcome.PARSE_ERROR]
    assert bad == [i for i in range(1000) if i % 100 == 7]
    found = [r for r in results if r.outcome is FileOutcome.CERTIFICATE_FOUND]
    assert len(found) == 990
    assert {r.certificates[0].fingerprint_sha256 for r in found} == {pki["good"].fingerprint}
    assert len({r.read_at for r in results}) == 1  # one pass, one time
    # One thread task for the glob, then one per batch; never more than the cap at once.
    batches = -(-1000 // file_prober.BATCH_SIZE)
    assert calls == 1 + batches
    assert peak <= file_prober.MAX_PARALLEL_BATCHES
