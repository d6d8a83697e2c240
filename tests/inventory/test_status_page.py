"""The `/` page in a real headless browser (Debian's chromium): served by the real app over the
inventory of real loopback servers; sorted and filtered with real clicks and typing; screenshots
at 1400 px and 390 px go to the test's tmp dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from exporter.certs.findings import Verdict, finding
from exporter.outputs.inventory import Cert, InventoryEntry
from exporter.web.status import render_status

from .browser import Browser, Page
from .conftest import FIXTURES, Fleet

ROWS = """Array.from(document.querySelectorAll('#inv tbody tr')).map(r => ({
  name: r.cells[1].textContent, verdict: r.className, hidden: r.hidden,
  shown: getComputedStyle(r).display !== 'none', days: r.cells[6].textContent, owner: r.cells[4].textContent,
  badge: getComputedStyle(r.querySelector('.badge')).color, problems: r.cells[11].textContent}))"""
RED, AMBER, GREEN = "rgb(207, 34, 46)", "rgb(154, 103, 0)", "rgb(26, 127, 55)"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    b = await Browser.start(tmp_path)
    try:
        yield b
    finally:
        await b.stop()


async def rows(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.js(ROWS)
    return found


def names(found: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in found if r["shown"]]


async def test_the_page_colours_sorts_and_filters(fleet: Fleet, browser: Browser, tmp_path: Path) -> None:
    page = await browser.new_page()
    await page.viewport(1400, 900)
    await page.goto(str(fleet.client.make_url("/")))
    everyone = {*FIXTURES, "legacy", "refused", "never-probed", "bundle"}
    first = await rows(page)
    assert {r["name"] for r in first} == everyone and all(r["shown"] for r in first)
    by_name = {r["name"]: r for r in first}

    # The verdict decides the colour: nothing check calls critical is green.
    verdicts = {n: r["verdict"] for n, r in by_name.items()}
    assert verdicts == {
        "good": "v-ok",
        "legacy": "v-ok",
        "expiring-20d": "v-warning",
        "bundle": "v-warning",
        "expired": "v-critical",
        "wrong-host": "v-critical",
        "self-signed": "v-critical",
        "sha1": "v-critical",
        "not-yet-valid": "v-critical",
        "refused": "v-critical",
        "never-probed": "v-pending",
    }
    for name, row in by_name.items():
        want = {"v-ok": GREEN, "v-warning": AMBER, "v-critical": RED}.get(row["verdict"])
        if want is not None:
            assert row["badge"] == want, name
    assert "certificate does not cover localhost" in by_name["wrong-host"]["problems"]
    assert by_name["expired"]["days"] == "-10.0" and by_name["expiring-20d"]["days"] == "20.0"
    assert by_name["never-probed"]["days"] == "" and by_name["refused"]["days"] == ""
    # Worst first before any click.
    assert [r["verdict"] for r in first][:6] == ["v-critical"] * 6

    # Sort by days left: ascending, rows without a certificate last; again: descending, still last.
    await page.click("#inv thead th:nth-child(7) button")
    order = names(await rows(page))
    assert order[0] == "expired"
    days = [float(d) for d in [by_name[n]["days"] for n in order] if d]
    assert days == sorted(days) and len(days) == 9
    assert set(order[-2:]) == {"refused", "never-probed"}
    assert await page.js("document.querySelector('#inv thead th:nth-child(7)').getAttribute('aria-sort')") == (
        "ascending"
    )
    await page.click("#inv thead th:nth-child(7) button")
    order = names(await rows(page))
    days = [float(d) for d in [by_name[n]["days"] for n in order] if d]
    assert days == sorted(days, reverse=True) and order[8] == "expired"
    assert set(order[-2:]) == {"refused", "never-probed"}

    # Filter by owner: only db-team's rows stay shown, in the current order.
    await page.choose("#owner", "=db-team")
    after = await rows(page)
    assert names(after) == [n for n in order if by_name[n]["owner"] == "db-team"] == ["wrong-host", "expired"]
    assert {r["name"] for r in after if r["hidden"]} == everyone - {"wrong-host", "expired"}
    assert await page.js("document.getElementById('shown').textContent") == "2 of 11 shown"
    # Owner and verdict together, then a text filter on its own.
    await page.choose("#owner", "=pki-team")
    await page.choose("#verdict", "critical")
    assert sorted(names(await rows(page))) == ["not-yet-valid", "self-signed", "sha1"]
    await page.choose("#owner", "")
    await page.choose("#verdict", "")
    await page.type("#q", "does not cover")
    assert names(await rows(page)) == ["wrong-host"]
    await page.type("#q", "")
    assert len(names(await rows(page))) == 11

    # Wide: a table. Narrow (a phone): stacked cards, nothing wider than the screen.
    assert await page.js("getComputedStyle(document.querySelector('#inv tbody tr')).display") == "table-row"
    assert await page.js("document.documentElement.scrollWidth") <= 1400
    await page.screenshot(tmp_path / "status-1400.png")
    await page.viewport(390, 844)
    assert await page.js("getComputedStyle(document.querySelector('#inv tbody tr')).display") == "flex"
    assert await page.js("document.documentElement.scrollWidth") <= 390
    label = await page.js("getComputedStyle(document.querySelector('#inv tbody td'), '::before').content")
    assert label == '"Verdict"'
    # On a card the problems come right after the verdict and the name.
    tops = await page.js(
        "Array.from(document.querySelector('#inv tbody tr').cells).map(c => Math.round(c.getBoundingClientRect().top))"
    )
    assert tops[0] < tops[1] < tops[11] < tops[2]
    await page.screenshot(tmp_path / "status-390.png", full=False)
    await page.screenshot(tmp_path / "status-390-full.png")
    assert (tmp_path / "status-1400.png").stat().st_size > 10_000
    assert (tmp_path / "status-390.png").stat().st_size > 10_000


def entry(
    text: str, *, owner: str | None = None, days: float = 10.0, verdict: Verdict = Verdict.CRITICAL
) -> InventoryEntry:
    """An entry whose every string is ``text`` (unless told otherwise)."""
    cert = Cert(
        position=0,
        subject=text,
        issuer=text,
        serial="01",
        fingerprint_sha256="00",
        not_before=0.0,
        not_after=1e9 + days * 86400,
        days_left=days,
        tier="critical",
        owner=text if owner is None else owner,
    )
    return InventoryEntry(
        kind="address",
        served=True,
        target=text,
        location=text,
        protocol="tls",
        server_name=text,
        name=text,
        owner=cert.owner,
        profile="default",
        labels=(),
        verdict=verdict,
        problems=(text,),
        findings=(finding("chain_invalid", text),),
        outcome="certificate_found",
        detail=text,
        last_probe=1e9,
        last_probe_age=5.0,
        certificates=(cert,),
        headline=cert,
        grade=text,
    )


async def test_everything_is_escaped(browser: Browser, tmp_path: Path) -> None:
    """Names, owners, problems and details that look like markup stay text in a real browser."""
    nasty = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">\'&amp;'
    page_file = tmp_path / "status.html"
    page_file.write_text(render_status([entry(nasty)], now=1e9))
    page = await browser.new_page()
    await page.goto(page_file.as_uri())
    assert await page.js("window.pwned === undefined && document.images.length === 0") is True
    row = (await rows(page))[0]
    assert (row["name"], row["owner"], row["problems"]) == (nasty, nasty, nasty + " chain_invalid")  # text, code
    # The owner filter still matches the raw value.
    assert await page.js("document.querySelectorAll('#owner option')[1].value") == "=" + nasty
    await page.choose("#owner", "=" + nasty)
    assert names(await rows(page)) == [nasty]


async def test_past_the_limit_rows_wait_for_show_all(browser: Browser, tmp_path: Path) -> None:
    """Only the first `limit` matching rows are laid out; sorting and filtering work on all rows."""
    entries = [entry(f"e{i}", owner="a" if i % 2 else "b", days=float(10 - i), verdict=Verdict.OK) for i in range(6)]
    page_file = tmp_path / "status.html"
    page_file.write_text(render_status(entries, now=1e9, limit=3))
    page = await browser.new_page()
    await page.goto(page_file.as_uri())
    shown_text = "document.getElementById('shown').textContent"
    more_hidden = "document.getElementById('all').hidden"
    assert names(await rows(page)) == ["e5", "e4", "e3"]  # worst first: fewest days left
    assert await page.js(shown_text) == "3 of 6 shown (6 match: filter further or show all)"
    assert await page.js(more_hidden) is False
    await page.click("#inv thead th:nth-child(7) button")
    await page.click("#inv thead th:nth-child(7) button")  # days left, descending
    assert names(await rows(page)) == ["e0", "e1", "e2"]
    await page.choose("#owner", "=a")
    assert names(await rows(page)) == ["e1", "e3", "e5"]
    assert (await page.js(shown_text), await page.js(more_hidden)) == ("3 of 6 shown", True)
    await page.choose("#owner", "")
    await page.click("#all")
    assert names(await rows(page)) == ["e0", "e1", "e2", "e3", "e4", "e5"]
    assert (await page.js(shown_text), await page.js(more_hidden)) == ("6 of 6 shown", True)
