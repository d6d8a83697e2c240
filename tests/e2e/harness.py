"""Helpers of the end-to-end suite: real processes on loopback, stopped whatever happens.

Every process is started with its output in files of a temporary directory, and stopped by its
own PID (SIGTERM, a bounded wait, then SIGKILL). Waits are polls with a deadline, never fixed sleeps.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import closed_port

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free port on 127.0.0.1 (bound, then released, so the process under test can bind it)."""
    return closed_port()


def require_binary(name: str, package: str) -> str:
    """The binary's path; the test fails (never skips) naming the Debian package when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"binary {name!r} not found: install the Debian package {package!r} (apt-get install {package})")
    return path


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
    proc: ManagedProcess | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            result, last_error = None, exc
        if result:
            return result
        if proc is not None and proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}\n{proc.output()}")
        if time.monotonic() > deadline:
            tail = f"\n{proc.output()}" if proc is not None else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r}){tail}")
        time.sleep(interval)


@dataclass
class Response:
    status: int
    body: str
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


def http(url: str, *, method: str = "GET", data: bytes | None = None, timeout: float = 10) -> Response:
    """One HTTP request; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Response(resp.status, resp.read().decode(), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read().decode(), exc.headers.get("Content-Type", ""))


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def select(samples: Sequence[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def one(samples: Sequence[Sample], name: str, **labels: str) -> Sample:
    found = select(samples, name, **labels)
    assert len(found) == 1, f"expected exactly one {name}{labels}, found {found}"
    return found[0]


class ManagedProcess:
    """A child process whose stdout and stderr go to files; ``stop()`` always reaps it."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(
                self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=workdir, env=env
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def output(self, limit: int = 4000) -> str:
        return (
            f"--- {self.name} stdout ---\n{self.stdout()[-limit:]}\n"
            f"--- {self.name} stderr ---\n{self.stderr()[-limit:]}"
        )

    def signal(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, a bounded wait, then SIGKILL; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.terminate()
            if self.wait(timeout) is None:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode


@contextmanager
def running(name: str, argv: Sequence[str], workdir: Path, **kwargs: Any) -> Iterator[ManagedProcess]:
    proc = ManagedProcess(name, argv, workdir, **kwargs)
    try:
        yield proc
    finally:
        proc.stop()


def exporter_argv(config: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "exporter",
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        *extra,
    ]


def wait_ready(base_url: str, proc: ManagedProcess, *, timeout: float = 30) -> None:
    wait_for(
        lambda: http(f"{base_url}/-/ready", timeout=2).status == 200,
        timeout=timeout,
        what=f"{proc.name} ready at {base_url}",
        proc=proc,
    )


def query_url(base_url: str, promql: str) -> str:
    return f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
