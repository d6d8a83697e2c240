"""Due version scans wait in a queue for a few workers (not one suspended task each)."""

from __future__ import annotations

import asyncio

import pytest

from exporter.judge.scan import Scanner, ScanResult


async def test_many_due_scans_run_a_few_at_a_time_and_all_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = Scanner(concurrency=2)
    running = peak = 0

    async def fake_scan(key: tuple[str, str, str], opener: object) -> ScanResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return ScanResult(at=1.0, hellos=())

    monkeypatch.setattr(scanner, "_scan", fake_scan)
    keys = [("tls", f"127.0.0.1:{port}", "localhost") for port in range(1000, 1020)]

    async def opener() -> None:
        raise AssertionError("not called by the fake scan")

    assert all(scanner.request(key, opener, 3600) for key in keys)  # type: ignore[arg-type]
    assert not scanner.request(keys[0], opener, 3600)  # type: ignore[arg-type]  # already queued
    assert len(scanner._workers) == 2
    for _ in range(200):
        if all(scanner.latest(k) is not None for k in keys):
            break
        await asyncio.sleep(0.01)
    assert [scanner.latest(k) is not None for k in keys] == [True] * 20
    assert peak == 2
    assert not scanner.due(keys[0], 3600, now=2.0)  # scanned at 1.0, due again at 3601
    assert scanner.due(keys[0], 3600, now=3601.0)
    await asyncio.sleep(0)  # the workers' done-callbacks
    assert scanner._workers == set()
    assert scanner.request(keys[0], opener, 0)  # type: ignore[arg-type]  # a new worker starts
    await scanner.close()


async def test_no_scan_starts_while_paused_and_all_run_after(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = Scanner(concurrency=2)
    started: list[str] = []
    finish = asyncio.Event()

    async def fake_scan(key: tuple[str, str, str], opener: object) -> ScanResult:
        started.append(key[1])
        await finish.wait()
        return ScanResult(at=1.0, hellos=())

    monkeypatch.setattr(scanner, "_scan", fake_scan)
    keys = [("tls", f"127.0.0.1:{port}", "localhost") for port in range(1000, 1006)]

    async def opener() -> None:
        raise AssertionError("not called by the fake scan")

    scanner.request(keys[0], opener, 3600)  # type: ignore[arg-type]
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == ["127.0.0.1:1000"]  # under way before the pause: it goes on
    with scanner.paused():
        with scanner.paused():  # nested scrapes
            for key in keys[1:]:
                scanner.request(key, opener, 3600)  # type: ignore[arg-type]
            finish.set()
            for _ in range(20):
                await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert started == ["127.0.0.1:1000"]  # the first finished; none of the others started
        assert scanner.latest(keys[0]) is not None
    for _ in range(50):
        await asyncio.sleep(0)
    assert sorted(started) == sorted(k[1] for k in keys)
    assert all(scanner.latest(k) is not None for k in keys)
    await scanner.close()


async def test_held_scans_queue_and_start_when_the_hold_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = Scanner(concurrency=2)
    started: list[str] = []

    async def fake_scan(key: tuple[str, str, str], opener: object) -> ScanResult:
        started.append(key[1])
        return ScanResult(at=1.0, hellos=())

    monkeypatch.setattr(scanner, "_scan", fake_scan)
    keys = [("tls", f"127.0.0.1:{port}", "localhost") for port in range(1000, 1004)]

    async def opener() -> None:
        raise AssertionError("not called by the fake scan")

    scanner.hold(0.2)
    for key in keys:
        assert scanner.request(key, opener, 3600)  # type: ignore[arg-type]  # queued, not refused
    for _ in range(20):
        await asyncio.sleep(0)
    assert started == []
    for _ in range(100):
        if len(started) == len(keys):
            break
        await asyncio.sleep(0.05)
    assert sorted(started) == sorted(k[1] for k in keys)
    await scanner.close()
