"""The image, without a Docker engine: the Dockerfile read instruction by instruction, and its
health check (`python -m exporter.healthcheck`) run against real exporter processes that are
started as the image starts them (no configuration file, flags on the command line)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from e2e.harness import ManagedProcess, free_port, http, wait_for
from helpers import parse, value
from pki import PKI

from exporter.healthcheck import _connect_host
from ops.webkit import WebPKI, make_web_pki

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def only(kind: str) -> str:
    found = [args for word, args in instructions() if word == kind]
    assert len(found) == 1, f"{kind}: {found}"
    return found[0]


def test_base_images_come_from_one_argument_that_can_pin_a_digest() -> None:
    assert instructions()[0] == ("ARG", "PYTHON_IMAGE=python:3.11-slim")
    assert [args for word, args in instructions() if word == "FROM"] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_oci_labels() -> None:
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"', only("LABEL")))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert labels == {
        "org.opencontainers.image.title": "tls-exporter",
        "org.opencontainers.image.description": (
            "Prometheus exporter for TLS certificates on endpoints of every common protocol and in files"
        ),
        "org.opencontainers.image.version": "${VERSION}",
        "org.opencontainers.image.revision": "${REVISION}",
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    assert ("ARG", f"VERSION={version}") in instructions()


def test_runs_as_non_root_with_no_configuration_baked_in() -> None:
    assert only("USER") == "65532:65532"
    runtime = instructions()[[w for w, _ in instructions()].index("FROM", 1) :]
    assert ("WORKDIR", "/etc/tls-exporter") in runtime
    copies = [args for word, args in runtime if word == "COPY"]
    assert "config.example.yml /usr/share/doc/tls-exporter/config.example.yml" in copies
    assert not any(c.endswith("/etc/tls-exporter/config.yml") for c in copies)
    assert json.loads(only("CMD")) == ["--web.listen-address=:9632"]
    entry = json.loads(only("ENTRYPOINT"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == ["tls-exporter"] and scripts["tls-exporter"] == "exporter.cli:main"
    assert only("EXPOSE") == "9632"


def test_healthcheck_runs_the_module_that_reads_the_flags() -> None:
    options, _, command = only("HEALTHCHECK").partition(" CMD ")
    assert json.loads(command) == ["python", "-m", "exporter.healthcheck"]
    assert "--timeout=10s" in options.split()


def _healthcheck(pid: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TLS_EXPORTER_HEALTHCHECK_PID": str(pid)}
    argv = [sys.executable, "-m", "exporter.healthcheck", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[tuple[ManagedProcess, int]]:
    """The exporter as a bare `docker run` starts it: no config file in its directory, a listen flag."""
    port = free_port()
    argv = [sys.executable, "-m", "exporter", f"--web.listen-address=127.0.0.1:{port}"]
    proc = ManagedProcess("bare", argv, tmp_path)
    try:
        wait_for(lambda: http(f"http://127.0.0.1:{port}/-/ready").status == 200, timeout=30, what="ready", proc=proc)
        yield proc, port
    finally:
        proc.stop()


def test_bare_start_has_no_targets_and_says_so(bare: tuple[ManagedProcess, int]) -> None:
    proc, port = bare
    assert value(parse(http(f"http://127.0.0.1:{port}/metrics").body), "tls_exporter_targets") == 0
    assert "no targets configured: only /probe will do anything" in proc.stderr()
    assert "config=(none)" in proc.stderr()


def test_healthcheck_follows_the_listen_address(bare: tuple[ManagedProcess, int]) -> None:
    proc, port = bare
    done = _healthcheck(proc.pid)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"healthy: http://127.0.0.1:{port}/-/healthy answered 200\n"
    proc.stop()
    # Its own flag wins over the (now gone) process's: nothing listens there any more.
    gone = _healthcheck(proc.pid, f"--web.listen-address=127.0.0.1:{port}")
    assert gone.returncode == 1
    assert gone.stderr.startswith(f"unhealthy: http://127.0.0.1:{port}/-/healthy: ")
    assert "Connection refused" in gone.stderr


def test_healthcheck_speaks_tls_when_the_web_config_says_so(pki: PKI, tmp_path: Path) -> None:
    web: WebPKI = make_web_pki(pki, tmp_path / "pki")
    digest = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    (tmp_path / "web.yml").write_text(
        f"tls_server_config: {{cert_file: '{web.server_cert}', key_file: '{web.server_key}'}}\n"
        f"basic_auth_users: {{prometheus: '{digest}'}}\n"
    )
    port = free_port()
    argv = [sys.executable, "-m", "exporter", "--web.config.file=web.yml", f"--web.listen-address=127.0.0.1:{port}"]
    proc = ManagedProcess("tls", argv, tmp_path)
    try:
        # The exporter's relative --web.config.file is read from the health check's directory: run it there too.
        def healthy() -> bool:
            env = {**os.environ, "TLS_EXPORTER_HEALTHCHECK_PID": str(proc.pid)}
            done = subprocess.run(
                [sys.executable, "-m", "exporter.healthcheck"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                cwd=tmp_path,
            )
            return done.returncode == 0 and done.stdout == (
                f"healthy: https://127.0.0.1:{port}/-/healthy answered 401\n"
            )

        wait_for(healthy, timeout=30, what="healthy over TLS with basic auth", proc=proc)
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("bound", "reached"), [("", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("127.0.0.2", "127.0.0.2")]
)
def test_listener_on_every_address_is_checked_on_loopback(bound: str, reached: str) -> None:
    assert _connect_host(bound) == reached
