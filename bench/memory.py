"""Where the memory of 10,000 endpoints goes: the probe pipeline in one process, then a census.

```sh
python bench/memory.py --endpoints 10000              # against bench/run.py's endpoint server
python bench/memory.py --endpoints 10000 --distinct   # 10,000 distinct leaves, no network
```

It builds what the exporter builds for its probes (``Store``, ``Pipeline`` with an ``Assessor``
and a ``Scanner``) and probes every target of a 10,000-target configuration once, as the
scheduler would, recording each pass in the store; then it waits for the version scans the
pass asked for. No web server, no scheduler tasks and no render cache: those are measured by
``bench/run.py``; this says what the results themselves hold.

* Default: ``bench/run.py --serve N`` in a child process serves the fixture chain on N loopback
  addresses (every endpoint serves the same chain, as in ``bench/run.py``).
* ``--distinct``: no network; a source that returns, for each target, its own freshly issued
  leaf (under the fixture intermediate, trusted through the profile's ``trust``), so nothing can
  be shared between endpoints but the intermediate.

The census: the Python objects each holder keeps that no earlier holder reached (deep sizes by
``gc.get_referents``, each object counted once: store, verdict cache, facts cache, version
scans, configuration), the largest types among them, and the RSS cost of the
``x509.Certificate`` objects those holders keep (their parsed form lives in Rust's heap, which
``sys.getsizeof`` does not see: measured by loading as many certificates again). RSS is read
after ``malloc_trim`` so that freed-but-kept pages do not count.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import _raise_nofile, endpoint_address  # noqa: E402

from exporter.support import memory  # noqa: E402

MB = 1024 * 1024


def rss_mb() -> float:
    memory.trim()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType, types.FrameType)


def deep(roots: Iterable[object], seen: set[int]) -> tuple[int, Counter[str], Counter[str], list[Any]]:
    """Bytes, bytes by type, count by type of everything reachable from ``roots`` not in ``seen``;
    and the x509 certificates met (their Rust side is not in ``sys.getsizeof``)."""
    from cryptography import x509

    total, by_type, count = 0, Counter[str](), Counter[str]()
    certs: list[Any] = []
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        size = sys.getsizeof(obj)
        name = type(obj).__name__
        total += size
        by_type[name] += size
        count[name] += 1
        if isinstance(obj, x509.Certificate):
            certs.append(obj)
        stack.extend(gc.get_referents(obj))
    return total, by_type, count, certs


def cert_rss_cost(certs: list[Any]) -> float:
    """MB of RSS that loading these certificates again costs (their Python and Rust sides)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    ders = [c.public_bytes(Encoding.DER) for c in certs]
    gc.collect()
    before = rss_mb()
    again = [x509.load_der_x509_certificate(d) for d in ders]
    for c in again:  # what the exporter asks of them: extensions and names are parsed lazily
        c.subject.rfc4514_string()
        c.extensions  # noqa: B018
    after = rss_mb()
    del again
    return after - before


