"""A private network where targets are reachable only through real proxies.

Why a network namespace: the target must be unreachable for a direct connection, or a test that
"went through the proxy" proves nothing. A namespace has its own loopback, so servers bound to
127.0.0.1 inside it are invisible from the host's 127.0.0.1, with no firewall rule to leave
behind and no address outside 127.0.0.0/8. Inside it run the target servers (sockets created
there by a thread that joined the namespace) and the proxies (tinyproxy and danted, started with
``ip netns exec``). The exporter stays on the host, as in production: it reaches each proxy
through a byte relay whose listening socket is on the host's loopback and whose outgoing socket
is created inside the namespace. The relay only copies bytes; CONNECT and SOCKS5 are spoken by
the exporter and answered by the real proxy.

``ip netns exec`` bind-mounts ``/etc/netns/<name>/*`` over ``/etc`` for the proxies only: their
``hosts`` maps ``backend.proxied.test`` (a name the host cannot resolve: only the proxy can), and
danted's ``passwd``/``shadow`` hold the SOCKS5 test user. Everything (namespace, files,
processes, sockets) is removed when the world closes. Root is needed (CI runs as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from servers import LoopbackServers

CLONE_NEWNET = 0x40000000
PREFIX = "tlsx-proxy-"  # then the pid of the test process, then a random suffix
BACKEND = "backend.proxied.test"  # resolvable inside the namespace only
SOCKS_USER, SOCKS_PASSWORD = "probeuser", "s3cret-socks"
HTTP_USER, HTTP_PASSWORD = "probe", "s3cret-http"


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"{binary} not found: install the Debian package {package} (scripts/test.sh does)")
    return path


class Namespace:
    """A network namespace with its loopback up; ``socket()`` makes sockets that live in it."""

    def __init__(self) -> None:
        require("ip", "iproute2")
        remove_stale()
        self.name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.etc = Path("/etc/netns") / self.name
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
            self.etc.mkdir(parents=True)
            (self.etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.0.1 {BACKEND}\n")
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.name, initializer=self._enter)
            self._executor.submit(lambda: None).result()  # fails here if setns did
        except BaseException:
            self.close()
            raise

    def _enter(self) -> None:
        # setns(CLONE_NEWNET) moves only the calling thread: this executor's one thread.
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        finally:
            os.close(fd)

    def socket(self) -> socket.socket:
        return self._executor.submit(socket.socket, socket.AF_INET, socket.SOCK_STREAM).result()

    def listen(self) -> socket.socket:
        sock = self.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        return sock

    def free_port(self) -> int:
        with self.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def wait_listening(self, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                break
            with self.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"proxy on namespace port {port} did not start (exit {proc.poll()}): {text[-2000:]}")

    def popen(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=out, stderr=subprocess.STDOUT)

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            self._executor.shutdown(wait=True)
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)


def remove_stale() -> None:
    """Namespaces (and their /etc/netns files) left by a test run that was killed: its pid is gone."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    for name in (line.split()[0] for line in listed.splitlines() if line.startswith(PREFIX)):
        pid = name.removeprefix(PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def host_placeholder(port: int) -> socket.socket | None:
    """Hold ``127.0.0.1:port`` on the host, bound but not listening: a direct connect there is
    refused for sure (no other process can listen on it meanwhile)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def relay(servers: LoopbackServers, ns: Namespace, port: int) -> int:
    """A host port whose connections are copied to ``127.0.0.1:port`` inside the namespace."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            writer.transport.abort()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        sock = await loop.run_in_executor(ns._executor, socket.socket)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
        except OSError:
            sock.close()
            writer.transport.abort()
            return
        r2, w2 = await asyncio.open_connection(sock=sock)
        try:
            await asyncio.gather(pipe(reader, w2), pipe(r2, writer))
        finally:
            w2.close()
            writer.close()

    return servers.start(handler)


class Tinyproxy:
    """tinyproxy in the namespace: CONNECT allowed to ``connect_ports`` only; Basic auth when given."""

    def __init__(self, ns: Namespace, workdir: Path, connect_ports: list[int], *, auth: bool = False) -> None:
        binary = require("tinyproxy", "tinyproxy")
        self.port = ns.free_port()
        self.log = workdir / f"tinyproxy-{self.port}.log"
        conf = workdir / f"tinyproxy-{self.port}.conf"
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            f'LogFile "{self.log}"',
            "LogLevel Connect",
            "MaxClients 50",
            "Allow 127.0.0.1",
            "DisableViaHeader Yes",
            *(f"ConnectPort {p}" for p in connect_ports),
        ]
        if auth:
            lines.append(f"BasicAuth {HTTP_USER} {HTTP_PASSWORD}")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = ns.popen([binary, "-d", "-c", str(conf)], workdir / f"tinyproxy-{self.port}.out")
        ns.wait_listening(self.port, self.proc, workdir / f"tinyproxy-{self.port}.out")

    def requests(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop(self.proc)


class Danted:
    """dante-server (SOCKS5) in the namespace: no authentication, or user name and password."""

    def __init__(self, ns: Namespace, workdir: Path, *, auth: bool = False) -> None:
        binary = require("danted", "dante-server")
        self.port = ns.free_port()
        self.log = workdir / f"danted-{self.port}.log"
        conf = workdir / f"danted-{self.port}.conf"
        conf.write_text(
            f"logoutput: {self.log}\n"
            f"internal: 127.0.0.1 port = {self.port}\n"
            "external: 127.0.0.1\n"
            "clientmethod: none\n"
            f"socksmethod: {'username' if auth else 'none'}\n"
            "user.privileged: root\n"
            "user.unprivileged: nobody\n"
            "client pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n"
            "socks pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  log: connect error\n}\n"
        )
        out = workdir / f"danted-{self.port}.out"
        self.proc = ns.popen([binary, "-f", str(conf), "-N", "1"], out)
        ns.wait_listening(self.port, self.proc, out)

    def requests(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop(self.proc)


def add_socks_user(ns: Namespace) -> None:
    """The SOCKS5 user exists only for processes in the namespace (danted checks it with getpwnam
    and the shadow file): the host's own files are never touched."""
    digest = subprocess.run(
        ["openssl", "passwd", "-6", SOCKS_PASSWORD], check=True, capture_output=True, text=True
    ).stdout.strip()
    passwd = Path("/etc/passwd").read_text() + f"{SOCKS_USER}:x:64999:64999::/nonexistent:/usr/sbin/nologin\n"
    shadow = Path("/etc/shadow").read_text() if Path("/etc/shadow").exists() else ""
    (ns.etc / "passwd").write_text(passwd)
    (ns.etc / "shadow").write_text(shadow + f"{SOCKS_USER}:{digest}:19000:0:99999:7:::\n")
    os.chmod(ns.etc / "shadow", 0o640)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
