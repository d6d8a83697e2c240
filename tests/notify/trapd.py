"""Debian's real snmptrapd on a free loopback UDP port, decoding with the shipped MIB.

Each received trap is one line of its output: ``TRAP<TAB>security<TAB>varbind;;varbind...``
(net-snmp's ``-F`` format), parsed into the trap OID and ``{object: value}``.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MIB_DIRS = f"+{REPO / 'mibs'}:{REPO / 'tests' / 'data' / 'mibs'}"
FORMAT = r"TRAP\t%P\t%V;;%v\n"
ENGINE_ID = "80007ed9057465737431323334"  # the exporter's engine_id in these tests
COMMUNITY_DEFAULT = "tls-test-community"
_VARBIND = re.compile(r"(?P<name>\S+) = (?:(?P<type>[A-Za-z ]+):(?: |$))?(?P<value>.*)")


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"binary {binary!r} not found: install the Debian package {package!r} (apt-get install {package})")
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Trap:
    security: str  # community (v2c) or "user (context)" description (v3)
    oid: str  # e.g. TLS-EXPORTER-MIB::tlsAlertFiring
    values: dict[str, str]  # "tlsAlertName" -> "TLSCertificateExpired"


@dataclass(frozen=True)
class V3User:
    name: str
    auth: str  # SHA | SHA-256
    auth_password: str
    priv_password: str


class TrapDaemon:
    def __init__(self, workdir: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.workdir = workdir
        self.port = port
        self.proc = proc
        self.out = workdir / "snmptrapd.out"  # stdout and stderr; traps go to the log (-Lf)

    def traps(self) -> list[Trap]:
        return [parse_line(line) for line in self.log().splitlines() if line.startswith("TRAP\t")]

    def log(self) -> str:
        path = self.workdir / "snmptrapd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def parse_line(line: str) -> Trap:
    _, security, rest = line.split("\t", 2)
    values: dict[str, str] = {}
    oid = ""
    for item in rest.split(";;"):
        m = _VARBIND.fullmatch(item.strip())
        if m is None:
            continue
        name = m["name"].split("::")[-1].removesuffix(".0")
        value = m["value"].strip().strip('"')
        if name.endswith("snmpModules.1.1.4.1"):  # snmpTrapOID.0 (SNMPv2-MIB is not loaded)
            oid = value
        values[name] = value
    return Trap(security=security, oid=oid, values=values)


@contextmanager
def snmptrapd(workdir: Path, *, community: str, users: list[V3User]) -> Iterator[TrapDaemon]:
    binary = require("snmptrapd", "snmptrapd")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    conf = workdir / "snmptrapd.conf"
    lines = [f"authCommunity log {community}"]
    for u in users:
        lines.append(f"createUser -e 0x{ENGINE_ID} {u.name} {u.auth} {u.auth_password} AES {u.priv_password}")
        lines.append(f"authUser log {u.name} priv")  # authPriv only: a trap without privacy is dropped
    conf.write_text("\n".join(lines) + "\n")
    env = {"SNMP_PERSISTENT_DIR": str(workdir / "persist"), "SNMPCONFPATH": str(workdir), "PATH": "/usr/bin:/bin"}
    argv = [
        binary, "-f", "-C", "-c", str(conf), "-Lf", str(workdir / "snmptrapd.log"),
        "-F", FORMAT, "-m", "+TLS-EXPORTER-MIB", "-M", MIB_DIRS, "-p", str(workdir / "snmptrapd.pid"),
        f"udp:127.0.0.1:{port}",
    ]  # fmt: skip
    out = (workdir / "snmptrapd.out").open("wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    daemon = TrapDaemon(workdir, port, proc)
    try:
        _wait_listening(daemon)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        out.close()


def _wait_listening(daemon: TrapDaemon) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            pytest.fail(f"snmptrapd exited with {daemon.proc.returncode}: {daemon.log()}")
        if "NET-SNMP version" in daemon.log():
            return
        time.sleep(0.1)
    pytest.fail(f"snmptrapd did not start: {daemon.log()}")
