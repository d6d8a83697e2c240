"""tls-exporter against blackbox_exporter, side by side in one run: CPU per /probe (issue 10).

    python bench/vs_blackbox.py [--requests 2000] [--rounds 3] [--concurrency 16 64] [--leaf good]
                                [--workload both|same|distinct]

What it starts (and stops, on success, error or Ctrl-C; children also get PR_SET_PDEATHSIG):

* **nginx** (Debian ``nginx-light``; installed with apt-get when missing), one master and one
  worker, listening on two free ports of 127.0.0.1 with the fixture chain of tests/pki.py
  (leaf ``good``: ECDSA P-256 under an intermediate; ``--leaf good-rsa`` for RSA-2048),
  TLS 1.2 and 1.3, session tickets and cache off (every probe is a full handshake);
* **blackbox_exporter** (Debian ``prometheus-blackbox-exporter``, installed when missing) on
  127.0.0.1 with two tcp modules: ``tls_handshake`` (``insecure_skip_verify``: handshake only)
  and ``tls_verify`` (the fixture root as ``ca_file``, ``server_name: localhost``: chain and
  name verification, what Go's crypto/tls does for a client);
* **tls-exporter** (``python -m exporter``, this checkout) on 127.0.0.1 with two profiles
  that trust the fixture root: ``lean`` (revocation none, no version scan) and ``default``
  (the default profile's settings: OCSP when the leaf names a responder (the fixture does
  not), version scan on its own clock, cached after the first).

Then, for each concurrency and round, every contender gets ``--requests`` ``/probe`` requests
at that concurrency, one contender after the other in an order that rotates every round (so
a slow phase of the machine does not always hit the same one). For each batch it reads the
contender's utime+stime from /proc/PID/stat before and after (after a short settle, so
background work such as a version scan is counted) and prints CPU ms per probe, probes/s,
and the ratio to blackbox's handshake-only and chain-verifying modules.

Contenders:

* ``bb-handshake``: blackbox ``tls_handshake``;
* ``bb-verify``: blackbox ``tls_verify``;
Our requests say ``protocol=tls`` (a TLS handshake and nothing else on the connection, like
blackbox's tcp + tls module; ``/probe``'s default, https, also sends a HEAD request for HSTS).

* ``ours-lean``: ``profile=lean``;
* ``ours-default``: ``profile=default`` (the version scan of the address is cached: warmed first);
* ``firstlean``: ``profile=lean`` with a new ``server_name`` on every request: the first-sight
  probe alone (no version scan in the lean profile), reported against ``ours-lean``;
* ``ours-first``: ``profile=default`` with a new ``server_name`` on every request, so every
  probe is the first sight of its (address, server name): the version scan starts (in the
  background), the verdict for the name is new and the name does not match (the chain's trust,
  judged under the leaf's own name, is cached per chain: a name match on top).

The **distinct** workload (``--workload both``, the default, or ``distinct``) sends every probe to
a new address of 127/8 (127.77.0.1 and up, on one port): no per-address state of either exporter
can help. nginx then also listens on a wildcard port, so the script enters a private network
namespace of its own (``unshare -n``; root) after installing what it needs; there the wildcard is
loopback alone. Its contenders are bb-handshake, bb-verify, ours-lean and ours-default.

``ours-http`` (``/-/healthy``: the HTTP server alone) and ``ours-refused`` (a lean ``/probe`` of
a port where nothing listens: parameters, pipeline, a refused connect and the failure's answer)
say what a probe costs around its handshake.

``handshake-floor`` (a row of the same workload, once per round): a child process does
``--requests`` blocking handshakes one after another with the probe's own client context
(``exporter.tls.client.client_context``: memory BIOs, OCSP request, the same callbacks), no event
loop, no HTTP, no judgement; its CPU per handshake is what any prober on pyOpenSSL pays before it
does anything else.

A batch's CPU is read once the contender is idle again (under 10 ms of CPU in half a second, at
most 5 minutes), so the version scans a batch queued (ours-default on new addresses, ours-first)
count in that batch and not in the next contender's.

The load generator is this process (aiohttp client, keep-alive, ``limit=concurrency``); it
shares the 2 cores with nginx and the contender, so compare ratios within one run, not
figures across machines. Every response must be 200 and report success; the first of each
batch is checked, every status is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from run import _child_setup, _cpu_seconds, _free_port, _stop, code_state  # noqa: E402

NGINX = "/usr/sbin/nginx"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
SETTLE = 0.3  # seconds after a batch before the CPU reading: background work of the batch counts
IDLE_CPU = 0.01  # CPU seconds per 0.5 s under which a contender counts as idle again (background work done)
DISTINCT_BASE = int(ipaddress.IPv4Address("127.77.0.1"))  # request n of the distinct workload: this + n


# The floor under any Python prober: the probe's own client context (exporter.tls.client), one
# blocking handshake after another over memory BIOs, nothing else (no event loop, no HTTP, no
# judgement). CPU of this child per handshake, connect and close included.
FLOOR = """
import socket, sys, time
from OpenSSL import SSL
from exporter.tls.client import client_context
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = client_context()
def one():
    s = socket.create_connection((host, port))
    c = SSL.Connection(ctx, None)
    c.set_tlsext_host_name(b"localhost")
    c.request_ocsp()
    c.set_connect_state()
    while True:
        try:
            c.do_handshake()
            break
        except SSL.WantReadError:
            s.sendall(c.bio_read(65536))
            c.bio_write(s.recv(65536))
    assert len(c.get_peer_cert_chain(as_cryptography=True)) == 2
    c.shutdown()
    s.sendall(c.bio_read(65536))
    s.close()
