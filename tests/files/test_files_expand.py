"""expand: recursive ``**`` globs, and the Kubernetes secret-volume layout of symlinks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from certfiles import pem, write
from pki import PKI

from exporter.certs.judge import judge
from exporter.config.model import FileTarget, Profile
from exporter.results import Result
from exporter.schedule.changes import ChangeTracker, EventKind
from exporter.sources.file import FileSource, expand
from exporter.support.deadline import Deadline
from exporter.support.errors import FileOutcome


def _names(paths: list[str], root: Path) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


# -- ** ------------------------------------------------------------------------------------------


def _tree(root: Path) -> None:
    for name in ("top.pem", "a/one.pem", "a/b/c/three.pem", "a/b/c/notes.txt", "x/y/z/w/four.pem"):
        write(root / name, b"x")
    (root / "a" / "dir.pem").mkdir()  # a directory whose name matches is never a result
    write(root / ".hidden" / "secret.pem", b"x")  # wildcards, ** included, skip hidden names


def test_double_star_matches_depth_zero_one_and_three(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = _names(expand(str(tmp_path / "**" / "*.pem")), tmp_path)
    assert found == ["a/b/c/three.pem", "a/one.pem", "top.pem", "x/y/z/w/four.pem"]


def test_double_star_below_a_fixed_directory(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert _names(expand(str(tmp_path / "a" / "**" / "*.pem")), tmp_path) == ["a/b/c/three.pem", "a/one.pem"]
    assert _names(expand(str(tmp_path / "a" / "b" / "**" / "*.pem")), tmp_path) == ["a/b/c/three.pem"]


def test_double_star_alone_is_every_file_without_directories(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = _names(expand(str(tmp_path / "**")), tmp_path)
    assert found == ["a/b/c/notes.txt", "a/b/c/three.pem", "a/one.pem", "top.pem", "x/y/z/w/four.pem"]


def test_repeated_double_star_reports_each_file_once(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = _names(expand(str(tmp_path / "**" / "**" / "*.pem")), tmp_path)
    assert found == ["a/b/c/three.pem", "a/one.pem", "top.pem", "x/y/z/w/four.pem"]


def test_single_star_stays_one_level(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert _names(expand(str(tmp_path / "*" / "*.pem")), tmp_path) == ["a/one.pem"]


# -- Kubernetes secret volume ----------------------------------------------------------------
#
# What the kubelet's atomic writer leaves in a mounted secret:
#   ..2026_12_01_07_00_00.1/tls.crt   the data of one version, in a hidden directory
#   ..data -> ..2026_12_01_07_00_00.1  swapped atomically (rename of a new symlink) on update
#   tls.crt -> ..data/tls.crt          every key, linked through ..data


def _version(volume: Path, name: str, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        write(volume / name / key, data)


def _point_data_at(volume: Path, name: str) -> None:
    tmp = volume / "..data_tmp"
    tmp.symlink_to(name)
    os.replace(tmp, volume / "..data")  # rename(2): readers see the old or the new, never neither


def _secret_volume(volume: Path, pki: PKI) -> None:
    _version(volume, "..2026_12_01_07_00_00.1", {"tls.crt": pem(pki["good"].cert), "ca.crt": pem(pki.root.cert)})
    _point_data_at(volume, "..2026_12_01_07_00_00.1")
    for key in ("tls.crt", "ca.crt"):
        (volume / key).symlink_to(Path("..data") / key)


def _target(path: Path | str) -> FileTarget:
    return FileTarget(path=str(path), name="ingress", owner="platform")


async def _results(pattern: Path | str) -> list[Result]:
    target = _target(pattern)
    return [judge(o, target, Profile(), ()) for o in await FileSource().observe(target, Deadline(30.0))]


async def _read(pattern: Path | str) -> dict[str, tuple[FileOutcome, list[str]]]:
    out = {}
    for r in await _results(pattern):
        assert isinstance(r.outcome, FileOutcome)
        out[r.location] = (r.outcome, [c.serial for c in r.report.chain] if r.report else [])
    return out


def test_secret_volume_reports_only_the_key_names(tmp_path: Path, pki: PKI) -> None:
    _secret_volume(tmp_path, pki)
    visible = [str(tmp_path / "ca.crt"), str(tmp_path / "tls.crt")]
    assert expand(str(tmp_path)) == visible  # the directory form
    assert expand(str(tmp_path / "*.crt")) == visible
    assert expand(str(tmp_path / "**" / "*.crt")) == visible
    assert expand(str(tmp_path / "**")) == visible


async def test_secret_volume_reads_through_the_symlinks(tmp_path: Path, pki: PKI) -> None:
    _secret_volume(tmp_path, pki)
    assert await _read(tmp_path / "tls.crt") == {
        str(tmp_path / "tls.crt"): (FileOutcome.CERTIFICATE_FOUND, [pki["good"].serial_hex])
    }


async def test_secret_volume_update_keeps_the_paths_and_reads_the_new_certificate(tmp_path: Path, pki: PKI) -> None:
    _secret_volume(tmp_path, pki)
    before = expand(str(tmp_path / "**" / "*.crt"))
    renewed = {"tls.crt": pem(pki["expired"].cert), "ca.crt": pem(pki.root.cert)}
    _version(tmp_path, "..2026_12_01_08_00_00.2", renewed)
    _point_data_at(tmp_path, "..2026_12_01_08_00_00.2")

    # both versions on disk (the kubelet removes the old one afterwards): still one path per key
    assert expand(str(tmp_path / "**" / "*.crt")) == before == [str(tmp_path / "ca.crt"), str(tmp_path / "tls.crt")]
    assert expand(str(tmp_path)) == before
    assert await _read(tmp_path / "*.crt") == {
        str(tmp_path / "ca.crt"): (FileOutcome.CERTIFICATE_FOUND, [format(pki.root.cert.serial_number, "x")]),
        str(tmp_path / "tls.crt"): (FileOutcome.CERTIFICATE_FOUND, [pki["expired"].serial_hex]),
    }

    for key in renewed:
        (tmp_path / "..2026_12_01_07_00_00.1" / key).unlink()
    (tmp_path / "..2026_12_01_07_00_00.1").rmdir()
    assert expand(str(tmp_path / "**" / "*.crt")) == before
    assert (await _read(tmp_path / "tls.crt"))[str(tmp_path / "tls.crt")][1] == [pki["expired"].serial_hex]


async def test_a_secret_volume_swap_is_a_renewal_event(tmp_path: Path, pki: PKI) -> None:
    _secret_volume(tmp_path, pki)
    tracker, job = ChangeTracker(), _target(tmp_path / "tls.crt").key
    assert tracker.update(job, await _results(tmp_path / "tls.crt"), every_certificate=True) == []
    _version(tmp_path, "..2026_12_01_08_00_00.2", {"tls.crt": pem(pki["expiring-60d"].cert)})
    _point_data_at(tmp_path, "..2026_12_01_08_00_00.2")
    events = tracker.update(job, await _results(tmp_path / "tls.crt"), every_certificate=True)
    assert [(e.kind, e.location, e.previous_serial, e.certificate and e.certificate.serial) for e in events] == [
        (EventKind.RENEWED, str(tmp_path / "tls.crt"), pki["good"].serial_hex, pki["expiring-60d"].serial_hex)
    ]


def test_a_pattern_that_names_the_hidden_directory_is_taken_at_its_word(tmp_path: Path, pki: PKI) -> None:
    _secret_volume(tmp_path, pki)
    assert expand(str(tmp_path / "..data" / "tls.crt")) == [str(tmp_path / "..data" / "tls.crt")]
    assert expand(str(tmp_path / "..data" / "*.crt")) == [str(tmp_path / "..data" / n) for n in ("ca.crt", "tls.crt")]


def test_relative_double_star_patterns_stay_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert expand("**/*.pem") == ["a/b/c/three.pem", "a/one.pem", "top.pem", "x/y/z/w/four.pem"]
    assert expand("**") == ["a/b/c/notes.txt", "a/b/c/three.pem", "a/one.pem", "top.pem", "x/y/z/w/four.pem"]
    assert expand("a/**/*.pem") == ["a/b/c/three.pem", "a/one.pem"]


def test_double_star_with_a_wildcard_before_it(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert _names(expand(str(tmp_path / "[ax]" / "**" / "*.pem")), tmp_path) == [
        "a/b/c/three.pem",
        "a/one.pem",
        "x/y/z/w/four.pem",
    ]


def test_directory_names_with_glob_characters_are_walked_literally(tmp_path: Path) -> None:
    write(tmp_path / "[prod]" / "sub" / "a.pem", b"x")
    write(tmp_path / "p" / "sub" / "b.pem", b"x")  # what [prod] would match as a pattern
    assert _names(expand(str(tmp_path / "*" / "**" / "a.pem")), tmp_path) == ["[prod]/sub/a.pem"]


def test_symlink_loops_end_and_each_file_shows_once(tmp_path: Path) -> None:
    write(tmp_path / "certs" / "deep" / "a.pem", b"x")
    (tmp_path / "certs" / "loop1").symlink_to(".")
    (tmp_path / "certs" / "deep" / "loop2").symlink_to("..")
    (tmp_path / "certs" / "alias").symlink_to("deep")
    # glob's own ** would walk loop1/loop1/deep/loop2/... 2**40 ways; each real directory is
    # entered once, under its real name rather than through a symlink
    assert _names(expand(str(tmp_path / "certs" / "**" / "*.pem")), tmp_path) == ["certs/deep/a.pem"]
    assert _names(expand(str(tmp_path / "certs" / "alias" / "**" / "*.pem")), tmp_path) == ["certs/alias/a.pem"]


def test_a_double_star_walk_stops_at_the_deadline(tmp_path: Path) -> None:
    _tree(tmp_path)
    with pytest.raises(TimeoutError):
        expand(str(tmp_path / "**" / "*.pem"), time.monotonic() - 1)
    assert len(expand(str(tmp_path / "**" / "*.pem"), time.monotonic() + 60)) == 4  # in time: all


async def test_a_walk_past_the_deadline_is_one_unreadable_observation(tmp_path: Path) -> None:
    _tree(tmp_path)
    pattern = str(tmp_path / "**" / "*.pem")
    (obs,) = await FileSource().observe(FileTarget(path=pattern, name="tree", owner=""), Deadline(0.0))
    assert (obs.location, obs.outcome) == (pattern, FileOutcome.UNREADABLE)
    assert obs.detail == "the pattern was not expanded within the timeout of 0s"
