"""Bench a discovery run: a loopback range times a few ports, mostly closed, some silent, a few TLS.

    python bench/discovery.py [--network 127.90.0.0/20] [--ports 443,8443,9443] [--rate 2000]
                              [--timeout 1] [--tls 8] [--silent 0.5]

Run it in a private network namespace (``unshare -rn sh -c 'ip link set lo up; python ...'``):
it connects to every address of --network (which must be in 127.0.0.0/8) on every port. Closed
pairs are real (nothing listens there: refused at once); a few addresses serve TLS on the first
port (in-process servers, a throw-away certificate). Silent hosts are simulated: a share
(--silent) of the addresses is not connected to, each of their pairs holds its connection slot
for the whole timeout, as a host that drops SYNs does. With ``--drop``, they are real instead:
an nftables rule of the namespace drops every SYN to the upper half of --network (nftables is
installed with apt-get when missing), and every pair is connected to. Meanwhile a configured target (a loopback
TLS server) is probed through the normal pipeline every 0.2 s, before and during the scan.

Prints the scope, the run's duration against scope / rate + timeout, the outcomes, the peak RSS,
and the scheduled probe's duration (median and 95th percentile) alone and during the scan.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from posture import make_cert  # bench/posture.py, beside this script

from exporter.config.discovery import parse_discovery
from exporter.config.model import Config, Defaults, Profile, Target
from exporter.config.reader import Reader
from exporter.pipeline import Pipeline
from exporter.sources.discovered import PairResult
from exporter.sources.discovery import probe_pair, run_scan
from exporter.support.errors import Outcome


def tls_context(directory: Path) -> ssl.SSLContext:
    """A server context with a throw-away self-signed certificate for localhost (bench/posture.py's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*make_cert(directory))
    return ctx


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.read(4096), 5)
    except (TimeoutError, OSError, ssl.SSLError):
        pass
    finally:
        writer.close()


def silent_share(ip: str, share: float) -> bool:
    return int.from_bytes(hashlib.sha256(ip.encode()).digest()[:4], "big") / 2**32 < share


async def probe_loop(pipeline: Pipeline, target: Target, config: Config, stop: asyncio.Event) -> list[float]:
    durations = []
    while not stop.is_set():
        t0 = time.monotonic()
        await pipeline.probe(target, config)
        durations.append(time.monotonic() - t0)
        await asyncio.sleep(0.2)
    return durations


def summary(durations: list[float]) -> str:
    if len(durations) < 2:
        return "n/a"
    q = statistics.quantiles(durations, n=20)
    return f"median {statistics.median(durations) * 1000:.1f} ms, p95 {q[18] * 1000:.1f} ms ({len(durations)} probes)"


def drop_syns(network: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """Make the upper half of ``network`` silent: its SYNs are dropped (this namespace only)."""
    if shutil.which("nft") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "nftables"], check=True, env={**os.environ,
                       "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)  # fmt: skip
    silent = list(network.subnets(prefixlen_diff=1))[1]
    rule = f"ip daddr {silent} tcp flags syn drop"
    rules = f"table ip bench {{\n chain input {{\n  type filter hook input priority 0;\n  {rule}\n }}\n}}\n"
    subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True)
    return silent


async def main(args: argparse.Namespace) -> int:
    network = ipaddress.ip_network(args.network)
    if not network.subnet_of(ipaddress.ip_network("127.0.0.0/8")):  # type: ignore[arg-type]
        print("--network must lie in 127.0.0.0/8 (run in a private network namespace)", file=sys.stderr)
        return 2
    dropped = drop_syns(network) if args.drop else None  # type: ignore[arg-type]
    ports = [int(p) for p in args.ports.split(",")]
    reader = Reader(Path("."))
    (scan,) = parse_discovery(
        reader,
        [{"name": "bench", "networks": [args.network], "ports": ports, "rate": args.rate,
          "timeout": f"{args.timeout}s", "interval": "1d"}],
        Defaults(),
        (),
    )  # fmt: skip
    assert not reader.errors, reader.errors
    with tempfile.TemporaryDirectory() as tmp:
        ctx = tls_context(Path(tmp))
        hosts = list(scan.iter_addresses())[1 : 1 + args.tls]
        servers = [await asyncio.start_server(serve, host, ports[0], ssl=ctx) for host in hosts]
        watched = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
        port = watched.sockets[0].getsockname()[1]
        target = Target(target=f"127.0.0.1:{port}", host="127.0.0.1", port=port, protocol="tls",
                        server_name="localhost", name="bench", owner="")  # fmt: skip
        config = Config(profiles={"default": Profile(scan_protocol_versions=False)}, targets=(target,))
        pipeline = Pipeline()

        async def probe(ip: str, p: int, protocol: str, timeout: float) -> PairResult:
            if dropped is None and ip not in hosts and silent_share(ip, args.silent):
                await asyncio.sleep(timeout)  # a host that drops SYNs: the slot is held for the timeout
                return PairResult(ip=ip, port=p, protocol=protocol, outcome=Outcome.CONNECT_TIMEOUT, accepted=False)
            return await probe_pair(ip, p, protocol, timeout)

        stop = asyncio.Event()
        alone = asyncio.create_task(probe_loop(pipeline, target, config, stop))
        await asyncio.sleep(3)
        stop.set()
        baseline = await alone
        stop = asyncio.Event()
        during = asyncio.create_task(probe_loop(pipeline, target, config, stop))
        t0, cpu0 = time.monotonic(), time.process_time()
        result = await run_scan(scan, probe=probe)
        took, cpu = time.monotonic() - t0, time.process_time() - cpu0
        stop.set()
        loaded = await during
        for server in [*servers, watched]:
            server.close()
            await server.wait_closed()
        await pipeline.close()
    expected = scan.scope / scan.rate + scan.timeout
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scope: {scan.scope:,} pairs ({scan.addresses:,} addresses x {len(ports)} ports), rate {scan.rate:g}/s, "
          f"timeout {scan.timeout:g}s, " + (f"silent: {dropped} (SYNs dropped)" if dropped else
          f"silent share {args.silent:.0%} (simulated)"))  # fmt: skip
    print(f"run: {took:.1f} s (scope / rate + timeout = {expected:.1f} s); pairs tried {result.scope:,}")
    print("outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.outcomes.items())))
    print(f"accepted: {len(result.accepted)}; peak RSS {rss:.0f} MB; process CPU during the run {cpu:.1f} s "
          f"({cpu / took:.0%} of one core)")  # fmt: skip
    print(f"scheduled probe alone:       {summary(baseline)}")
    print(f"scheduled probe during scan: {summary(loaded)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="127.90.0.0/20")
    parser.add_argument("--ports", default="443,8443,9443")
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--tls", type=int, default=8, help="addresses serving TLS on the first port")
    parser.add_argument("--silent", type=float, default=0.5, help="share of the addresses simulated silent")
    parser.add_argument("--drop", action="store_true", help="real silent hosts: drop SYNs to the upper half (nft)")
    arguments = parser.parse_args()
    # A namespace of its own has only the loopback interface (the machine's has its network too).
    if arguments.drop and [name for _, name in socket.if_nameindex()] != ["lo"]:
        sys.exit("--drop changes the firewall: run it in a private network namespace (unshare -n)")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # rate x timeout connections at once
    sys.exit(asyncio.run(main(arguments)))