for _ in range(50):
    one()
t0, w0 = time.process_time(), time.monotonic()
for _ in range(n):
    one()
print(time.process_time() - t0, time.monotonic() - w0)
"""


def _floor(port: int, n: int, concurrency: int) -> Batch:
    out = subprocess.run(
        [sys.executable, "-c", FLOOR, "127.0.0.1", str(port), str(n)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout.split()
    cpu, wall = float(out[0]), float(out[1])
    return Batch("handshake-floor", "same", concurrency, n, cpu * 1000 / n, n / wall, 0)


def distinct_address(n: int) -> str:
    """The address of request ``n`` in the distinct workload: a new one for every probe."""
    return str(ipaddress.IPv4Address(DISTINCT_BASE + n))


def in_private_netns() -> bool:
    """Only the loopback interface: a wildcard listener here is reachable from loopback alone."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def ensure_installed(binary: str, package: str) -> None:
    if Path(binary).exists():
        return
    print(f"{binary} missing: apt-get install -y {package}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", package], check=True, env=env, stdout=subprocess.DEVNULL)
    if not Path(binary).exists():
        raise RuntimeError(f"{package} installed but {binary} is still missing")


def _wait_http(url: str, proc: subprocess.Popen[bytes], name: str, log: Path, timeout: float = 60.0) -> None:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{name} not ready after {timeout} s")


def _wait_tcp(port: int, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    t = time.monotonic()
    while time.monotonic() - t < 30:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} not listening on {port} after 30 s")


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    pid: Callable[[], int]
    url: Callable[[int], str]  # request number -> URL
    success: str  # a line the body must hold
    workload: str = "same"  # same: one address for every probe; distinct: a new address for each


@dataclass(slots=True)
class Batch:
    contender: str
    workload: str
    concurrency: int
    requests: int
    cpu_ms: float  # per probe
    rate: float  # probes/s
    failures: int


async def _batch(contender: Contender, n: int, concurrency: int, offset: int) -> Batch:
    import aiohttp

    statuses: dict[int, int] = {}
    first_body = ""
    pid = contender.pid()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        queue = iter(range(n))

        async def worker() -> None:
            nonlocal first_body
            for i in queue:
                async with session.get(contender.url(offset + i)) as r:
                    body = await r.text()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    if not first_body:
                        first_body = body

        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - t0
        cpu1 = await _settled_cpu(pid)
    if contender.success not in first_body:
        raise RuntimeError(f"{contender.name}: first response lacks {contender.success!r}:\n{first_body[:3000]}")
    failures = n - statuses.get(200, 0)
    return Batch(contender.name, contender.workload, concurrency, n, (cpu1 - cpu0) * 1000 / n, n / elapsed, failures)