async def start_server(n: int, port: int, pki_dir: Path) -> asyncio.subprocess.Process:
    """``bench/run.py --serve``, once it listens; its progress lines are read and dropped, so a
    full pipe never stalls it."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, str(ROOT / "bench" / "run.py"), "--serve", str(n), "--port", str(port)),
        *("--pki", str(pki_dir)),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    while (line := await proc.stdout.readline()).strip() != b"ready":
        if not line:
            raise RuntimeError("endpoint server exited before listening")

    async def drain(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    DRAINS.add(asyncio.create_task(drain(proc.stdout)))
    return proc


DRAINS: set[asyncio.Task[None]] = set()


def distinct_source(pki_dir: Path, n: int, port: int) -> tuple[Any, str]:
    """A source returning, per target, a leaf of its own under the fixture intermediate."""
    sys.path.insert(0, str(ROOT / "tests"))
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from pki import make_pki

    from exporter.results import Observation, Session
    from exporter.support.errors import Outcome

    pki = make_pki(pki_dir)
    inter = pki.intermediate
    key = ec.generate_private_key(ec.SECP256R1())  # one key for all: only the certificates matter here
    now = dt.datetime.now(dt.UTC)
    leaves: dict[str, bytes] = {}
    for i in range(n):
        host = f"host{i}.example.test"
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(inter.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now + dt.timedelta(days=30 + i % 300))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(inter.key.public_key()), critical=False)
            .sign(inter.key, hashes.SHA256())
        )
        leaves[f"{endpoint_address(i)}:{port}"] = cert.public_bytes(Encoding.DER)
    inter_der = inter.cert.public_bytes(Encoding.DER)
    from exporter.sources.tls import TLSSource

    class Distinct(TLSSource):
        async def observe(self, job: Any, deadline: Any, profile: Any = None) -> list[Observation]:
            t = time.time()
            location = job.target
            log = (
                f"resolving {job.host}",
                f"{job.host} has 1 address(es): {job.host}",
                f"{location}: connecting",
                f"{location}: connected in 0.001s",
                f"{location}: TLS handshake (server name {job.server_name})",
                f"{location}: TLSv1.3 TLS_AES_256_GCM_SHA384, 2 certificate(s)",
                f"{location}: closed",
            )
            return [
                Observation(
                    location=location,
                    outcome=Outcome.CERTIFICATE_FOUND,
                    certificates=(leaves[location], inter_der),
                    session=Session(version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", cipher_bits=256),
                    started_at=t,
                    duration=0.002,
                    log=log,
                )
            ]

    return Distinct(), str(pki.root.cert_path)


async def main_async(args: argparse.Namespace) -> int:
    from exporter.certs import judge as judge_mod
    from exporter.config import load_config
    from exporter.judge.assess import Assessor
    from exporter.judge.scan import Scanner
    from exporter.pipeline import Pipeline
    from exporter.schedule.store import Store

    n = args.endpoints
    memory.one_arena()
    _raise_nofile(2 * n + 1024)
    figures: list[tuple[str, float]] = [("start (modules)", rss_mb())]
    with tempfile.TemporaryDirectory(prefix="tls-mem-") as tmp:
        d = Path(tmp)
        server: asyncio.subprocess.Process | None = None
        probers: dict[str, Any] | None = None
        trust = ""
        if args.distinct:
            source, root = distinct_source(d / "pki", n, args.port)
            probers = {"tls": source}
            trust = f", trust: '{root}'"
        else:
            server = await start_server(n, args.port, d / "pki")
        try:
            config_path = d / "config.yml"
            lines = [
                "defaults: {interval: 300s, timeout: 10s}",
                f"profiles: {{default: {{series: default{trust}}}}}",
                "targets:",
            ]
            lines += [
                f"  - {{address: '{endpoint_address(i)}:{args.port}', protocol: tls, server_name: localhost}}"
                for i in range(n)
            ]
            config_path.write_text("\n".join(lines) + "\n")
            config = load_config(config_path)
            figures.append(("configuration loaded", rss_mb()))
            store = Store()
            store.apply_config(config.targets)
            scanner = Scanner()
            assessor = Assessor()
            pipeline = Pipeline(probers=probers, assessor=assessor, scanner=scanner)
            gate = asyncio.Semaphore(args.concurrency)
            profile = config.profile("default")

            async def one(job: Any) -> None:
                async with gate:
                    results = await pipeline.probe(job, config)
                store.record(job, results, every_certificate=False, profile=profile, now=time.time())

            t = time.monotonic()
            await asyncio.gather(*(one(job) for job in config.targets))
            await asyncio.sleep(0.1)  # the loop's callbacks let go of the 10,000 finished tasks
            print(f"pass: {n} probes in {time.monotonic() - t:.1f} s", flush=True)
            figures.append(("after the pass", rss_mb()))
            if not args.distinct:
                while scanner._queue or scanner._pending:  # noqa: ASYNC110 (polling the scanner's own state)
                    await asyncio.sleep(0.5)
                figures.append(("after the version scans", rss_mb()))
            outcomes = Counter(e.result.outcome.value for _, es in store.snapshot() for e in es.values())
            print("outcomes:", dict(outcomes))

            gc.collect()
            seen: set[int] = set()
            # what holders share with the configuration counts there, so it goes first
            holders: list[tuple[str, Callable[[], Iterable[object]]]] = [
                ("configuration (Target dataclasses)", lambda: [config]),
                ("store (Entries, Results, reports, logs)", lambda: [store._jobs]),
                ("change tracker", lambda: [store._changes]),
                ("verdict cache (verdicts, trust parts, leaves)", lambda: [assessor.verdicts]),
                ("facts cache (DER -> CertFacts)", lambda: [judge_mod.FACTS._data]),
                ("version scans (Scanner results)", lambda: [scanner._results]),
                ("fetcher caches", lambda: [assessor.fetcher]),
            ]
            print()
            print("| holder | objects | Python MB | x509.Certificate objects |")
            print("|---|---:|---:|---:|")
            all_certs: list[Any] = []
            details = []
            for name, roots in holders:
                size, by_type, count, certs = deep(roots(), seen)
                all_certs += certs
                details.append((name, by_type, count))
                print(f"| {name} | {sum(count.values()):,} | {size / MB:.1f} | {len(certs):,} |")
            print()
            for name, by_type, count in details:
                top = ", ".join(f"{t} {b / MB:.1f} MB ({count[t]:,})" for t, b in by_type.most_common(args.top))
                print(f"{name}: {top}")
            if all_certs:
                cost = cert_rss_cost(all_certs)
                print(
                    f"\nx509.Certificate objects held: {len(all_certs):,}; loading as many again costs "
                    f"{cost:.1f} MB RSS ({cost * 1024 / len(all_certs):.1f} KB each)"
                )
            sizes = Counter[str]()
            counts = Counter[str]()
            for o in gc.get_objects():
                sizes[type(o).__name__] += sys.getsizeof(o)
                counts[type(o).__name__] += 1
            print("\nwhole process, gc-tracked objects by type (shallow):")
            print(", ".join(f"{t} {b / MB:.1f} MB ({counts[t]:,})" for t, b in sizes.most_common(args.top)))
            print("\n| moment | RSS MB (after malloc_trim) |\n|---|---:|")
            for label, mb in figures:
                print(f"| {label} | {mb:.1f} |")
            print(f"load average: {os.getloadavg()}")
            await pipeline.close()
        finally:
            if server is not None:
                server.terminate()
                await server.wait()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoints", type=int, default=10_000)
    p.add_argument("--port", type=int, default=8453, help="port of every endpoint on 127.77.X.Y")
    p.add_argument("--distinct", action="store_true", help="a distinct leaf per endpoint, no network")
    p.add_argument("--concurrency", type=int, default=128, help="probes at once (default 128)")
    p.add_argument("--top", type=int, default=8, help="types shown per holder")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
