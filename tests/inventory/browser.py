"""A real headless browser for page tests: Debian's `chromium`, driven over the DevTools protocol
(a websocket, through aiohttp). Nothing is downloaded: the browser is the installed package.

``Browser.start(tmp)`` launches chromium with its own profile directory under ``tmp`` and a
DevTools port it picks itself (read back from ``DevToolsActivePort``); ``stop()`` ends it and
every process it started (its own process group).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

PACKAGE = "chromium"


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(f"chromium not found: install the Debian package {PACKAGE} (scripts/test.sh does)")
    return path


class CDPError(Exception):
    pass


class Page:
    """One tab: send commands, wait for events, evaluate script, click and type like a user."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next = 0
        self._events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), 30)
            if msg.get("id") == ident:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if "method" in msg:
                self._events.append(msg)

    async def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        async def _wait() -> dict[str, Any]:
            while True:
                for i, ev in enumerate(self._events):
                    if ev["method"] == method:
                        return self._events.pop(i)
                msg = await self.ws.receive_json()
                if "method" in msg:
                    self._events.append(msg)

        return await asyncio.wait_for(_wait(), timeout)

    async def goto(self, url: str) -> None:
        self._events.clear()
        await self.send("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired")

    async def js(self, expression: str) -> Any:
        r = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CDPError(f"{expression[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element (pressed, then released)."""
        box = await self.js(
            f"(() => {{const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];})()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def type(self, selector: str, text: str) -> None:
        """Focus the field, clear it and type (input events, as from a keyboard)."""
        await self.js(f"(() => {{const e = document.querySelector({json.dumps(selector)}); e.focus(); e.select();}})()")
        await self.send("Input.insertText", text=text)

    async def choose(self, selector: str, value: str) -> None:
        """Pick an option of a <select> (a native popup cannot be clicked headless): value + change."""
        await self.js(
            f"(() => {{const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)};"
            " e.dispatchEvent(new Event('change', {bubbles: true}));})()"
        )

    async def viewport(self, width: int, height: int) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    async def screenshot(self, path: Path, *, full: bool = True) -> None:
        """The whole page (at most 8000 px high) or what the screen shows, at the current width."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize" if full else "cssLayoutViewport"]
        height = size["height"] if full else size["clientHeight"]
        width = size["width"] if full else size["clientWidth"]
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, 8000), "scale": 1}
        shot = await self.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=full)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process, session: aiohttp.ClientSession) -> None:
        self.proc, self.session = proc, session
        self.pages: list[aiohttp.ClientWebSocketResponse] = []

    @classmethod
    async def start(cls, tmp: Path) -> Browser:
        profile = tmp / "chromium-profile"
        profile.mkdir()
        proc = await asyncio.create_subprocess_exec(
            chromium_path(),
            "--headless",
            "--no-sandbox",  # the tests may run as root (CI does)
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends its helpers too
        )
        session = aiohttp.ClientSession()
        browser = cls(proc, session)
        try:
            port_file = profile / "DevToolsActivePort"
            for _ in range(300):
                if port_file.exists() and port_file.read_text().count("\n") >= 1:
                    break
                if proc.returncode is not None:
                    raise RuntimeError(f"chromium exited with status {proc.returncode}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("chromium did not open its DevTools port within 30 s")
            browser.port = int(port_file.read_text().splitlines()[0])
        except BaseException:
            await browser.stop()
            raise
        return browser

    port: int = 0

    async def new_page(self) -> Page:
        async with self.session.get(f"http://127.0.0.1:{self.port}/json/list") as resp:
            targets = await resp.json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        ws = await self.session.ws_connect(url, max_msg_size=0)
        self.pages.append(ws)
        page = Page(ws)
        await page.send("Page.enable")
        return page

    async def stop(self) -> None:
        for ws in self.pages:
            await ws.close()
        await self.session.close()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
        with contextlib.suppress(ProcessLookupError):  # helpers that outlived the browser
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        for _ in range(50):  # until the group is gone
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.1)