async def _settled_cpu(pid: int) -> float:
    """The contender's CPU seconds once the background work its batch started is done (a version
    scan per new address, queued; at most 5 minutes), so it counts in this batch and not the next."""
    await asyncio.sleep(SETTLE)
    cpu = _cpu_seconds(pid)
    for _ in range(600):
        await asyncio.sleep(0.5)
        now = _cpu_seconds(pid)
        if now - cpu < IDLE_CPU:
            return now
        cpu = now
    return cpu


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def run(args: argparse.Namespace) -> list[Batch]:
    workloads = ("same", "distinct") if args.workload == "both" else (args.workload,)
    ensure_installed(NGINX, "nginx-light")
    ensure_installed(BLACKBOX, "prometheus-blackbox-exporter")
    from pki import make_pki  # the test suite's fixture PKI

    print(f"code: {code_state()}; load average before: {_loadavg()}", flush=True)
    procs: list[tuple[subprocess.Popen[bytes], str]] = []
    with tempfile.TemporaryDirectory(prefix="tls-vs-bb-") as tmp:
        d = Path(tmp)
        try:
            pki = make_pki(d / "pki")
            leaf = pki[args.leaf]
            ca = d / "ca.pem"
            from cryptography.hazmat.primitives.serialization import Encoding

            ca.write_bytes(pki.root.cert.public_bytes(Encoding.PEM))
            nofile = 4096 + 4 * max(args.concurrency)

            # nginx: two ports (the second is for the first-sight contender, so its scans do not
            # touch the address the cached contenders use)
            ports = [_free_port(), _free_port()]
            (d / "nginx").mkdir()
            listen = "\n".join(f"listen 127.0.0.1:{p} ssl;" for p in ports)
            # the distinct workload: every address of 127/8 on one port (a wildcard listener,
            # loopback-only because the namespace has nothing else)
            dport, closed = _free_port(), _free_port()  # closed: nothing listens there
            if "distinct" in workloads:
                listen += f"\nlisten {dport} ssl;"
            (d / "nginx" / "nginx.conf").write_text(
                f"""daemon off; worker_processes 1; pid {d}/nginx/nginx.pid; error_log {d}/nginx/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/nginx; proxy_temp_path {d}/nginx; fastcgi_temp_path {d}/nginx;
  uwsgi_temp_path {d}/nginx; scgi_temp_path {d}/nginx;
  server {{
    {listen}
    ssl_certificate {leaf.chain_path}; ssl_certificate_key {leaf.key_path};
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache off;
    return 204;
  }}
}}
"""
            )
            nlog = d / "nginx" / "error.log"
            nginx = subprocess.Popen(
                [NGINX, "-e", str(nlog), "-p", str(d / "nginx"), "-c", str(d / "nginx" / "nginx.conf")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(nofile),
            )
            procs.append((nginx, "nginx"))
            for p in ports:
                _wait_tcp(p, nginx, "nginx", nlog)

            # blackbox_exporter
            bb_port = _free_port()
            (d / "blackbox.yml").write_text(
                f"""modules:
  tls_handshake:
    prober: tcp
    timeout: 10s
    tcp: {{tls: true, tls_config: {{insecure_skip_verify: true}}}}
  tls_verify:
    prober: tcp
    timeout: 10s
    tcp: {{tls: true, tls_config: {{ca_file: {ca}, server_name: localhost}}}}
"""
            )
            blog = d / "blackbox.log"
            with blog.open("wb") as f:
                bb = subprocess.Popen(
                    [BLACKBOX, f"--config.file={d / 'blackbox.yml'}", f"--web.listen-address=127.0.0.1:{bb_port}"],
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_child_setup(nofile),
                )
            procs.append((bb, "blackbox_exporter"))
            _wait_http(f"http://127.0.0.1:{bb_port}/-/healthy", bb, "blackbox_exporter", blog)

            # tls-exporter
            ours_port = _free_port()
            (d / "config.yml").write_text(
                f"""profiles:
  default: {{trust: {ca}}}
  lean: {{trust: {ca}, revocation: none, scan_protocol_versions: false}}
"""
            )
            olog = d / "exporter.log"
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            if args.event_loop:
                env["TLS_EXPORTER_EVENT_LOOP"] = args.event_loop
            with olog.open("wb") as f:
                ours = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "exporter",
                        f"--config.file={d / 'config.yml'}",
                        f"--web.listen-address=127.0.0.1:{ours_port}",
                    ],
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_child_setup(nofile),
                    cwd=d,
                    env=env,
                )
            procs.append((ours, "tls-exporter"))
            _wait_http(f"http://127.0.0.1:{ours_port}/-/ready", ours, "tls-exporter", olog)
            print(
                f"nginx pid {nginx.pid} ports {ports}; blackbox pid {bb.pid} port {bb_port}; "
                f"tls-exporter pid {ours.pid} port {ours_port} (event loop: {args.event_loop or 'auto'})",
                flush=True,
            )

            same, other = f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"
            bb_url, ours_url = f"http://127.0.0.1:{bb_port}/probe", f"http://127.0.0.1:{ours_port}/probe"
            valid = "tls_chain_valid 1"
            every = [
                Contender(
                    "bb-handshake",
                    lambda: bb.pid,
                    lambda i: f"{bb_url}?module=tls_handshake&target={same}",
                    "probe_success 1",
                ),
                Contender(
                    "bb-verify",
                    lambda: bb.pid,
                    lambda i: f"{bb_url}?module=tls_verify&target={same}",
                    "probe_success 1",
                ),
                Contender(
                    "ours-lean",
                    lambda: ours.pid,
                    lambda i: f"{ours_url}?profile=lean&protocol=tls&target={same}&server_name=localhost",
                    valid,
                ),
                Contender(
                    "ours-default",
                    lambda: ours.pid,
                    lambda i: f"{ours_url}?profile=default&protocol=tls&target={same}&server_name=localhost",
                    valid,
                ),
                Contender(
                    "firstlean",
                    lambda: ours.pid,
                    lambda i: f"{ours_url}?profile=lean&protocol=tls&target={other}&server_name=l{i}.first.test",
                    "tls_probe_success 1",
                ),
                Contender(
                    "ours-first",
                    lambda: ours.pid,
                    lambda i: f"{ours_url}?profile=default&protocol=tls&target={other}&server_name=n{i}.first.test",
                    "tls_probe_success 1",
                ),
                # what a probe costs before and around its handshake: the HTTP server alone, then a
                # whole /probe whose connection is refused (parameters, pipeline, the failure's answer)
                Contender("ours-http", lambda: ours.pid, lambda i: f"http://127.0.0.1:{ours_port}/-/healthy", "OK"),
                Contender(
                    "ours-refused",
                    lambda: ours.pid,
                    lambda i: f"{ours_url}?profile=lean&protocol=tls&target=127.0.0.1:{closed}&server_name=localhost",
                    "tls_probe_success 0",
                ),
            ]

            def distinct(name: str, pid: Callable[[], int], base: str, query: str, success: str) -> Contender:
                url = f"{base}?{query}&target={{}}:{dport}"
                return Contender(name, pid, lambda i: url.format(distinct_address(i)), success, "distinct")

            every = [c for c in every if "same" in workloads]
            if "distinct" in workloads:
                bb_pid, ours_pid = (lambda: bb.pid), (lambda: ours.pid)
                every += [
                    distinct("bb-handshake", bb_pid, bb_url, "module=tls_handshake", "probe_success 1"),
                    distinct("bb-verify", bb_pid, bb_url, "module=tls_verify", "probe_success 1"),
                    distinct("ours-lean", ours_pid, ours_url, "profile=lean&protocol=tls&server_name=localhost", valid),
                    distinct(
                        "ours-default", ours_pid, ours_url, "profile=default&protocol=tls&server_name=localhost", valid
                    ),
                ]
            contenders = [c for c in every if not args.only or c.name in args.only]
            # warm-up: caches, the default profile's version scan, the Go runtime's pools
            for c in contenders:
                asyncio.run(_batch(c, min(200, args.requests), 16, 10_000_000))
            time.sleep(1.0)

            batches: list[Batch] = []
            offset = 0
            for concurrency in args.concurrency:
                for r in range(args.rounds):
                    order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
                    for c in order:
                        b = asyncio.run(_batch(c, args.requests, concurrency, offset))
                        offset += args.requests
                        batches.append(b)
                        print(
                            f"  c={concurrency} round {r + 1} {c.workload:8} {c.name:13} {b.cpu_ms:6.3f} CPU ms/probe "
                            f"{b.rate:7.1f} probes/s  non-200: {b.failures}",
                            flush=True,
                        )
                    if "same" in workloads and (not args.only or "handshake-floor" in args.only):
                        b = _floor(ports[0], args.requests, concurrency)
                        batches.append(b)
                        print(f"  c={concurrency} round {r + 1} same     floor {b.cpu_ms:6.3f} CPU ms/handshake")
            print(f"load average after: {_loadavg()}")
            return batches
        finally:
            for proc, name in reversed(procs):
                _stop(proc, name)


