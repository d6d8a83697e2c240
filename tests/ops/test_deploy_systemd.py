"""deploy/systemd/tls-exporter.service: `systemd-analyze verify` accepts it with no warning, its
hardening is what the README promises, and its command line is one the exporter accepts."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from e2e.harness import require_binary

from exporter.cli import _serve_parser

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "tls-exporter.service"
EXEC = "/opt/tls-exporter/bin/tls-exporter"


def directives(text: str) -> dict[str, list[str]]:
    """Key -> every value it is given, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out: dict[str, list[str]] = {}
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value.strip())
    return out


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here (verify checks it)."""
    binary = tmp_path / "tls-exporter"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    unit = tmp_path / "tls-exporter.service"
    unit.write_text(UNIT.read_text().replace(EXEC, str(binary)))
    return unit


def test_systemd_analyze_verify_accepts_the_unit(installed_unit: Path) -> None:
    analyze = require_binary("systemd-analyze", "systemd")
    done = subprocess.run([analyze, "verify", str(installed_unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # Unknown or misspelt keys are only warnings: there must be none about this unit.
    assert [line for line in done.stderr.splitlines() if "tls-exporter" in line] == []


def test_security_exposure_is_low(installed_unit: Path) -> None:
    analyze = require_binary("systemd-analyze", "systemd")
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for tls-exporter\.service: ([0-9.]+) (\w+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    assert float(match[1]) <= 2.0 and match[2] == "OK"


def test_hardening_directives() -> None:
    d = directives(UNIT.read_text())
    for key, value in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "Restart": "on-failure",
    }.items():
        assert d[key] == [value], key


def test_exec_start_is_a_valid_exporter_command_line() -> None:
    (exec_start,) = directives(UNIT.read_text())["ExecStart"]
    binary, *args = shlex.split(exec_start)
    assert binary == EXEC
    parsed = _serve_parser().parse_args(args)
    assert (parsed.config_file, parsed.listen) == ("/etc/tls-exporter/config.yml", ":9632")
