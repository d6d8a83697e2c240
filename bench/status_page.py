"""Bench the inventory and the `/` page at N entries: build, JSON, HTML, and the page in chromium.

    python bench/status_page.py [-n 10000] [--no-browser]

Probes four loopback TLS servers once (fixture leaves good, expiring-20d, expired, wrong-host of
tests/pki.py, through the real pipeline with chain assessment), then fills a store with N jobs
that cycle over those four results (50 owners), and times in-process: `build_inventory`, the
JSON body and `render_status`. With the browser (Debian's chromium, headless), it loads the page
from a file and times, inside the page (performance.now), a sort by days left, the reverse
sort and "Show all" (each with the layout it forces); the owner filter is the server's
(`render_status` with a query), timed in-process. Prints one line per
figure; stops the servers and the browser.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pki import make_pki  # noqa: E402
from servers import LoopbackServers  # noqa: E402

from exporter.config.model import Config, Profile, RevocationMode, Target  # noqa: E402
from exporter.judge.assess import Assessor  # noqa: E402
from exporter.outputs.inventory import build_inventory  # noqa: E402
from exporter.outputs.query import InventoryQuery  # noqa: E402
from exporter.pipeline import Pipeline  # noqa: E402
from exporter.results import Result  # noqa: E402
from exporter.schedule.store import Store  # noqa: E402
from exporter.web.status import render_status  # noqa: E402

LEAVES = ("good", "expiring-20d", "expired", "wrong-host")


def target(i: int, port: int) -> Target:
    return Target(
        target=f"host{i:05d}.bench.test:{port}",
        host="127.0.0.1",
        port=port,
        protocol="tls",
        server_name="localhost",
        name=f"host{i:05d}",
        owner=f"team-{i % 50:02d}",
    )


async def probe_once(tmp: Path) -> tuple[list[Result], Config]:
    pki = make_pki(tmp / "pki")
    servers = LoopbackServers()
    try:
        ports = [servers.tls(pki[name].server_context()) for name in LEAVES]
        profile = Profile(trust=str(pki.root.cert_path), revocation=RevocationMode.NONE)
        config = Config(profiles={"default": profile})
        pipeline = Pipeline(assessor=Assessor())
        results = []
        for port in ports:
            job = target(0, port)
            results += await pipeline.probe(job, config)
        await pipeline.close()
        return results, config
    finally:
        servers.stop()


def timed(label: str, fn, repeat: int = 3):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<32} {best * 1000:8.1f} ms (best of {repeat})")
    return out


async def in_browser(page_file: Path, tmp: Path) -> None:
    from inventory.browser import Browser

    browser = await Browser.start(tmp)
    try:
        page = await browser.new_page()
        await page.viewport(1400, 900)
        t0 = time.perf_counter()
        await page.goto(page_file.as_uri())
        await page.js("document.body.offsetHeight")
        print(f"{'page load (navigate to load)':<32} {(time.perf_counter() - t0) * 1000:8.1f} ms")
        th = "document.querySelector('#inv thead th:nth-child(7) button')"
        for label in ("sort by days left", "sort by days left, reversed"):
            ms = await page.js(
                f"(() => {{const t = performance.now(); {th}.click(); document.body.offsetHeight;"
                " return performance.now() - t})()"
            )
            print(f"{label:<32} {ms:8.1f} ms (in the page)")
        ms = await page.js(
            "(() => {const t = performance.now(); document.getElementById('all').click();"
            " document.body.offsetHeight; return performance.now() - t})()"
        )
        print(f"{'show all 10,000 (layout)':<32} {ms:8.1f} ms (in the page, with layout)")
        print(f"{'shown after show all':<32} {await page.js('document.getElementById(`shown`).textContent')}")
    finally:
        await browser.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results, config = asyncio.run(probe_once(tmp))
        assert all(r.success for r in results), [r.outcome for r in results]
        store = Store()
        jobs = [target(i, 10000 + i) for i in range(args.n)]
        store.apply_config(jobs)
        for i, job in enumerate(jobs):
            r = results[i % len(results)]
            assert r.report is not None
            report = dataclasses.replace(r.report, owners=(job.owner,) * len(r.report.owners))
            probed = Result(location=f"127.0.0.1:{job.port}", outcome=r.outcome, report=report, started_at=r.started_at)
            store.record(job, [probed])
        snapshot = store.snapshot()
        print(f"entries: {args.n}")
        entries = timed("build_inventory", lambda: build_inventory(snapshot, config))
        body = timed("JSON body", lambda: json.dumps([e.as_json() for e in entries], separators=(",", ":")))
        page = timed("render_status (HTML)", lambda: render_status(entries))
        timed("render_status, owner=team-07", lambda: render_status(entries, query=InventoryQuery(owner="team-07")))
        print(f"{'JSON / HTML size':<32} {len(body):,} B / {len(page):,} B")
        if not args.no_browser:
            page_file = tmp / "status.html"
            page_file.write_text(page)
            asyncio.run(in_browser(page_file, tmp))


if __name__ == "__main__":
    main()
