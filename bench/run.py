"""Benchmark the real exporter against N loopback TLS endpoints (issue 2).

    python bench/run.py [--endpoints 1000] [--interval 300] [--scrapes 5] [--port 8443]

Three processes:

* an endpoint server (this file with ``--serve``): one asyncio process that listens on N
  distinct (address, port) pairs, ``127.77.X.Y:PORT`` (all of 127.0.0.0/8 is loopback on
  Linux, so no interface set-up), each serving the fixture leaf ``good`` of tests/pki.py;
  it counts, per endpoint, the TLS connections that completed and closed, and reports
  that count on its stdout. Completion is detected there, not by polling the exporter's
  /metrics, so the exporter's CPU figure is not inflated by the benchmark's own scrapes;
* the real exporter, ``python -m exporter --config.file=F --web.listen-address=127.0.0.1:P``,
  with N ``protocol: tls`` targets at ``interval`` (default 5m: every target is then first
  probed within the scheduler's first-probe window of start, spread evenly: 30 s up to 10,500
  targets, longer past that, see exporter/schedule/scheduler.py);
* this driver, which waits for /-/ready, waits until every endpoint has been probed once,
  checks that /metrics holds N ``tls_probe_success 1`` samples, then scrapes /metrics
  ``--scrapes`` times and prints the figures.

Figures: first-pass probes per second (N divided by the time from the first to the last
handshake seen by the endpoint server), exporter CPU seconds per probe (utime+stime from
/proc/PID/stat between /-/ready and the end of the first pass, divided by N), peak RSS
(VmHWM of /proc/PID/status), /metrics time measured by the client (median and max), series
per endpoint ((samples - tls_exporter_* samples) / N), the /metrics size and, last, how the
probes ended (outcomes counted from /api/v1/inventory; "no free connection slot" on its own).

RLIMIT_NOFILE: the soft limit of this process is raised to min(hard, 2 N + 1024) before the
two children start; both inherit it (and set it again in their own preexec hook). Children
get PR_SET_PDEATHSIG so they die with the driver; the driver stops both on exit, on error and
on Ctrl-C, and removes its temporary directory. Everything listens on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gzip
import hashlib
import json
import os
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PER_SUBNET = 250  # endpoints per 127.77.X.0/24


# --------------------------------------------------------------------------- endpoint server


def endpoint_address(i: int) -> str:
    return f"127.77.{i // PER_SUBNET}.{i % PER_SUBNET + 1}"


def target_address(i: int, served: int) -> str:
    """Endpoint i, or for i >= served an address under 127.78/16 and up, where nothing listens."""
    if i < served:
        return endpoint_address(i)
    block = PER_SUBNET * 256
    return f"127.{78 + i // block}.{(i % block) // PER_SUBNET}.{i % PER_SUBNET + 1}"


class _Counting(asyncio.Protocol):
    """One accepted TLS connection: connection_made runs after the handshake completed."""

    def __init__(self, index: int, stats: _Stats) -> None:
        self.index, self.stats = index, stats

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stats.handshake(self.index)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.closed(self.index)


class _Stats:
    def __init__(self, count: int) -> None:
        self.done = bytearray(count)  # 1 once an endpoint saw a complete handshake + close
        self.distinct = 0
        self.handshakes = 0
        self.first: float | None = None
        self.last: float | None = None

    def handshake(self, index: int) -> None:
        self.handshakes += 1
        now = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on Linux
        self.first = now if self.first is None else self.first
        self.last = now

    def closed(self, index: int) -> None:
        if not self.done[index]:
            self.done[index] = 1
            self.distinct += 1

    def line(self) -> str:
        return json.dumps(
            {"distinct": self.distinct, "handshakes": self.handshakes, "first": self.first, "last": self.last}
        )


class _Silent(_Counting):
    """A plain TCP listener that accepts and never answers: a probe of it times out."""


def _contexts(pki_dir: Path, count: int, distinct: bool) -> Callable[[int], ssl.SSLContext]:
    """The server context of endpoint i: the fixture leaf ``good`` for all, or with ``distinct``
    a leaf of its own per endpoint (same key and issuer, own serial: a fleet of distinct
    certificates, so no per-certificate cache can make the figures)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pki import make_pki  # the fixture PKI of the test suite

    pki = make_pki(pki_dir)
    good = pki["good"]
    if not distinct:
        ctx = good.server_context()
        return lambda i: ctx
    return lambda i: pki.issue(f"bench-{i}", key=good.key).server_context()


