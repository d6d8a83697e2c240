"""The file source: expand a configured path or glob, read each file, and observe its certificates.

``read_file`` is blocking (one file, regular files only, bounded in bytes); ``FileSource.observe``
runs the reads of a ``files:`` entry on the file I/O pool (``exporter.support.fileio``), a batch of files
per thread task, so a glob over thousands of files neither blocks the event loop nor queues
thousands of thread tasks at once. Nothing here raises for a
bad file: every path ends as an ``Observation`` whose outcome says what happened
(``missing``, ``unreadable``, ``parse_error``, ``certificate_found``). Judging the certificates
is the judge's work (``exporter.certs.judge``), as for network endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import os
import time
from collections.abc import Sequence

from cryptography.hazmat.primitives.serialization import Encoding

from exporter.certs.load import CertificateParseError, load_certificates
from exporter.config.model import Config, FileTarget, Job, Profile
from exporter.results import Observation
from exporter.support.deadline import Deadline
from exporter.support.errors import FileOutcome
from exporter.support.fileio import FileTooLarge, in_file_thread, read_regular

MAX_FILE_BYTES = 4 * 1024 * 1024  # a larger file is refused (parse_error), never read
MAX_PASSWORD_BYTES = 64 * 1024
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".p12", ".pfx"})
BATCH_SIZE = 64  # files read one after another by one thread task
MAX_PARALLEL_BATCHES = 4  # thread tasks of one target in flight at once

_GLOB_CHARS = frozenset("*?[")
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR})


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


def _in_time(until: float | None) -> None:
    if until is not None and time.monotonic() > until:
        raise TimeoutError


def _walk_dirs(top: str, until: float | None = None) -> list[str]:
    """``top`` and every non-hidden directory below it, following symlinks, each real one once.

    What ``**`` ranges over. glob's own ``**`` follows directory symlinks without remembering
    where it has been, so two symlink loops make it run for hours; here a directory seen
    before (same device and inode) is not entered again.
    """
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    stack = [top]
    while stack:
        _in_time(until)  # a tree of a million directories stops at the probe's deadline
        directory = stack.pop()
        try:
            st = os.stat(directory or os.curdir)
            with os.scandir(directory or os.curdir) as entries:
                # real directories before symlinks to them: the real path is the one reported
                subdirs = sorted((e.is_symlink(), e.name) for e in entries if not e.name.startswith(".") and e.is_dir())
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        found.append(directory)
        stack.extend(os.path.join(directory, name) for _, name in reversed(subdirs))
    return found


def _glob(pattern: str, until: float | None = None) -> set[str]:
    """glob.glob with a recursive ``**`` path component (see ``_walk_dirs``); TimeoutError past
    ``until`` (time.monotonic)."""
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return set(glob.glob(pattern))
    cut = parts.index("**")
    head, rest = os.sep.join(parts[:cut]), os.sep.join(parts[cut + 1 :])
    if parts[:cut] == [""]:
        head = os.sep  # the pattern starts with /**
    bases = sorted(glob.glob(head)) if is_glob(head) else [head]
    found: set[str] = set()
    for base in bases:
        for directory in _walk_dirs(base, until):
            _in_time(until)
            if rest:
                found |= _glob(os.path.join(glob.escape(directory), rest), until)
            else:  # ``**`` last: everything below the base (directories are dropped later)
                with contextlib.suppress(OSError), os.scandir(directory or os.curdir) as entries:
                    found |= {os.path.join(directory, e.name) for e in entries if not e.name.startswith(".")}
    return found


def expand(pattern: str, until: float | None = None) -> list[str]:
    """The paths a configured ``path`` stands for (blocking: touches the file system); a ``**``
    walk still going at ``until`` (time.monotonic) raises TimeoutError.

    - a glob (any of ``*?[``): its matches, sorted, without directories; ``**`` matches any
      number of directories (none included), like a shell's globstar;
    - an existing directory: the certificate-looking files directly in it (by suffix, any
      case: .pem .crt .cer .der .p7b .p7c .p12 .pfx), sorted; subdirectories are not entered;
    - anything else (a file, or a path that does not exist): ``[pattern]``.

    Paths are returned as written, never resolved: a symlink is read through at read time, so
    a Kubernetes secret volume (keys linked through ``..data``, a symlink the kubelet swaps to a
    new hidden ``..<timestamp>`` directory) keeps reporting ``tls.crt`` across updates. Neither
    wildcards nor a directory listing pick up those hidden directories (a directory is never a
    result and wildcards skip hidden names), so no certificate shows twice.
    An empty list means nothing matched; the caller reports the pattern as ``missing``.
    """
    if is_glob(pattern):
        return sorted(p for p in _glob(pattern, until) if not os.path.isdir(p))
    if os.path.isdir(pattern):
        try:
            with os.scandir(pattern) as entries:
                return sorted(
                    e.path for e in entries if os.path.splitext(e.name)[1].lower() in CERT_SUFFIXES and not e.is_dir()
                )
        except OSError:
            return [pattern]  # read_file reports the OS error as unreadable
    return [pattern]


def _os_reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc)
    return f"{text} ({name})" if name else text


def _read_bytes(path: str) -> bytes:
    """The file's bytes; raises OSError, or CertificateParseError for an oversized file."""
    try:
        return read_regular(path, MAX_FILE_BYTES, what="certificate file")
    except FileTooLarge:
        raise CertificateParseError(f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB") from None


def _password(target: FileTarget) -> tuple[bytes | None, str]:
    """The PKCS#12 password of the target, and a note explaining why there is none."""
    if target.password_env:
        value = os.environ.get(target.password_env)
        if value is None:
            return None, f"environment variable {target.password_env} is not set"
        return value.encode("utf-8"), ""
    if target.password_file:
        try:
            data = read_regular(target.password_file, MAX_PASSWORD_BYTES, what="PKCS#12 password file")
        except OSError as exc:
            return None, f"password file {target.password_file}: {_os_reason(exc)}"
        return data.split(b"\n", 1)[0].rstrip(b"\r"), ""
    return None, ""


def read_file(path: str, target: FileTarget, now: float) -> Observation:
    """Read one file and the certificates in it (blocking). Never raises for a bad file."""
    try:
        data = _read_bytes(path)
    except CertificateParseError as exc:
        return Observation(location=path, outcome=FileOutcome.PARSE_ERROR, detail=exc.reason, started_at=now)
    except OSError as exc:
        missing = exc.errno in _MISSING_ERRNOS
        outcome = FileOutcome.MISSING if missing else FileOutcome.UNREADABLE
        return Observation(location=path, outcome=outcome, detail=_os_reason(exc), started_at=now)

    password, note = _password(target)
    return stored_certificates(data, path, target.max_certificates, now, password=password, note=note)


def stored_certificates(
    data: bytes, location: str, limit: int, now: float, *, password: bytes | None = None, note: str = ""
) -> Observation:
    """The certificates in a bundle's bytes (PEM, DER, PKCS#7 or PKCS#12), at most ``limit`` of them."""
    # Counted before parsing where it is cheap (PEM): 10,000 certificates are not parsed to be refused.
    if data.count(PEM_BEGIN) > limit:
        return _too_many(location, data.count(PEM_BEGIN), limit, now)
    try:
        certificates = load_certificates(data, password=password)
        if len(certificates) > limit:
            return _too_many(location, len(certificates), limit, now)
        ders = tuple(c.public_bytes(Encoding.DER) for c in certificates)
    except CertificateParseError as exc:
        detail = f"{exc.reason}; {note}" if note and "PKCS#12" in exc.reason else exc.reason
        return Observation(location=location, outcome=FileOutcome.PARSE_ERROR, detail=detail, started_at=now)
    return Observation(location=location, outcome=FileOutcome.CERTIFICATE_FOUND, certificates=ders, started_at=now)


def _too_many(location: str, count: int, limit: int, now: float) -> Observation:
    detail = f"{count} certificates, over max_certificates_per_file ({limit})"
    return Observation(location=location, outcome=FileOutcome.PARSE_ERROR, detail=detail, started_at=now)


def _read_batch(paths: Sequence[str], target: FileTarget, now: float) -> list[Observation]:
    return [read_file(p, target, now) for p in paths]


class FileSource:
    """Certificate files (``files:``): one observation per path an entry expands to."""

    name = "file"
    every_certificate = True  # each certificate of a file is reported, with its position

    def jobs(self, config: Config) -> tuple[FileTarget, ...]:
        return config.files

    def labels(self, job: Job, location: str, owner: str) -> dict[str, str]:
        assert isinstance(job, FileTarget)
        labels = {"target": location, "protocol": "file", "name": job.name if job.name != job.path else location}
        labels["owner"] = owner
        if owner != job.owner:  # a certificate rule chose the owner: the file's team is told too
            labels["server_owner"] = job.owner
        labels.update(job.labels)
        return labels

    def opener(self, job: Job, location: str, timeout: float, profile: Profile | None = None) -> None:
        return None  # a stored certificate has no versions to scan

    async def observe(self, job: Job, deadline: Deadline, profile: Profile | None = None) -> list[Observation]:
        """One observation per path, in sorted path order.

        A glob (or a directory) that matches nothing gives one ``missing`` observation whose
        location is the pattern itself, so the entry keeps a series that says why it has no certificate.
        """
        assert isinstance(job, FileTarget)
        now = time.time()
        try:
            paths = await in_file_thread(expand, job.path, time.monotonic() + deadline.left())
        except TimeoutError:
            detail = f"the pattern was not expanded within the timeout of {deadline.seconds:g}s"
            return [Observation(location=job.path, outcome=FileOutcome.UNREADABLE, detail=detail, started_at=now)]
        if not paths:
            what = "no file matches the pattern" if is_glob(job.path) else "no certificate file in the directory"
            return [Observation(location=job.path, outcome=FileOutcome.MISSING, detail=what, started_at=now)]
        batches = [paths[i : i + BATCH_SIZE] for i in range(0, len(paths), BATCH_SIZE)]
        gate = asyncio.Semaphore(MAX_PARALLEL_BATCHES)

        async def run(batch: Sequence[str]) -> list[Observation]:
            async with gate:
                return await in_file_thread(_read_batch, batch, job, now)

        # Tasks wait on the semaphore, not in the thread pool: at most MAX_PARALLEL_BATCHES threads.
        try:
            done = await deadline.run(asyncio.gather(*(run(b) for b in batches)))
        except TimeoutError:
            detail = f"not read within the timeout of {deadline.seconds:g}s"
            return [
                Observation(location=p, outcome=FileOutcome.UNREADABLE, detail=detail, started_at=now) for p in paths
            ]
        return [o for batch_results in done for o in batch_results]
