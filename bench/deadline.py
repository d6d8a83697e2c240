"""How close to its deadline a probe answers, against servers that never finish.

    python bench/deadline.py [--repeat N]

Starts loopback servers in this process (one that accepts and never speaks, one that drip-feeds
a line that never ends) and a real exporter in a subprocess, then asks `/probe` with
`X-Prometheus-Scrape-Timeout-Seconds` of 1, 2 and 5 s (probe budget: header minus 0.5 s) and runs
`tls-exporter check --timeout` the same way. Prints, per case, the budget, the median and worst
elapsed time and the overrun (elapsed minus budget). A budget is a contract with Prometheus: the
answer must come before the scrape times out. Stops everything it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Servers:
    """A silent and a drip-feeding server on an event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.base_events.Server] = []

    def start(self, handler) -> int:  # type: ignore[no-untyped-def]
        async def go() -> int:
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            self.servers.append(server)
            return int(server.sockets[0].getsockname()[1])

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)

    def silent(self) -> int:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                await reader.read()
            writer.close()

        return self.start(handler)

    def drip(self) -> int:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while True:
                    writer.write(b"2")
                    await writer.drain()
                    await asyncio.sleep(0.2)
            writer.close()

        return self.start(handler)

    def stop(self) -> None:
        async def go() -> None:
            for s in self.servers:
                s.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def probe(base: str, target: str, protocol: str, header: float) -> float:
    url = f"{base}/probe?target={target}&protocol={protocol}"
    req = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": str(header)})
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
    return time.monotonic() - started


def report(name: str, budget: float, times: list[float]) -> None:
    med, worst = statistics.median(times), max(times)
    print(
        f"{name:<44} budget {budget:4.1f} s  median {med:6.3f} s  worst {worst:6.3f} s  overrun {worst - budget:+.3f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    servers = Servers()
    workdir = Path(tempfile.mkdtemp(prefix="bench-deadline-"))
    config = workdir / "config.yml"
    config.write_text("defaults: {timeout: 30s}\nprobe: {allow: ['127.0.0.0/8']}\n")
    port = free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "exporter", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{base}/-/ready", timeout=1).read()
                break
            time.sleep(0.1)
        silent, drip = servers.silent(), servers.drip()
        cases = [
            ("/probe https, server silent after accept", f"127.0.0.1:{silent}", "https"),
            ("/probe smtp, greeting drip-fed forever", f"127.0.0.1:{drip}", "smtp"),
        ]
        for header in (1.0, 2.0, 5.0):
            for name, target, protocol in cases:
                times = [probe(base, target, protocol, header) for _ in range(args.repeat)]
                report(f"{name} (header {header:g} s)", header - 0.5, times)
        for budget in (1.5, 3.0):
            times = []
            for _ in range(max(1, args.repeat // 2)):
                started = time.monotonic()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "exporter",
                        "check",
                        f"127.0.0.1:{silent}",
                        "--protocol",
                        "tls",
                        "--timeout",
                        f"{budget}s",
                    ],
                    cwd=ROOT,
                    capture_output=True,
                    timeout=60,
                )
                times.append(time.monotonic() - started)
            report(f"check --timeout {budget:g}s, server silent (incl. start-up)", budget, times)
    finally:
        exporter.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            exporter.wait(10)
        servers.stop()


if __name__ == "__main__":
    main()
