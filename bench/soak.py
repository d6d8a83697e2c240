"""Soak the real exporter: many loopback targets, a third of them flapping, some rotating their
leaf on every connection with large OCSP answers, scraped and probed for as long as you like.

    python bench/soak.py [--targets 300] [--minutes 10] [--interval 5] [--sample 10]

Two child processes and this driver:

* a target server (this file with ``--serve``): one asyncio process listening on
  ``127.79.X.Y:PORT`` for each target. Targets ``i % 3 == 1`` flap: their listener is closed and
  reopened every ``--flap`` seconds (connection refused in between). Targets ``i % 10 == 0``
  rotate: a fresh leaf on every connection (a pool of 50 pre-made leaves, served in turn), each
  naming an OCSP responder on loopback that answers 1 MiB of garbage, so every probe downloads
  up to the fetch cap and nothing is cacheable. The rest serve the same good leaf;
* the real exporter, ``python -m exporter`` with one ``protocol: tls`` target per endpoint at
  ``--interval``, trusting the test PKI's root; `/probe` is also hit, a few times per sample;
* this driver, which every ``--sample`` seconds scrapes /metrics and records the exporter's RSS
  (VmRSS) and open descriptors (/proc/PID/fd), the number of ``tls_probe_success`` series (a
  lost series is a failure), and how many targets' ``tls_probe_timestamp_seconds`` did not move
  since the previous sample older than 3 intervals (a stuck target is a failure).

It prints one line per sample and a summary (RSS first/last/max, descriptors first/last/max,
series lost, targets stuck), and exits 1 when a series was lost, a target stuck or the exporter
died. Every process it starts it stops (SIGTERM, then SIGKILL), and children die with it.
Everything listens on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PER_SUBNET = 250
POOL = 50  # leaves a rotating target serves in turn


def address(i: int) -> str:
    return f"127.79.{i // PER_SUBNET}.{i % PER_SUBNET + 1}"


# --------------------------------------------------------------------------- target server


def _rotating_contexts(pki: Any, pki_dir: Path, ocsp_url: str) -> list[object]:
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
    from pki import NOW

    pki_dir.mkdir(parents=True, exist_ok=True)
    contexts = []
    for n in range(POOL):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(pki.intermediate.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{ocsp_url}/{n}")
                        )
                    ]
                ),
                critical=False,
            )
            .sign(pki.intermediate.key, hashes.SHA256())
        )
        cert_path, key_path = pki_dir / f"rot{n}.pem", pki_dir / f"rot{n}.key"
        cert_path.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + pki.intermediate.cert.public_bytes(serialization.Encoding.PEM)
        )
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        contexts.append(ctx)
    return contexts


async def _serve(count: int, port: int, ocsp_port: int, flap: float, pki_dir: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from pki import make_pki

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # ssl EOF notices of closed probes
    pki = make_pki(pki_dir)
    good = pki["good"].server_context()
    rotating = _rotating_contexts(pki, pki_dir / "rot", f"http://127.0.0.1:{ocsp_port}/ocsp")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def big_ocsp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            body = b"\x30" * (1024 * 1024)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
        writer.close()

    async def silent_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(reader.read(1), 10)
        writer.close()

    turn = [0]

    def rotate_ctx() -> object:
        turn[0] += 1
        return rotating[turn[0] % POOL]

    async def rotating_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await writer.start_tls(rotate_ctx())  # type: ignore[arg-type]
            await asyncio.wait_for(reader.read(1), 10)
        writer.close()

    ocsp = await asyncio.start_server(big_ocsp, "127.0.0.1", ocsp_port)
    servers: dict[int, asyncio.base_events.Server | None] = {}
    for i in range(count):
        if i % 10 == 0:
            servers[i] = await asyncio.start_server(rotating_handler, address(i), port)
        else:
            servers[i] = await asyncio.start_server(silent_close, address(i), port, ssl=good)
    print("ready", flush=True)
    flapping = [i for i in range(count) if i % 3 == 1 and i % 10 != 0]
    up = True
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), flap)
            up = not up
            for i in flapping:
                server = servers[i]
                if up and server is None:
                    with contextlib.suppress(OSError):
                        servers[i] = await asyncio.start_server(silent_close, address(i), port, ssl=good)
                elif not up and server is not None:
                    server.close()
                    servers[i] = None
    finally:
        ocsp.close()
        for server in servers.values():
            if server is not None:
                server.close()


# --------------------------------------------------------------------------- driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_setup() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _get(url: str, timeout: float = 30.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _series(text: str) -> dict[str, float]:
    """target -> tls_probe_timestamp_seconds, for every target with a tls_probe_success series."""
    success, stamps = set(), {}
    for line in text.splitlines():
        if line.startswith("tls_probe_success{"):
            success.add(line.split('target="', 1)[1].split('"', 1)[0])
        elif line.startswith("tls_probe_timestamp_seconds{"):
            target = line.split('target="', 1)[1].split('"', 1)[0]
            stamps[target] = max(stamps.get(target, 0.0), float(line.rsplit(" ", 1)[1]))
    return {t: stamps.get(t, 0.0) for t in success}


def run(args: argparse.Namespace) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.targets + 1024)), hard))
    tmp = Path(tempfile.mkdtemp(prefix="tls-soak-"))
    port, ocsp_port, web = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    server = exporter = None
    failures = []
    try:
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(args.targets),
                str(port),
                str(ocsp_port),
                str(args.flap),
                str(tmp),
            ],
            stdout=subprocess.PIPE,
            preexec_fn=_child_setup,
        )
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise SystemExit("target server did not start")
        root = tmp / "test-root-ca.crt"
        config = tmp / "config.yml"
        lines = [
            f"defaults: {{interval: {args.interval}s, timeout: {min(args.interval, 3)}s}}",
            f"profiles: {{default: {{trust: '{root}', scan_protocol_versions: false}}}}",
            "probe: {allow: ['127.0.0.0/8']}",
            "targets:",
        ]
        lines += [
            f"  - {{address: '{address(i)}:{port}', protocol: tls, server_name: localhost}}"
            for i in range(args.targets)
        ]
        config.write_text("\n".join(lines) + "\n")
        exporter = subprocess.Popen(
            [sys.executable, "-m", "exporter", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{web}"],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "exporter.log").open("wb"),
            env=env,
            cwd=tmp,
            preexec_fn=_child_setup,
        )
        base = f"http://127.0.0.1:{web}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if _get(f"{base}/-/ready", 2)[0] == 200:
                    break
            if time.monotonic() > deadline or exporter.poll() is not None:
                raise SystemExit("exporter did not become ready")
            time.sleep(0.5)
        time.sleep(min(30.0, args.interval) + args.interval)  # every target probed once
        end = time.monotonic() + args.minutes * 60
        previous: dict[str, float] = {}
        rss, fds = [], []
        print("elapsed_s  rss_mb  fds  series  stuck")
        started = time.monotonic()
        while time.monotonic() < end:
            if exporter.poll() is not None:
                failures.append(f"exporter exited with {exporter.returncode}")
                break
            status, text = _get(f"{base}/metrics")
            series = _series(text) if status == 200 else {}
            for i in range(3):  # a few on-demand probes too
                _get(f"{base}/probe?target={address(i)}:{port}&protocol=tls&server_name=localhost")
            now = time.time()
            stuck = [
                t for t, ts in series.items() if previous and ts == previous.get(t) and now - ts > 3 * args.interval
            ]
            rss.append(_status_kb(exporter.pid, "VmRSS") / 1024)
            fds.append(len(os.listdir(f"/proc/{exporter.pid}/fd")))
            print(f"{time.monotonic() - started:9.0f}  {rss[-1]:6.1f}  {fds[-1]:3d}  {len(series):6d}  {len(stuck):5d}")
            if status != 200:
                failures.append(f"/metrics answered {status}")
            if len(series) != args.targets:
                failures.append(f"{args.targets - len(series)} series lost at {time.monotonic() - started:.0f}s")
            if stuck:
                failures.append(f"{len(stuck)} targets stuck at {time.monotonic() - started:.0f}s: {stuck[:3]}")
            previous = series
            time.sleep(args.sample)
        if rss:
            print(
                f"RSS MB first {rss[0]:.1f} last {rss[-1]:.1f} max {max(rss):.1f}; "
                f"descriptors first {fds[0]} last {fds[-1]} max {max(fds)}"
            )
    finally:
        _stop(exporter)
        _stop(server)
    for failure in failures:
        print("FAIL", failure)
    print("soak:", "failed" if failures else "no series lost, none stuck")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--serve":
        count, port, ocsp_port, flap, pki_dir = argv[1:6]
        asyncio.run(_serve(int(count), int(port), int(ocsp_port), float(flap), Path(pki_dir)))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=int, default=300)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--interval", type=int, default=5, help="probe interval in seconds")
    p.add_argument("--flap", type=float, default=7.0, help="seconds between flaps")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
