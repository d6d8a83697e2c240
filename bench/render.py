"""Cost of /metrics in-process: the renderer alone, without the event loop or the network.

    python bench/render.py [--endpoints 10000] [--changed 500] [--scrapes 5]

One loopback TLS server (the fixture leaf ``good`` of tests/pki.py) is probed once, assessed as
the exporter does (its chain is untrusted by the system store: a ``tls_chain_issue`` line more
than a trusted endpoint has) and with its version scan; that result is then recorded for
``--endpoints`` targets (distinct job keys, the same certificate), as a pass would leave them.
Printed, in CPU seconds of this process (``time.process_time``; the render is single-threaded),
each with the gzip body it built:

* the first scrape with nothing rendered (what a scrape after a pass costs without warm-ups);
* the warm-ups that render and compress the pass ahead of the scrapes, then a scrape;
* a scrape with nothing new (days left only);
* ``--changed`` new results (as 15 s of a 10,000-endpoint, 5-minute schedule bring), then a
  scrape, with and without a warm-up between;
* a scrape without gzip (the groups are inflated).

Then the bytes the renderer holds: compressed blocks and, for comparison, the text they hold.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from exporter.config.model import Config, Defaults, Profile, Target  # noqa: E402
from exporter.judge.assess import Assessor  # noqa: E402
from exporter.judge.scan import Scanner  # noqa: E402
from exporter.metrics import gzipped  # noqa: E402
from exporter.metrics.render import StoreRenderer  # noqa: E402
from exporter.pipeline import Pipeline, scan_key  # noqa: E402
from exporter.results import Result  # noqa: E402
from exporter.schedule.store import Store  # noqa: E402


def cpu(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def scrape(renderer: StoreRenderer, *, gzip: bool = True) -> int:
    families = renderer.render_families()
    if gzip:
        return sum(len(c) for c in gzipped.member(b for f in families for b in f.blocks()))
    return sum(len(gzipped.chunk_data(c)) for f in families for c in f.parts())


async def one_result(port: int, ca: str) -> tuple[list[Result], Target, Scanner]:
    target = Target(
        target=f"127.0.0.1:{port}", host="127.0.0.1", port=port, protocol="tls", server_name="localhost",
        name="probe", owner="",
    )  # fmt: skip
    scanner = Scanner()
    config = Config(defaults=Defaults(), profiles={"default": Profile()}, targets=(target,))
    assessor = Assessor()
    results = await Pipeline(assessor=assessor, scanner=scanner).probe(target, config)
    await assessor.close()
    for _ in range(200):  # the scan the probe asked for runs in the background
        if scanner.latest(scan_key(target, results[0].location)) is not None:
            break
        await asyncio.sleep(0.05)
    return results, target, scanner


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoints", type=int, default=10_000)
    p.add_argument("--changed", type=int, default=500)
    p.add_argument("--scrapes", type=int, default=5)
    args = p.parse_args()
    from pki import make_pki
    from servers import LoopbackServers

    with tempfile.TemporaryDirectory(prefix="tls-render-") as tmp:
        pki = make_pki(Path(tmp))
        servers = LoopbackServers()
        try:
            port = servers.tls(pki["good"].server_context())
            results, probed, scanner = asyncio.run(one_result(port, str(pki.root.cert_path)))
        finally:
            servers.stop()
    scan = scanner.latest(scan_key(probed, results[0].location))
    targets = [
        dataclasses.replace(probed, target=f"t{i}.example.test:443", name=f"t{i}.example.test:443")
        for i in range(args.endpoints)
    ]
    config = Config(defaults=Defaults(), profiles={"default": Profile()}, targets=tuple(targets))
    store = Store()
    store.apply_config(targets)
    for t in targets:
        store.record(t, results)
    renderer = StoreRenderer(store, lambda: config, scanner=scanner)
    gc.collect()
    print(f"{args.endpoints} endpoints, scan {'merged' if scan else 'missing'}; CPU seconds of this process")

    took, size = cpu(lambda: scrape(renderer))
    print(f"first scrape, nothing rendered:     {took:.3f} s ({size / 1e6:.1f} MB gzip)")

    renderer = StoreRenderer(store, lambda: config, scanner=scanner)
    warm1, _ = cpu(renderer.warm)
    warm2, _ = cpu(renderer.warm)
    took, size = cpu(lambda: scrape(renderer))
    print(f"two warm-ups {warm1:.3f} + {warm2:.3f} s, then a scrape: {took:.3f} s ({size / 1e6:.1f} MB gzip)")

    same = [cpu(lambda: scrape(renderer))[0] for _ in range(args.scrapes)]
    print(f"scrape, nothing new:                median {statistics.median(same):.3f} s (max {max(same):.3f})")

    def change(step: int) -> None:
        for i in range(args.changed):
            t = targets[(step * args.changed + i) % len(targets)]
            store.record(t, [dataclasses.replace(r, duration=r.duration + step * 1e-6) for r in results])

    cold, warmed = [], []
    for step in range(1, args.scrapes + 1):
        change(2 * step)
        cold.append(cpu(lambda: scrape(renderer))[0])
        change(2 * step + 1)
        w, _ = cpu(renderer.warm)
        warmed.append((w, cpu(lambda: scrape(renderer))[0]))
    print(f"{args.changed} new results, then a scrape: median {statistics.median(cold):.3f} s")
    print(
        f"{args.changed} new results, warm-up, scrape: median {statistics.median(w for w, _ in warmed):.3f} s"
        f" + {statistics.median(s for _, s in warmed):.3f} s"
    )
    took, size = cpu(lambda: scrape(renderer, gzip=False))
    print(f"scrape without gzip:                {took:.3f} s ({size / 1e6:.1f} MB)")
    held = sum(len(p.block.deflated) for g in renderer._groups for p in g.pieces.values())
    print(f"held: {held / 1e6:.1f} MB of compressed lines for {size / 1e6:.1f} MB of text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