async def _serve(count: int, port: int, pki_dir: Path, silent: int = 0, distinct: bool = False) -> None:
    context_of = _contexts(pki_dir, count, distinct)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stats = _Stats(count)
    servers = []
    try:
        for i in range(count):
            if i < silent:  # the first `silent` endpoints accept and never answer
                quiet: Callable[[], asyncio.Protocol] = lambda i=i: _Silent(i, stats)  # noqa: E731
                servers.append(await loop.create_server(quiet, endpoint_address(i), port, backlog=64))
                continue
            factory: Callable[[], asyncio.Protocol] = lambda i=i: _Counting(i, stats)  # noqa: E731
            servers.append(
                await loop.create_server(
                    factory, endpoint_address(i), port, ssl=context_of(i), backlog=64, ssl_handshake_timeout=15
                )
            )
        print("ready", flush=True)
        previous = ""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
            line = stats.line()
            if line != previous:
                print(line, flush=True)
                previous = line
    finally:
        for server in servers:
            server.close()


# --------------------------------------------------------------------------- driver helpers


def _raise_nofile(wanted: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _child_setup(nofile: int) -> Callable[[], None]:
    def setup() -> None:
        _raise_nofile(nofile)
        with contextlib.suppress(Exception):  # die with the driver, whatever kills it
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return setup


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def code_state() -> str:
    """HEAD, whether the tree is dirty, and a digest of exporter/**/*.py: which code was measured."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "exporter").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "exporter"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "unknown", []
    return f"{head}{f'+{len(dirty)} changed' if dirty else ''} exporter-src {digest.hexdigest()[:12]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 60.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def _stop(proc: subprocess.Popen[bytes] | None, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop on SIGTERM; killing pid {proc.pid}", file=sys.stderr)
        proc.kill()
        proc.wait(5)


class ServerProgress:
    """Reads the endpoint server's stdout in a thread and keeps its latest report."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.ready = threading.Event()
        self.latest: dict[str, float | int | None] = {"distinct": 0, "handshakes": 0, "first": None, "last": None}
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line == "ready":
                self.ready.set()
            elif line.startswith("{"):
                with self.changed:
                    self.latest = json.loads(line)
                    self.changed.notify_all()


def _fetch(base: str, encoding: str) -> tuple[bytes, bool, float]:
    """One /metrics scrape as Prometheus asks for it: the body as sent, whether it is gzip, and the
    seconds from the request to its last byte (the client's decompression is not counted)."""
    request = urllib.request.Request(base + "/metrics", headers={"Accept-Encoding": encoding})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
        return raw, response.headers.get("Content-Encoding") == "gzip", time.perf_counter() - t0


def _body(raw: bytes, gzipped: bool) -> bytes:
    return gzip.decompress(raw) if gzipped else raw


def parse_metrics(body: bytes) -> dict[str, int]:
    total = self_samples = success = success_ones = 0
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        total += 1
        if line.startswith("tls_exporter_"):
            self_samples += 1
        elif line.startswith("tls_probe_success{"):
            success += 1
            success_ones += line.endswith(" 1.0")
    return {"samples": total, "self_samples": self_samples, "probe_success": success, "probe_success_1": success_ones}


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, object]:
    n = args.endpoints
    silent = n * args.timeouts // 100  # endpoints that accept and never answer: the probe times out
    refused = n * args.refused // 100  # targets where nothing listens: connection refused
    served = n - refused  # the endpoint server listens for these (the silent ones first)
    code = code_state()
    print(f"code: {code}")
    nofile = _raise_nofile(2 * n + 1024)
    print(f"endpoints {n}; RLIMIT_NOFILE soft/hard now {nofile[0]}/{nofile[1]} (inherited by both children)")
    server = exporter = None
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as tmp:
        tmpdir = Path(tmp)
        try:
            # 1. the endpoints
            server = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    str(served),
                    "--silent",
                    str(silent),
                    *(["--distinct-leaves"] if args.distinct_leaves else []),
                    "--port",
                    str(args.port),
                    "--pki",
                    str(tmpdir / "pki"),
                ],
                stdout=subprocess.PIPE,
                preexec_fn=_child_setup(nofile[0]),
                cwd=ROOT,
            )
            progress = ServerProgress(server)
            t = time.monotonic()
            while not progress.ready.wait(0.5):
                if server.poll() is not None:
                    raise RuntimeError(
                        f"endpoint server exited with {server.returncode} before listening "
                        f"(port {args.port} busy on 127.77.x.y? try --port)"
                    )
                if time.monotonic() - t > 300:
                    raise RuntimeError("endpoint server not listening after 300 s")
            print(
                f"endpoint server pid {server.pid}: listening on {served} addresses "
                f"127.77.0.1..{endpoint_address(served - 1)} port {args.port} ({time.monotonic() - t:.1f} s)"
            )

            # 2. the configuration and the exporter
            config = tmpdir / "config.yml"
            timeout = min(10, args.interval)  # the configuration refuses a timeout above the interval
            lines = [
                f"defaults: {{interval: {args.interval}s, timeout: {timeout}s}}",
                f"profiles: {{default: {{series: {args.series}}}}}",
                "targets:",
            ]
            # the refused targets: 127.78.X.Y, where nothing listens
            full = [
                f"  - {{address: '{target_address(i, served)}:{args.port}', protocol: tls, server_name: localhost}}"
                for i in range(n)
            ]
            if sum(len(line) + 1 for line in full) > 4_000_000:
                # Over the exporter's 4 MiB configuration limit (100,000 targets): the refused
                # targets take the short form (protocol https by default); they never connect,
                # so their probe is the same.
                short = [f"  - {{address: '{target_address(i, served)}:{args.port}'}}" for i in range(served, n)]
                full[served:] = short
                print(f"configuration: the {refused} refused targets in the short form (protocol https)")
            lines += full
            config.write_text("\n".join(lines) + "\n")
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            log_path = tmpdir / "exporter.log"
            with log_path.open("wb") as log_file:
                t_start = time.monotonic()
                exporter = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "exporter",
                        f"--config.file={config}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_child_setup(nofile[0]),
                    cwd=tmpdir,
                )
            pid = exporter.pid
            while True:
                if exporter.poll() is not None:
                    raise RuntimeError(f"exporter exited with {exporter.returncode}:\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(OSError):
                    if _get(base + "/-/ready", 2)[0] == 200:
                        break
                if time.monotonic() - t_start > 120:
                    raise RuntimeError("exporter not ready after 120 s")
                time.sleep(0.05)
            t_ready = time.monotonic()
            cpu_ready = _cpu_seconds(pid)
            probed_at_ready = progress.latest["distinct"]
            print(
                f"exporter pid {pid} ready after {t_ready - t_start:.2f} s, {cpu_ready:.2f} CPU s "
                f"({probed_at_ready} endpoints already probed)"
            )

            # 3. the first pass: wait for the endpoint server to have seen every endpoint
            deadline = t_ready + args.deadline
            with progress.changed:
                while int(progress.latest["distinct"] or 0) < served:
                    if exporter.poll() is not None or server.poll() is not None:
                        raise RuntimeError("a child exited during the first pass")
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"first pass incomplete after {args.deadline} s: {progress.latest['distinct']}/{n}"
                        )
                    progress.changed.wait(1.0)
            t_seen = time.monotonic()
            time.sleep(args.settle)  # the last probes parse and record after the server saw them close
            cpu_pass = _cpu_seconds(pid)
            first, last = float(progress.latest["first"] or 0), float(progress.latest["last"] or 0)
            hwm_pass = _status_kb(pid, "VmHWM")
            rss_pass = _status_kb(pid, "VmRSS")

            # 4. /metrics must now hold every endpoint (CPU reading already taken). The first scrape
            # after the pass is timed on its own: it renders every location for the first time.
            # Probes that time out finish up to one timeout after the server saw them.
            first_scrape = None
            for _ in range(int(timeout / 0.5) + 40):
                raw, gz, took = _fetch(base, args.encoding)
                body = _body(raw, gz)
                if first_scrape is None:
                    first_scrape = took
                counts = parse_metrics(body)
                if counts["probe_success"] >= n:
                    break
                time.sleep(0.5)
            t_all = time.monotonic()
            if counts["probe_success_1"] != served - silent or counts["probe_success"] != n:
                raise RuntimeError(f"/metrics shows {counts['probe_success_1']} successful of {n}: {counts}")
            rss_results = _status_kb(pid, "VmRSS")

            # 5. timed scrapes (no probe runs now: the next pass starts one interval after the first)
            times, cpus = [], []
            for _ in range(args.scrapes):
                c0 = _cpu_seconds(pid)
                raw, gz, took = _fetch(base, args.encoding)
                cpus.append(_cpu_seconds(pid) - c0)
                times.append(took)
                body, wire = _body(raw, gz), len(raw)
            counts = parse_metrics(body)
            hwm = _status_kb(pid, "VmHWM")
            rss = _status_kb(pid, "VmRSS")
            handshakes = int(progress.latest["handshakes"] or 0)
            errors = [line for line in log_path.read_text().splitlines() if "level=error" in line]
            # After every figure above: how the probes ended (an overloaded exporter shows as
            # network_error "no free connection slot"), from the inventory.
            outcomes: dict[str, int] = {}
            for item in json.loads(_get(base + "/api/v1/inventory", 300)[1]):
                outcome = str(item.get("outcome"))
                if "no free connection slot" in str(item.get("detail") or ""):
                    outcome += " (no free connection slot)"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        finally:
            _stop(exporter, "exporter")
            _stop(server, "endpoint server")

    pass_seconds = last - first
    if code_state() != code:
        print(
            "warning: exporter/ changed during the run (the running process kept the code it imported)", file=sys.stderr
        )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "code": code,
        "cpus": os.cpu_count(),
        "endpoints": n,
        "interval_s": args.interval,
        "first_pass_s": round(pass_seconds, 2),
        "start_to_all_probed_s": round(t_seen - t_start, 2),
        "start_to_all_results_s": round(t_all - t_start, 2),
        "timeouts": silent,
        "refused": refused,
        "series": args.series,
        "leaves": "distinct" if args.distinct_leaves else "one for all",
        "encoding": args.encoding,
        "event_loop": os.environ.get("TLS_EXPORTER_EVENT_LOOP", "auto"),
        "rss_all_results_mb": round(rss_results / 1024, 1),
        "first_scrape_s": round(first_scrape or 0.0, 3),
        "probes_per_s": round(n / pass_seconds, 1) if pass_seconds > 0 else None,
        "handshakes_seen": handshakes,
        "startup_cpu_s": round(cpu_ready, 2),
        "first_pass_cpu_s": round(cpu_pass - cpu_ready, 2),
        "cpu_ms_per_probe": round((cpu_pass - cpu_ready) / n * 1000, 3),
        "rss_after_pass_mb": round(rss_pass / 1024, 1),
        "peak_rss_after_pass_mb": round(hwm_pass / 1024, 1),
        "rss_mb": round(rss / 1024, 1),
        "peak_rss_mb": round(hwm / 1024, 1),
        "scrape_s": [round(x, 3) for x in times],
        "scrape_median_s": round(statistics.median(times), 3),
        "scrape_max_s": round(max(times), 3),
        "scrape_cpu_s": [round(x, 2) for x in cpus],
        "samples": counts["samples"],
        "self_samples": counts["self_samples"],
        "series_per_endpoint": round((counts["samples"] - counts["self_samples"]) / n, 2),
        "metrics_bytes": len(body),
        "metrics_wire_bytes": wire,
        "exporter_error_lines": len(errors),
        "outcomes": dict(sorted(outcomes.items())),
    }


