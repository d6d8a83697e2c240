"""Debian's headless Chromium, driven over the DevTools protocol: load a file, measure the layout
with a script of the test (the report itself has none), take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from notify.trapd import require
from servers import closed_port

# Returns what the test checks: page width against the viewport, every chart's size, and any
# element that sticks out to the right of the page.
LAYOUT_PROBE = """
(() => {
  const vw = document.documentElement.clientWidth;
  const charts = [...document.querySelectorAll('svg.chart')].map(s => {
    const r = s.getBoundingClientRect();
    return {label: s.getAttribute('aria-label'), width: r.width, height: r.height,
            marks: s.querySelectorAll('rect.bar, polyline.line').length};
  });
  const overflowing = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > vw + 1 && !e.closest('.scroll'))
    .map(e => e.tagName + '.' + e.className);
  const clipped = [...document.querySelectorAll('.scroll')].filter(e => e.scrollWidth > e.clientWidth + 1).length;
  return JSON.stringify({viewport: vw, scrollWidth: document.documentElement.scrollWidth, charts,
                         overflowing, clipped, external: document.querySelectorAll('[src],link[href]').length,
                         title: document.title});
})()
"""


@contextmanager
def chromium(workdir: Path) -> Iterator[int]:
    binary = require("chromium", "chromium")
    port = closed_port()
    argv = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
        f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={workdir / 'profile'}", "--window-size=1280,900", "about:blank",
    ]  # fmt: skip
    log = (workdir / "chromium.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chromium did not start: {(workdir / 'chromium.log').read_text(errors='replace')}")
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


async def inspect(port: int, page: Path, screenshot: Path, *, width: int = 1280) -> dict[str, Any]:
    """Load ``page`` at ``width`` CSS pixels, return the layout probe's answer, save a full-page PNG."""
    ids = itertools.count(1)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        return await _drive(session, ws_url, ids, page, screenshot, width)


async def _drive(
    session: aiohttp.ClientSession, ws_url: str, ids: Iterator[int], page: Path, screenshot: Path, width: int
) -> dict[str, Any]:
    async with session.ws_connect(ws_url, max_msg_size=0) as ws:

        async def call(method: str, **params: Any) -> dict[str, Any]:
            msg_id = next(ids)
            await ws.send_json({"id": msg_id, "method": method, "params": params})
            while True:
                msg = await ws.receive_json(timeout=30)
                if msg.get("id") == msg_id:
                    if "error" in msg:
                        raise AssertionError(f"{method}: {msg['error']}")
                    return dict(msg["result"])

        await call("Page.enable")
        await call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", url=page.as_uri())
        while True:  # the load event of this navigation
            msg = await ws.receive_json(timeout=30)
            if msg.get("method") == "Page.loadEventFired":
                break
        probe = await call("Runtime.evaluate", expression=LAYOUT_PROBE, returnByValue=True)
        result: dict[str, Any] = json.loads(probe["result"]["value"])
        shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(screenshot.write_bytes, base64.b64decode(shot["data"]))
        return result