def report(batches: list[Batch], args: argparse.Namespace) -> None:
    print()
    head = f"CPU ms/probe (median of {args.rounds})"
    print(f"| workload | concurrency | contender | {head} | probes/s | × bb-handshake | × bb-verify |")
    print("|---|---:|---|---:|---:|---:|---:|")
    firsts: list[str] = []
    for workload in dict.fromkeys(b.workload for b in batches):
        for concurrency in args.concurrency:
            med: dict[str, tuple[float, float]] = {}
            for name in dict.fromkeys(b.contender for b in batches if b.workload == workload):
                rows = [b for b in batches if (b.contender, b.workload, b.concurrency) == (name, workload, concurrency)]
                med[name] = (statistics.median(b.cpu_ms for b in rows), statistics.median(b.rate for b in rows))
            hs, ver = med.get("bb-handshake", (0, 0))[0], med.get("bb-verify", (0, 0))[0]
            for name, (cpu, rate) in med.items():
                r1 = f"{cpu / hs:.2f}" if hs else "-"
                r2 = f"{cpu / ver:.2f}" if ver else "-"
                print(f"| {workload} | {concurrency} | {name} | {cpu:.3f} | {rate:.0f} | {r1} | {r2} |")
            # first sight against the cached probe of the same profile: lean (the probe alone) and
            # default (with the version scan the first sight starts)
            for first, cached in (("firstlean", "ours-lean"), ("ours-first", "ours-default")):
                if med.get(first, (0, 0))[0] and med.get(cached, (0, 0))[0]:
                    firsts.append(f"c={concurrency}: {first} / {cached} = {med[first][0] / med[cached][0]:.2f}")
    if firsts:
        print("\nFirst sight against a cached probe (CPU per probe): " + "; ".join(firsts))
    failures = sum(b.failures for b in batches)
    if failures:
        print(f"\n{failures} responses were not 200 (the figures above count them as probes)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="/probe requests per contender per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    p.add_argument("--leaf", default="good", help="fixture leaf of tests/pki.py (good: ECDSA P-256, good-rsa)")
    p.add_argument("--only", nargs="*", help="contender names to run (default: all)")
    p.add_argument(
        "--event-loop", choices=("auto", "asyncio", "uvloop"), help="TLS_EXPORTER_EVENT_LOOP for the exporter"
    )
    p.add_argument(
        "--workload",
        choices=("same", "distinct", "both"),
        default="both",
        help="same: every probe to one address; distinct: every probe to a new address of 127/8 "
        "(needs a private network namespace); both (default)",
    )
    args = p.parse_args(argv)
    if args.workload != "same" and not in_private_netns():
        # The distinct workload listens on every address of one port: only in a namespace of its
        # own is that loopback alone. Install first (the namespace has no network), then enter one.
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            print("the distinct workload needs a private network namespace (root and unshare), or --workload same")
            return 2
        ensure_installed(NGINX, "nginx-light")
        ensure_installed(BLACKBOX, "prometheus-blackbox-exporter")
        script = 'ip link set lo up && exec "$0" "$@"'
        os.execvp("unshare", ["unshare", "-n", "sh", "-c", script, sys.executable, *sys.argv])
    if shutil.which("apt-get") is None and not (Path(NGINX).exists() and Path(BLACKBOX).exists()):
        print("needs nginx-light and prometheus-blackbox-exporter (Debian) or apt-get to install them")
        return 2

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    report(run(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
