"""Start-up costs (issue 10): `tls-exporter check` of one endpoint, `--config.check` and loading a
10,000-target configuration, in CPU seconds and memory.

    python bench/startup.py [--runs 5] [--targets 10000] [--shard I/N] [--load-only]

* ``check``: ``python -m exporter check 127.0.0.1:PORT --protocol tls`` against a loopback TLS
  server of this process (a thread; the fixture leaf ``good`` of tests/pki.py), ``--runs`` times;
  CPU is the child's utime+stime (``RUSAGE_CHILDREN``), so the server's share is not counted.
* ``--config.check`` of a generated file with ``--targets`` targets, the same way.
* ``load_config`` of that file in a fresh interpreter: CPU (``time.process_time``) and the peak
  RSS growth over the interpreter with the modules imported (``VmRSS`` before, ``VmHWM`` after),
  and the peak RSS itself (``VmHWM``). With ``--shard I/N`` it loads as the replica ``--shard=I/N`` does (its share
  of the targets kept, every target checked). ``--load-only`` measures nothing else (a million
  targets: ``--targets 1000000 --runs 2 --load-only``).

Every child runs with compiled bytecode, as an installed exporter does (pip compiles on install):
the children write it to a temporary ``PYTHONPYCACHEPREFIX`` (``PYTHONDONTWRITEBYTECODE`` is
dropped), and a first, uncounted run of each command fills it. Without it, compiling our modules
adds about 0.1 s to every run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# Memory from /proc/self/status: ru_maxrss survives exec, so a child of this process (which wrote a
# million lines) would start from this process's peak; VmHWM belongs to the new program.
LOAD = """
import json, sys, time
from exporter.config import load_config
from exporter.schedule.shard import parse_shard
def mb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024
shard = parse_shard(sys.argv[2])
before = mb("VmRSS")
t = time.process_time()
config = load_config(sys.argv[1], **({"shard": shard} if shard.count > 1 else {}))  # older code: no shard
cpu = time.process_time() - t
peak = mb("VmHWM")
print(json.dumps({"cpu_s": cpu, "rss_growth_mb": peak - before, "peak_rss_mb": peak, "targets": len(config.targets)}))
"""


def _serve(ctx: ssl.SSLContext, listener: socket.socket, stop: threading.Event) -> None:
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(2)
                with contextlib.suppress(OSError, ssl.SSLError):
                    tls.recv(1024)  # the HSTS request of protocol tls, or the close
        except (OSError, ssl.SSLError):
            conn.close()


CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT)}


def child_cpu(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=CHILD_ENV, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--targets", type=int, default=10_000)
    p.add_argument("--shard", default="0/1", help="load_config as the replica --shard=I/N (default 0/1: all)")
    p.add_argument("--load-only", action="store_true", help="measure load_config only")
    args = p.parse_args()
    from pki import make_pki

    with tempfile.TemporaryDirectory(prefix="tls-startup-") as tmp:
        d = Path(tmp)
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(d / "pycache")
        config = d / "config.yml"
        lines = ["defaults: {interval: 300s, timeout: 10s}", "targets:"]
        lines += [
            # 250 addresses per /24, 250 /24s per /16: 127.77.0.1 up, then 127.78 ... (a million fits).
            f"  - {{address: '127.{77 + i // 62_500}.{i // 250 % 250}.{i % 250 + 1}:8443', protocol: tls, "
            "server_name: localhost}"
            for i in range(args.targets)
        ]
        config.write_text("\n".join(lines) + "\n")
        if args.load_only:
            _print_loads(args, _loads(config, args))
            return 0
        pki = make_pki(d / "pki")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["good"].chain_path, pki["good"].key_path)
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        stop = threading.Event()
        thread = threading.Thread(target=_serve, args=(ctx, listener, stop), daemon=True)
        thread.start()
        try:
            check = [
                sys.executable, "-m", "exporter", "check", f"127.0.0.1:{port}", "--protocol", "tls",
                "--server-name", "localhost", "--ca-file", str(pki.root.cert_path),
            ]  # fmt: skip
            child_cpu(check)  # compiles the bytecode: not counted
            child_cpu([sys.executable, "-m", "exporter", "--config.check", f"--config.file={config}"])
            cpus = []
            for _ in range(args.runs):
                cpu, done = child_cpu(check)
                if done.returncode != 0:
                    raise RuntimeError(f"check exited {done.returncode}: {done.stdout}{done.stderr}")
                cpus.append(cpu)
            empty, _ = child_cpu([sys.executable, "-c", "pass"])
            cfg = [child_cpu([sys.executable, "-m", "exporter", "--config.check", f"--config.file={config}"])[0]
                   for _ in range(max(1, args.runs // 2))]  # fmt: skip
            loads = _loads(config, args)
        finally:
            stop.set()
            thread.join(5)
            listener.close()
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"python -c pass:               {empty:.3f} s CPU (the interpreter alone)")
    print(f"check of one endpoint:        median {statistics.median(cpus):.3f} s CPU ({[round(c, 3) for c in cpus]})")
    print(f"--config.check, {args.targets} targets: median {statistics.median(cfg):.3f} s CPU")
    _print_loads(args, loads)
    return 0


def _loads(config: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    runs = 1 + max(1, args.runs // 2) if args.load_only else max(1, args.runs // 2)
    loads = [
        json.loads(subprocess.run(
            [sys.executable, "-c", LOAD, str(config), args.shard], capture_output=True, text=True, check=True,
            env=CHILD_ENV, cwd=ROOT,  # `-c` puts the working directory first on sys.path: this checkout's
        ).stdout)
        for _ in range(runs)
    ]  # fmt: skip
    return loads[1:] if args.load_only else loads  # alone, the first run compiles the bytecode


def _print_loads(args: argparse.Namespace, loads: list[dict[str, float]]) -> None:
    cpus = sorted(round(x["cpu_s"], 2) for x in loads)
    print(
        f"load_config, {args.targets} targets, --shard={args.shard} ({int(loads[0]['targets'])} kept): "
        f"median {statistics.median(x['cpu_s'] for x in loads):.3f} s CPU ({cpus}), "
        f"peak RSS growth {statistics.median(x['rss_growth_mb'] for x in loads):.1f} MB, "
        f"peak RSS {statistics.median(x['peak_rss_mb'] for x in loads):.1f} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
