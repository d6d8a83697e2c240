"""The `/` page in a real headless browser (Debian's chromium): served by the real app over the
inventory of real loopback servers; sorted with real clicks, filtered (by the server, as the API
filters) with real typing and choosing; screenshots at 1400, 800 and 420 px go to the test's
tmp dir."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from exporter.certs.findings import Verdict, finding
from exporter.outputs.inventory import Cert, InventoryEntry
from exporter.outputs.query import InventoryQuery
from exporter.web.status import render_status

from .browser import Browser, Page
from .conftest import FIXTURES, Fleet

ROWS = """Array.from(document.querySelectorAll('#inv tbody tr')).map(r => ({
  name: r.cells[1].firstChild ? r.cells[1].firstChild.textContent : "", verdict: r.className, hidden: r.hidden,
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


async def chips(page: Page) -> list[str]:
    """The summary's verdict counts, as shown."""
    found: list[str] = await page.js(
        "Array.from(document.querySelectorAll('#summary a.count')).map(a => a.textContent.trim())"
    )
    return found


async def until(page: Page, condition: str, timeout: float = 20.0) -> None:
    """Wait for a script condition to hold (the page fetches filtered rows from the server)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await page.js(condition):
        if asyncio.get_running_loop().time() > deadline:
            state = await page.js("location.search + ' / ' + document.getElementById('shown').textContent")
            raise AssertionError(f"not within {timeout:g} s: {condition} (page: {state})")
        await asyncio.sleep(0.05)


async def test_the_page_colours_sorts_and_filters(fleet: Fleet, browser: Browser, tmp_path: Path) -> None:
    page = await browser.new_page()
    await page.viewport(1400, 900)
    await page.goto(str(fleet.client.make_url("/")))
    everyone = {*FIXTURES, "legacy", "refused", "never-probed", "bundle.pem"}
    first = await rows(page)
    assert {r["name"] for r in first} == everyone and all(r["shown"] for r in first)
    by_name = {r["name"]: r for r in first}

    # The verdict decides the colour: nothing check calls critical is green.
    verdicts = {n: r["verdict"] for n, r in by_name.items()}
    assert verdicts == {
        "good": "v-ok",
        "legacy": "v-ok",
        "expiring-20d": "v-warning",
        "bundle.pem": "v-warning",  # a file row is named by its file
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

    # Filter by owner: the server selects db-team's rows (the API's filter), the sort stays.
    await page.choose("#owner", "db-team")
    await until(page, "location.search === '?owner=db-team' && document.querySelectorAll('#inv tbody tr').length === 2")
    after = await rows(page)
    assert names(after) == [n for n in order if by_name[n]["owner"] == "db-team"] == ["wrong-host", "expired"]
    assert await page.js("document.getElementById('shown').textContent") == "2 of 2 shown"
    assert await chips(page) == ["2 critical"]
    summary = await page.js("document.getElementById('summary').textContent.trim()")
    assert summary.startswith("2 of 11 entries"), summary
    api = await (await fleet.client.get("/api/v1/inventory?owner=db-team")).json()
    assert sorted(e["name"] for e in api) == sorted(names(after))
    # Owner and verdict together, then a text filter on its own (typed: applied as one types).
    await page.choose("#owner", "pki-team")
    await page.choose("#verdict", "critical")
    await until(page, "location.search === '?owner=pki-team&verdict=critical'")
    await until(page, "document.querySelectorAll('#inv tbody tr').length === 3")
    assert sorted(names(await rows(page))) == ["not-yet-valid", "self-signed", "sha1"]
    await page.choose("#owner", "")
    await page.choose("#verdict", "")
    await page.type("#q", "does not cover")
    await until(page, "document.querySelectorAll('#inv tbody tr').length === 1")
    assert names(await rows(page)) == ["wrong-host"] and await chips(page) == ["1 critical"]
    assert await page.js("location.search") == "?q=does%20not%20cover"
    # A chip narrows the filter to its verdict; the clear link brings every row back.
    await page.type("#q", "")
    await until(page, "document.querySelectorAll('#inv tbody tr').length === 11")
    assert await chips(page) == ["6 critical", "2 warning", "1 pending", "2 ok"]
    await page.click("a.count.b-warning")
    await page.wait_event("Page.loadEventFired")
    assert sorted(names(await rows(page))) == ["bundle.pem", "expiring-20d"]
    assert await page.js("location.search") == "?verdict=warning"
    assert await page.js("document.getElementById('verdict').value") == "warning"
    await page.click("#summary a[href='?']")
    await page.wait_event("Page.loadEventFired")
    assert len(names(await rows(page))) == 11

    # Wide: a table. Narrower (a laptop split screen, a phone): stacked cards. At every width
    # nothing is wider than the screen and every problem cell is on it.
    problems_on_screen = """Array.from(document.querySelectorAll('#inv tbody tr')).every(r => {
      const c = r.cells[11].getBoundingClientRect(); return c.left >= 0 && c.right <= innerWidth + 0.5;})"""
    for width, layout in ((1400, "table-row"), (800, "grid"), (420, "grid")):
        await page.viewport(width, 900)
        assert await page.js("getComputedStyle(document.querySelector('#inv tbody tr')).display") == layout, width
        assert await page.js("document.documentElement.scrollWidth") <= width, width
        assert await page.js(problems_on_screen) is True, width
        await page.screenshot(tmp_path / f"status-{width}.png")
        assert (tmp_path / f"status-{width}.png").stat().st_size > 10_000
    label = await page.js("getComputedStyle(document.querySelector('#inv tbody td'), '::before').content")
    assert label == '"Verdict"'
    # On a card the problems come right after the verdict and the name.
    tops = await page.js(
        "Array.from(document.querySelector('#inv tbody tr').cells).map(c => Math.round(c.getBoundingClientRect().top))"
    )
    assert tops[0] < tops[1] < tops[11] < tops[2]
    await page.screenshot(tmp_path / "status-420-screen.png", full=False)


async def test_each_row_says_what_to_do(fleet: Fleet, browser: Browser) -> None:
    """Per row: every finding with its remedy and a runbook link that opens; endpoints have a
    /probe?debug link that probes them again; a file is named by its file; days are coloured by
    their tier; a job never probed says it is not scheduled (its schedule is stopped here)."""
    page = await browser.new_page()
    await page.viewport(1400, 900)
    await page.goto(str(fleet.client.make_url("/")))
    wrong = await page.js(
        """(() => { const r = Array.from(document.querySelectorAll('#inv tbody tr'))
          .find(r => r.cells[1].textContent === 'wrong-host');
          return {remedy: r.querySelector('.remedy').textContent,
                  runbook: r.querySelector('.remedy a').getAttribute('href'),
                  debug: r.querySelector('.links a').getAttribute('href')}; })()"""
    )
    assert wrong["remedy"].startswith("Reissue the certificate with the name in its subjectAltName")
    assert wrong["runbook"] == "runbooks/TLSCertificateHostnameMismatch"
    port = fleet.ports["wrong-host"]
    assert wrong["debug"] == f"probe?target=127.0.0.1%3A{port}&protocol=tls&server_name=localhost&debug=true"
    runbook = await fleet.client.get("/" + wrong["runbook"])
    assert runbook.status == 200 and "TLSCertificateHostnameMismatch" in await runbook.text()
    debug = await fleet.client.get("/" + wrong["debug"])
    text = await debug.text()
    assert debug.status == 200 and "Verdict:" in text and "does not cover localhost" in text, text[:2000]

    cells = await page.js(
        """Object.fromEntries(Array.from(document.querySelectorAll('#inv tbody tr')).map(r =>
          [r.cells[1].firstChild.textContent, {days: getComputedStyle(r.cells[6]).color, last: r.cells[10].textContent,
           probe: r.querySelector('.links a') !== null, addr: r.cells[2].textContent,
           sub: (r.cells[1].querySelector('.sub') || {}).textContent}]))"""
    )
    assert cells["bundle.pem"]["addr"] == str(fleet.file) and cells["bundle.pem"]["sub"] == "bundle"  # the job
    assert cells["bundle.pem"]["probe"] is False and cells["good"]["probe"] is True
    assert cells["expired"]["days"] == RED and cells["expiring-20d"]["days"] == AMBER
    assert cells["good"]["days"] == "rgb(31, 35, 40)"  # a long way off: the text colour
    assert cells["never-probed"]["last"] == "not scheduled"


async def test_the_page_refreshes_itself_and_shows_a_failed_reload(
    fleet: Fleet, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a reload of the page: a refused configuration shows a banner with its errors, the
    filter stays, and the banner goes once a reload succeeds."""
    monkeypatch.setattr("exporter.web.status.REFRESH_SECONDS", 0.5)
    page = await browser.new_page()
    await page.viewport(1400, 900)
    await page.goto(str(fleet.client.make_url("/?owner=db-team")))
    assert await page.js("document.getElementById('banner').hidden") is True
    config = Path(fleet.exporter.config_file or "")
    good = await asyncio.to_thread(config.read_text)
    await asyncio.to_thread(config.write_text, good + "targets_typo: []\n")
    ok, _ = await fleet.exporter.reload()
    assert not ok
    await until(page, "!document.getElementById('banner').hidden")
    banner = await page.js("document.getElementById('banner').textContent")
    assert "The last configuration reload failed" in banner and "targets_typo" in banner, banner
    assert await page.js("location.search") == "?owner=db-team"
    assert sorted(names(await rows(page))) == ["expired", "wrong-host"]
    await asyncio.to_thread(config.write_text, good + "# fixed\n")
    ok, _ = await fleet.exporter.reload()
    assert ok
    await until(page, "document.getElementById('banner').hidden")
    assert sorted(names(await rows(page))) == ["expired", "wrong-host"]


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
    assert (row["name"], row["owner"]) == (nasty, nasty)
    assert row["problems"].startswith(nasty + " chain_invalid" + "Serve the leaf")  # text, code, remedy
    # The owner filter carries the raw value, and the server's filter matches it.
    assert await page.js("document.querySelectorAll('#owner option')[1].value") == nasty
    page_file.write_text(render_status([entry(nasty), entry("other")], query=InventoryQuery(owner=nasty), now=1e9))
    await page.goto(page_file.as_uri())
    assert names(await rows(page)) == [nasty]
    assert await page.js("document.getElementById('owner').value") == nasty
    assert await page.js("window.pwned === undefined && document.images.length === 0") is True


async def test_past_the_limit_rows_wait_for_show_all(browser: Browser, tmp_path: Path) -> None:
    """Only the first `limit` rows are laid out; sorting works on all rows."""
    entries = [entry(f"e{i}", owner="a" if i % 2 else "b", days=float(10 - i), verdict=Verdict.OK) for i in range(6)]
    page_file = tmp_path / "status.html"
    page_file.write_text(render_status(entries, now=1e9, limit=3))
    page = await browser.new_page()
    await page.goto(page_file.as_uri())
    shown_text = "document.getElementById('shown').textContent"
    more_hidden = "document.getElementById('all').hidden"
    assert names(await rows(page)) == ["e5", "e4", "e3"]  # worst first: fewest days left
    assert await page.js(shown_text) == "3 of 6 shown (filter further or show all)"
    assert await page.js(more_hidden) is False
    await page.click("#inv thead th:nth-child(7) button")
    await page.click("#inv thead th:nth-child(7) button")  # days left, descending
    assert names(await rows(page)) == ["e0", "e1", "e2"]
    await page.click("#all")
    assert names(await rows(page)) == ["e0", "e1", "e2", "e3", "e4", "e5"]
    assert (await page.js(shown_text), await page.js(more_hidden)) == ("6 of 6 shown", True)
