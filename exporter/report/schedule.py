"""Scheduled reports: at each `at:` slot of a `reports:` entry, build the report from Prometheus
and deliver it. A failure (Prometheus, SMTP, disk) is logged and counted; the next slot runs as
usual and so retries. Slots missed while the exporter was down are not caught up.

The app calls ``start()`` once and ``stop()`` at shutdown; the configuration is read at each
slot, so a reload takes effect without restarting the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable

from exporter.config.cron import parse_cron
from exporter.config.discovery import Scan
from exporter.config.model import ExpiryTiers
from exporter.config.notify_model import Report as ReportConfig
from exporter.config.notify_model import ReportFormat, ReportPeriod
from exporter.report import deliver
from exporter.report.build import build_report
from exporter.report.discovery import DiscoveryReport, build_discovery_report, render_discovery, render_text
from exporter.report.query import Prometheus, QueryError
from exporter.report.render import render
from exporter.sources.discovered import RunChanges

log = logging.getLogger("exporter.report")
MAX_SLEEP = 60.0  # wake at least this often, so a reload's new schedule is picked up

Count = Callable[[str, str], None]  # (channel, result)


class ReportScheduler:
    def __init__(
        self,
        reports: Callable[[], tuple[ReportConfig, ...]],
        count: Count,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reports = reports
        self._count = count
        self._clock = clock
        self._next: dict[str, float] = {}  # report name -> its next slot
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            now = self._clock()
            await self.tick(now)
            upcoming = [t for t in self._next.values() if t > now]
            await asyncio.sleep(min([MAX_SLEEP, *(t - now for t in upcoming)]) if upcoming else MAX_SLEEP)

    async def tick(self, now: float) -> list[str]:
        """Run every report whose slot has come; returns their names. The first call only plans."""
        due = []
        configs = {r.name: r for r in self._reports() if r.period is not ReportPeriod.DISCOVERY}
        for name in list(self._next):
            if name not in configs:
                del self._next[name]
        for name, config in configs.items():
            slot = self._next.get(name)
            if slot is not None and slot <= now:
                due.append((config, slot))
            if slot is None or slot <= now:
                self._next[name] = _next_slot(config.at, now)
        for config, slot in due:
            await self.run(config, slot)  # the report covers the period that ends at its slot
        return [c.name for c, _ in due]

    def next_slot(self, name: str) -> float | None:
        return self._next.get(name)

    async def run(self, config: ReportConfig, end: float) -> bool:
        """Build and deliver one report now; False (logged and counted) when it failed."""
        channel = "email" if config.smtp is not None else "directory"
        fields: dict[str, object] = {"report": config.name, "period": config.period.value, "channel": channel}
        try:
            where = await asyncio.to_thread(_build_and_deliver, config, end)
        except (QueryError, deliver.DeliveryError) as exc:
            self._count(channel, "error")
            retry = self._next.get(config.name)
            log.error(
                "report not delivered; retrying at the next slot",
                extra={"fields": {**fields, "error": str(exc), "next_slot": _iso(retry)}},
            )
            return False
        self._count(channel, "sent")
        log.info("report delivered", extra={"fields": {**fields, "to": where}})
        return True

    async def discovery(self, scan: Scan, changes: RunChanges, tiers: ExpiryTiers) -> list[str]:
        """A run of ``scan`` ended: send its discovery e-mail to every `period: discovery` report
        that takes it; the names of the reports delivered."""
        wanted = [r for r in self._reports() if r.period is ReportPeriod.DISCOVERY and r.discovery in (None, scan.name)]
        if not wanted:
            return []
        report = build_discovery_report(scan, changes, tiers)
        sent = []
        for config in wanted:
            channel = "email" if config.smtp is not None else "directory"
            fields: dict[str, object] = {"report": config.name, "discovery": scan.name, "channel": channel}
            try:
                where = await asyncio.to_thread(_deliver_discovery, config, report)
            except deliver.DeliveryError as exc:
                self._count(channel, "error")
                log.error("discovery report not delivered", extra={"fields": {**fields, "error": str(exc)}})
                continue
            self._count(channel, "sent")
            log.info("discovery report delivered", extra={"fields": {**fields, "to": where}})
            sent.append(config.name)
        return sent


def _deliver_discovery(config: ReportConfig, report: DiscoveryReport) -> str:
    text = render_discovery(report, config.format, config.max_rows)
    name = deliver.file_name(config, report.finished)
    if config.smtp is not None:
        plain = render_text(report, config.max_rows)
        # HTML: the plain text is the mail's text part; Markdown and JSON go as an attachment.
        body = plain if config.format is ReportFormat.HTML else text
        deliver.by_smtp(config.smtp, report.subject, text, config.format, name, body)
        return ", ".join(config.smtp.to)
    assert config.directory is not None
    return str(deliver.to_directory(config.directory, name, text))


def _build_and_deliver(config: ReportConfig, end: float) -> str:
    report = build_report(Prometheus(config.prometheus_url), config.period, end=end, dashboard_url=config.dashboard_url)
    text = render(report, config.format, config.max_rows)
    name = deliver.file_name(config, end)
    if config.smtp is not None:
        t = report.totals
        summary = (
            f"{report.title}\n\n{t['certificates']} certificates: {t['ok']} ok, {t['warning']} warning, "
            f"{t['critical']} critical; {t['failed_endpoints']} failed endpoints.\n"
        )
        subject = f"[tls-exporter] {report.title}: {t['critical']} critical, {t['warning']} warning"
        deliver.by_smtp(config.smtp, subject, text, config.format, name, summary)
        return ", ".join(config.smtp.to)
    assert config.directory is not None
    return str(deliver.to_directory(config.directory, name, text))


def _next_slot(at: str, now: float) -> float:
    return parse_cron(at).next_after(dt.datetime.fromtimestamp(now, dt.UTC)).timestamp()


def _iso(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")