def report(r: dict[str, object]) -> None:
    n = r["endpoints"]
    print(f"""
--- tls-exporter benchmark: {n} endpoints, interval {r["interval_s"]} s, {r["cpus"]} CPUs, {r["date"]} ---
code                  {r["code"]}
targets               {n}: {r["timeouts"]} time out, {r["refused"]} refused; series {r["series"]};
                      leaf certificates: {r["leaves"]};
                      event loop {r["event_loop"]}; /metrics asked with Accept-Encoding {r["encoding"]}
first pass            {n} probes in {r["first_pass_s"]} s (first to last connection seen)
                      = {r["probes_per_s"]} probes/s;
                      start to all probed {r["start_to_all_probed_s"]} s; to every result in /metrics
                      {r["start_to_all_results_s"]} s; connections seen {r["handshakes_seen"]}
exporter CPU          {r["first_pass_cpu_s"]} s for the pass = {r["cpu_ms_per_probe"]} ms per probe
                      (startup before /-/ready: {r["startup_cpu_s"]} s)
RSS                   after the pass {r["rss_after_pass_mb"]} MB (peak {r["peak_rss_after_pass_mb"]} MB);
                      with every result {r["rss_all_results_mb"]} MB; after the scrapes {r["rss_mb"]} MB;
                      peak (VmHWM) {r["peak_rss_mb"]} MB
/metrics time         first after the pass {r["first_scrape_s"]} s; then median {r["scrape_median_s"]} s,
                      max {r["scrape_max_s"]} s over {len(r["scrape_s"])} scrapes
                      {r["scrape_s"]} (exporter CPU per scrape {r["scrape_cpu_s"]})
series per endpoint   {r["series_per_endpoint"]} ({r["samples"]} samples, {r["self_samples"]} self)
/metrics size         {r["metrics_bytes"]} bytes ({r["metrics_wire_bytes"]} on the wire)
exporter error lines  {r["exporter_error_lines"]}
outcomes              {r["outcomes"]}""")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoints", type=int, default=1000, help="loopback TLS endpoints and targets (default 1000)")
    p.add_argument("--interval", type=int, default=300, help="target interval, seconds (default 300 = 5m)")
    p.add_argument("--port", type=int, default=8443, help="port of every endpoint on 127.77.X.Y (default 8443)")
    p.add_argument("--scrapes", type=int, default=5, help="timed /metrics scrapes (default 5)")
    p.add_argument("--deadline", type=float, default=300, help="give up if the first pass takes longer (s)")
    p.add_argument("--settle", type=float, default=1.0, help="wait after the last handshake before reading CPU (s)")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    p.add_argument("--series", choices=("default", "minimal"), default="default", help="the profile's series set")
    p.add_argument("--encoding", choices=("gzip", "identity"), default="gzip", help="Accept-Encoding of the scrapes")
    p.add_argument("--timeouts", type=int, default=0, help="percent of targets that accept and never answer")
    p.add_argument("--refused", type=int, default=0, help="percent of targets where nothing listens")
    p.add_argument(
        "--distinct-leaves", action="store_true", help="a certificate of its own per endpoint (default: one for all)"
    )
    p.add_argument("--silent", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: be the endpoint server
    p.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        args.pki.mkdir(parents=True, exist_ok=True)
        asyncio.run(_serve(args.serve, args.port, args.pki, args.silent, args.distinct_leaves))
        return 0
    served = args.endpoints - args.endpoints * args.refused // 100
    if not 1 <= served <= PER_SUBNET * 256 or args.endpoints > PER_SUBNET * 256 * 40:
        p.error(f"at most {PER_SUBNET * 256} endpoints are served (the rest must be --refused)")
    if args.scrapes < 1:
        p.error("--scrapes must be at least 1")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)  # SIGTERM stops the children and cleans up, as Ctrl-C does
    signal.signal(signal.SIGINT, interrupt)  # even where SIGINT was ignored (a background job)
    try:
        result = run(args)
    except KeyboardInterrupt:
        print("interrupted; children stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    report(result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
