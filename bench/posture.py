"""Cost of one posture scan (five raw ClientHellos, one per version) against loopback servers.

    python bench/posture.py [--scans N]

Prints ClientHellos per second and the client's CPU milliseconds per scan (this thread only;
the servers run in another thread or process). Endpoints: a Python TLS 1.2+1.3 server, a TLS
1.3-only one, and `openssl s_server -tls1` when the openssl CLI is there. Runs in well under a
minute and stops everything it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.tls import hello


def make_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class ServerThread:
    """asyncio TLS servers on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []

    def start(self, ctx: ssl.SSLContext) -> int:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        async def _start() -> int:
            server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ctx, ssl_handshake_timeout=5)
            self.servers.append(server)
            return int(server.sockets[0].getsockname()[1])

        return asyncio.run_coroutine_threadsafe(_start(), self.loop).result(10)

    def stop(self) -> None:
        async def _stop() -> None:
            for s in self.servers:
                s.close()
                await s.wait_closed()

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def opener(port: int) -> hello.Opener:
    async def _open() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    return _open


async def measure(label: str, port: int, scans: int, concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)
    accepted: list[str] = []

    async def one() -> None:
        async with sem:
            results = await hello.scan(opener(port), "localhost", timeout=3)
            if not accepted:
                accepted.extend(r.version for r in results if r.accepted)

    wall0, cpu0 = time.perf_counter(), time.thread_time()
    await asyncio.gather(*(one() for _ in range(scans)))
    wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
    hellos = scans * len(hello.VERSIONS)
    print(
        f"{label:42} conc={concurrency:<3} scans={scans:<4} {hellos / wall:7.0f} hellos/s  "
        f"{1000 * cpu / scans:6.2f} ms CPU/scan  {1000 * wall / scans:6.2f} ms wall/scan  accepts {accepted}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_cert(Path(d))
        modern = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        modern.load_cert_chain(cert, key)
        only13 = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        only13.load_cert_chain(cert, key)
        only13.minimum_version = ssl.TLSVersion.TLSv1_3
        servers = ServerThread()
        proc: subprocess.Popen[bytes] | None = None
        try:
            p_modern, p_13 = servers.start(modern), servers.start(only13)
            asyncio.run(measure("python TLS 1.2+1.3", p_modern, args.scans, 1))
            asyncio.run(measure("python TLS 1.2+1.3", p_modern, args.scans, 20))
            asyncio.run(measure("python TLS 1.3 only", p_13, args.scans, 1))
            if shutil.which("openssl"):
                port = free_port()
                log = Path(d) / "s_server.log"
                with log.open("wb") as out:
                    proc = subprocess.Popen(
                        [
                            "openssl",
                            "s_server",
                            "-accept",
                            f"127.0.0.1:{port}",
                            "-cert",
                            str(cert),
                            "-key",
                            str(key),
                            "-tls1",
                            "-cipher",
                            "DEFAULT:@SECLEVEL=0",
                        ],
                        stdin=subprocess.PIPE,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                for _ in range(100):
                    if b"ACCEPT" in log.read_bytes():
                        break
                    time.sleep(0.05)
                asyncio.run(measure("openssl s_server -tls1 (1 conn at a time)", port, min(args.scans, 50), 1))
        finally:
            if proc is not None:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.terminate()
                proc.wait(5)
            servers.stop()


if __name__ == "__main__":
    main()
