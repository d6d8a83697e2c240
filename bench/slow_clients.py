"""Scrapes and probes under a slowloris flood: the real exporter with a small descriptor limit.

    python bench/slow_clients.py [--clients 1100] [--nofile 1024] [--scrapes 40] [--targets 20]

* A loopback TLS endpoint (a thread of this process; the fixture leaf ``good`` of tests/pki.py).
* The real exporter, ``python -m exporter``, with ``RLIMIT_NOFILE`` set to ``--nofile`` (its HTTP
  connection cap is then 448 at 1,024), probing ``--targets`` targets on that endpoint every second.
* The flood: ``--clients`` connections held open at all times, each sending a request head one byte
  a second, never finishing it; one the exporter closes is replaced at once
  (tests/hostile/flood.py, which the hostile suite also uses).
* Meanwhile, as Prometheus does, ``--scrapes`` rounds of ``GET /metrics`` and ``GET /-/healthy``,
  each on a new connection, 0.5 s apart.

Prints: failed requests of the scrape rounds (any status but 200, or a connection error), their
latency, probes per second before and during the flood (the schedule says ``--targets`` a second),
the connections the flood made, and the exporter's own log lines about the cap. Loopback only;
the exporter is stopped and the temporary directory removed on exit.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _get(url: str) -> tuple[int | str, float]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            status: int | str = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        status = type(exc).__name__
    return status, time.monotonic() - start


def _probes(base: str) -> float:
    """Probes run so far (retried until a scrape gets through: the old server refused them)."""
    for _ in range(600):
        try:
            body = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
            break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError("no scrape got through in 600 tries")
    return sum(float(m[1]) for m in re.finditer(r"^tls_exporter_probes_total\{[^}]*\} (\S+)$", body, re.M))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=1100)
    p.add_argument("--nofile", type=int, default=1024, help="the exporter's RLIMIT_NOFILE")
    p.add_argument("--scrapes", type=int, default=40)
    p.add_argument("--targets", type=int, default=20)
    args = p.parse_args()
    from hostile.flood import SlowlorisFlood
    from pki import make_pki
    from startup import _serve  # the loopback TLS endpoint of bench/startup.py

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.clients + 1024), hard))  # the flood's own
    with tempfile.TemporaryDirectory(prefix="tls-slow-clients-") as tmp:
        d = Path(tmp)
        pki = make_pki(d / "pki")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["good"].chain_path, pki["good"].key_path)
        listener = socket.create_server(("127.0.0.1", 0))
        stop = threading.Event()
        server = threading.Thread(target=_serve, args=(ctx, listener, stop), daemon=True)
        server.start()
        tls_port = listener.getsockname()[1]
        config = d / "config.yml"
        config.write_text(
            "defaults: {interval: 1s, timeout: 1s}\ntargets:\n"
            + "".join(
                f"  - {{address: '127.0.0.1:{tls_port}', protocol: tls, server_name: t{i}.localhost}}\n"
                for i in range(args.targets)
            )
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        argv = [f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]
        code = (
            "import resource, runpy, sys; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({args.nofile}, {args.nofile})); "
            f"sys.argv = ['exporter', *{argv!r}]; runpy.run_module('exporter', run_name='__main__')"
        )
        log = (d / "exporter.log").open("w+")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            for _ in range(300):
                if _get(f"{base}/-/ready")[0] == 200:
                    break
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            else:
                proc.kill()
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the exporter is not ready (exit {proc.returncode}):\n{log.read()[-3000:]}")
            time.sleep(3)  # the first probes
            t0, n0 = time.monotonic(), _probes(base)
            time.sleep(10)
            before = (_probes(base) - n0) / (time.monotonic() - t0)
            with SlowlorisFlood(port, args.clients) as flood:
                while flood.connections < args.clients:
                    time.sleep(0.1)
                held_at = time.monotonic()
                t1, n1 = time.monotonic(), _probes(base)
                results = []
                for _ in range(args.scrapes):
                    results += [_get(f"{base}/metrics"), _get(f"{base}/-/healthy")]
                    time.sleep(0.5)
                during = (_probes(base) - n1) / (time.monotonic() - t1)
                made, lasted = flood.connections, time.monotonic() - held_at
        finally:
            proc.terminate()
            proc.wait(10)
            stop.set()
            server.join(5)
            listener.close()
        log.seek(0)
        lines = log.read().splitlines()
        log.close()
    failed = [status for status, _ in results if status != 200]
    times = sorted(t for _, t in results)
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}; pid {os.getpid()}")
    print(f"exporter: RLIMIT_NOFILE {args.nofile}; {args.targets} targets every 1 s")
    print(f"flood: {args.clients} slow clients held; {made} connections made over {lasted:.1f} s")
    print(f"requests during the flood: {len(results)} ({args.scrapes} x /metrics and /-/healthy); failed {len(failed)}")
    if failed:
        print(f"  failures: {sorted(set(map(str, failed)))}")
    print(f"  latency median {statistics.median(times) * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
    print(f"probes per second: {before:.2f} before the flood, {during:.2f} during (scheduled: {args.targets})")
    shed = [line for line in lines if "waiting longest for its request" in line]
    refused = [line for line in lines if "refused with 503" in line]
    print(f"exporter log (rate limited): {len(shed)} lines 'closed the one waiting longest', {len(refused)} '503'")
    print(f"exporter log lines mentioning 'Too many open files': {sum('Too many open files' in x for x in lines)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
