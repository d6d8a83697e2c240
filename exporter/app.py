"""The running exporter: configuration, reloads, the scheduler and the HTTP server, joined."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from exporter import __version__
from exporter.config import load_config
from exporter.config.discovery import Scan
from exporter.config.durations import format_duration
from exporter.config.load import read_config_file
from exporter.config.model import Config, Job, Target, Threshold
from exporter.judge.assess import Assessor
from exporter.judge.scan import Scanner
from exporter.metrics import gzipped
from exporter.metrics.discovery import DiscoveryCollector
from exporter.metrics.internal import SelfMetrics
from exporter.metrics.render import StoreRenderer, probe_text
from exporter.notify.lookup import days_left_from_store
from exporter.notify.webhook import SnmpWebhook
from exporter.outputs.check import verdict_section
from exporter.outputs.discovery import discovery_json
from exporter.outputs.eventlog import log_events
from exporter.outputs.inventory import InventoryEntry, build_inventory
from exporter.outputs.query import InventoryQuery
from exporter.outputs.verdict import verdict
from exporter.pipeline import Pipeline
from exporter.report.schedule import ReportScheduler
from exporter.results import Result, Step
from exporter.schedule.discovery import DiscoveryScheduler
from exporter.schedule.scheduler import Scheduler
from exporter.schedule.shard import Shard
from exporter.schedule.store import Store
from exporter.sources import make_probers
from exporter.sources.discovered import Discovery, RunChanges
from exporter.sources.tls import TLSSource
from exporter.support import memory
from exporter.support.crash import CrashDumps
from exporter.support.errors import ConfigError
from exporter.support.fileio import DaemonThreadPool, in_file_thread
from exporter.support.limits import budget, raise_nofile
from exporter.support.netpolicy import FetchPolicy
from exporter.web.handlers import make_app
from exporter.web.server import GuardedRunner
from exporter.web.service import ReloadFailure
from exporter.web.status import render_status
from exporter.web.webconfig import WebConfig

log = logging.getLogger("exporter")
DEFAULT_CONFIG = "config.yml"
DEFAULT_THREADS = 8  # the loop's default executor: DNS lookups, rendering, status page
STOP_TIMEOUT = 1.5  # seconds from SIGTERM to exit, at most
WARM_EVERY = 1.0  # seconds between renders of new results ahead of the scrapes (a scrape renders 1 s at most)
TRIM_EVERY = 10  # warm-ups between two malloc_trim calls (10 s; about 5 ms each)


def parse_listen(address: str) -> tuple[str, int]:
    """`:9632`, `127.0.0.1:9632`, `[::1]:9632` -> (host, port); an empty host means every address."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--web.listen-address: invalid address {address!r} (expected host:port or :port)")
    return host.strip("[]"), int(port)


class Exporter:
    """The running exporter; the web layer sees it through ``exporter.web.service.Service``."""

    def __init__(
        self,
        config_file: str | None,
        *,
        listen: str = ":9632",
        web_config: WebConfig | None = None,
        telemetry_path: str = "/metrics",
        shard: Shard | None = None,
        enable_lifecycle: bool = False,
        crash: CrashDumps | None = None,
    ) -> None:
        self.config_file = config_file
        self.enable_lifecycle = enable_lifecycle  # POST /-/reload; SIGHUP reloads regardless
        self.crash = crash  # --log.crash-dir: SIGABRT writes the stack of every thread there
        self.listen = listen
        self.web_config, self.telemetry_path, self.shard = web_config, telemetry_path, shard or Shard()
        self.config = Config()
        self.ready = False
        self.registry = CollectorRegistry(auto_describe=False)
        self.metrics = SelfMetrics(self.registry)
        self.metrics.set_shard(self.shard.index, self.shard.count)
        self.store = Store()
        self.store.subscribe(log_events)  # the event log is an output of the store's changes
        self.scanner = Scanner()
        self.fds = budget(raise_nofile())  # descriptors: probes and the HTTP server each get a share
        # What the discovery scans found: kept across reloads, its endpoints jobs of the discovery source.
        self.discovery = Discovery()
        self.registry.register(DiscoveryCollector(self.discovery, lambda: self.config.discovery))
        self.probers = make_probers(TLSSource(asyncio.Semaphore(self.fds.probes)), self.discovery)
        self.pipeline = Pipeline(
            probers=self.probers, assessor=Assessor(on_error=self.metrics.error), scanner=self.scanner
        )
        # /probe has its own source: its connections do not wait behind the scheduler's cap.
        self.adhoc = Pipeline(
            probers=make_probers(TLSSource(asyncio.Semaphore(self.fds.adhoc)), self.discovery),
            assessor=self.pipeline.assessor,
            scanner=self.scanner,
        )
        self.renderer = StoreRenderer(
            self.store,
            lambda: self.config,
            scanner=self.scanner,
            probers=self.probers,
            on_error=lambda: self.metrics.error(Step.RENDER),
        )
        self.scheduler: Scheduler | None = None
        self.discoverer: DiscoveryScheduler | None = None
        self._warming: asyncio.Task[None] | None = None
        self.reports = ReportScheduler(lambda: self.config.reports, self.metrics.count_notification)
        self.snmp = SnmpWebhook(
            lambda: self.config.notifications.snmp,
            self.metrics.count_notification,
            days_left=days_left_from_store(self.store),
        )
        self._checksum: str | None = None
        self._loaded_at: float | None = None
        self.reload_failure: ReloadFailure | None = None  # shown on the page until a reload succeeds
        self._reload_lock = asyncio.Lock()
        self._stop = asyncio.Event()

    async def metrics_body(self, *, openmetrics: bool = False, gzip: bool = False) -> Sequence[gzipped.Chunk]:
        """``render_metrics`` off the loop (probes keep running while a big scrape renders), with the
        background version scans paused meanwhile (see ``Scanner.paused``)."""
        with self.scanner.paused():
            return await asyncio.to_thread(partial(self.render_metrics, openmetrics=openmetrics, gzip=gzip))

    def render_metrics(self, *, openmetrics: bool = False, gzip: bool = False) -> Sequence[gzipped.Chunk]:
        """The /metrics body as chunks to write in order: every target's and file's series, then
        the exporter's own; in the text format or OpenMetrics (then ending in ``# EOF``),
        gzip-compressed when asked (the renderer keeps the lines compressed by groups of
        locations: only what changed is compressed again). The plain-text body is never built:
        its chunks include the renderer's compressed blocks, inflated one by one as they are
        written (joined, five plain scrapes of 10,000 endpoints left the process at 506 MB)."""
        families = self.renderer.render_families()
        own = openmetrics_latest(self.registry) if openmetrics else generate_latest(self.registry)  # type: ignore[no-untyped-call]
        if not gzip:
            return [*(c for f in families for c in f.parts()), own]
        return gzipped.member([*(b for f in families for b in f.blocks()), gzipped.block(own)])

    async def probe(self, target: Target, *, timeout: float) -> list[Result]:
        results = await self.adhoc.probe(target, self.config, timeout=timeout)
        for r in results:
            self.metrics.observe(r.outcome.value, r.duration)
        return results

    def probe_text(self, results: list[Result], target: Target, *, owner: bool = False, name: bool = False) -> str:
        return probe_text(results, target, self.config, scanner=self.scanner, owner=owner, name=name)

    def verdict_text(self, results: list[Result], target: Target) -> str:
        profile, now = self.config.profile(target.profile), time.time()
        judged = [
            (
                r.location or target.target,
                verdict(r, target, profile, now, self.scanner.latest_for(target, r.location)),
            )
            for r in results
        ]
        return verdict_section(judged)

    async def alertmanager_snmp(self, request: web.Request) -> web.Response:
        return await self.snmp.handle(request)

    def inventory(self) -> list[InventoryEntry]:
        return build_inventory(self.store.snapshot(), self.config, self.scanner.latest_for, due_of=self._due)

    async def _discovered(self, scan: Scan, changes: RunChanges) -> None:
        """A discovery run ended: monitor what it found (and stop what it forgot), then mail it."""
        if self.scheduler is not None:
            self.scheduler.apply(self.config)
        await self.reports.discovery(scan, changes, self.config.profile(scan.profile).expiry_tiers)

    def discovery_json(self) -> dict[str, object]:
        """`GET /api/v1/discovery`."""
        return discovery_json(self.config.discovery, self.discovery.snapshot())

    def _due(self, job: Job) -> float | None:
        """When the job's next probe is due, in unix time (the scheduler keeps monotonic time): now
        while it runs; None when it is not scheduled (probing stopped)."""
        if self.scheduler is None:
            return None
        due = self.scheduler.due(job.key)
        if due is None:
            return time.time() if self.scheduler.is_running(job.key) else None
        return time.time() + max(0.0, due - time.monotonic())

    def status_page(self, query: InventoryQuery) -> str:
        return render_status(
            self.inventory(), query=query, metrics_path=self.telemetry_path, reload_failure=self.reload_failure
        )

    def _path(self) -> Path | None:
        if self.config_file:
            return Path(self.config_file)
        default = Path(DEFAULT_CONFIG)
        return default if default.exists() else None

    def load(self) -> tuple[Config, str | None]:
        path = self._path()
        if path is None:
            return Config(), None
        raw = read_config_file(path, self.shard)
        return load_config(path, data=raw, shard=self.shard), hashlib.sha256(raw).hexdigest()

    def apply(self, config: Config, checksum: str | None) -> None:
        self.config, self._checksum = config, checksum
        assessor = self.pipeline.assessor
        if assessor is not None:  # /probe shares it, within probe.allow besides
            assessor.fetcher.policy = FetchPolicy.of(config.fetch.allow, config.fetch.deny)
        if self.discoverer is not None:  # before the probes: it drops what the scans no longer cover
            self.discoverer.apply(config.discovery)
        if self.scheduler is not None:
            self.scheduler.apply(config)
        self.metrics.reload_ok.set(1)
        self._loaded_at = time.time()
        self.metrics.reload_timestamp.set(self._loaded_at)
        self.reload_failure = None

    async def reload(self) -> tuple[bool, str]:
        """Load the file again; a bad file is rejected, logged, and the running config stays."""
        async with self._reload_lock:
            try:
                config, checksum = await in_file_thread(self.load)
            except (ConfigError, RecursionError, MemoryError) as exc:
                if not isinstance(exc, ConfigError):  # load_config turns these into ConfigError; belt and braces
                    exc = ConfigError([f"{self._path()}: {type(exc).__name__}"])
                self.metrics.reload_ok.set(0)
                self.reload_failure = ReloadFailure(time.time(), tuple(exc.errors), self._loaded_at)
                log.error(
                    "configuration reload failed; keeping the running configuration",
                    extra={"fields": {"file": str(self._path()), "errors": "; ".join(exc.errors)}},
                )
                return False, "reload failed:\n" + "\n".join(exc.errors)
            if checksum is not None and checksum == self._checksum:
                self.metrics.reload_ok.set(1)
                self.reload_failure = None
                log.info("configuration unchanged", extra={"fields": {"file": str(self._path())}})
                return True, "configuration unchanged"
            self.apply(config, checksum)
            log.info("configuration reloaded", extra={"fields": summary(config)})
            return True, "configuration reloaded"

    def _aborted(self) -> None:
        """SIGABRT sent to the exporter: a stop, with the stack of every thread kept first."""
        if self.crash is not None:
            self.crash.dump_now("SIGABRT")
        self.request_stop("SIGABRT")

    def request_stop(self, reason: str) -> None:
        log.info("shutting down", extra={"fields": {"reason": reason}})
        self._stop.set()

    async def startup(self) -> None:
        """Load the configuration (errors are fatal here: the caller prints them) and start probing."""
        config, checksum = self.load()
        self.scheduler = Scheduler(self.store, self.pipeline, self.metrics, shard=self.shard)
        self.discoverer = DiscoveryScheduler(
            self.discovery, shard=self.shard, on_run=self._discovered, max_concurrency=self.fds.probes
        )
        self.apply(config, checksum)
        self.reports.start()
        self._warming = asyncio.create_task(self._warm())
        self.ready = True
        log.info(
            "tls-exporter started",
            extra={
                "fields": {
                    "version": __version__,
                    "listen": self.listen,
                    "shard": str(self.shard),
                    **summary(config),
                    **settings(config),
                }
            },
        )
        if not config.targets and not config.files and not config.discovery and not any(config.sections.values()):
            log.warning(
                "no targets configured: only /probe will do anything",
                extra={"fields": {"config": str(self._path() or "(none)")}},
            )

    async def _warm(self) -> None:
        """Render new results every few seconds, so that no scrape renders a whole pass at once;
        now and then, give the heap pages freed since back to the system."""
        rounds = 0
        while True:
            await asyncio.sleep(WARM_EVERY)
            rounds += 1
            try:
                await asyncio.to_thread(self.renderer.warm)
                if rounds % TRIM_EVERY == 0:
                    await asyncio.to_thread(memory.trim)
            except Exception:  # a bug here must not stop the warm-ups; the scrape renders anyway
                log.exception("pre-rendering the metrics failed")

    async def shutdown(self) -> None:
        self.ready = False
        await self.reports.stop()
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
        if self.discoverer is not None:
            await self.discoverer.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.pipeline.close()

    async def run(self) -> int:
        host, port = parse_listen(self.listen)
        memory.one_arena()  # before any thread allocates (see exporter/support/memory.py)
        # Daemon threads: a DNS lookup or a read that hangs never holds up the exit.
        asyncio.get_running_loop().set_default_executor(DaemonThreadPool(DEFAULT_THREADS, "worker"))
        await self.startup()
        # Modules and the configuration live as long as the process: keep them out of every later
        # full garbage collection (they are still freed by reference counting after a reload).
        gc.freeze()
        runner = GuardedRunner(make_app(self), max_connections=self.fds.http, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            ssl_context = self.web_config.ssl_context() if self.web_config else None
            await web.TCPSite(runner, host or None, port, reuse_address=True, ssl_context=ssl_context).start()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
            loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
            loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
            loop.add_signal_handler(signal.SIGABRT, self._aborted)
            log.info("listening", extra={"fields": {"address": self.listen}})
            await self._stop.wait()
        finally:
            # In-flight /probe requests and scheduled probes are cancelled, not waited for.
            self.ready = False
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await asyncio.gather(self.shutdown(), runner.cleanup(), return_exceptions=True)
            log.info("stopped")
        return 0


def _days(threshold: Threshold | None) -> str:
    if threshold is None:
        return "off"
    return f"{threshold.days:g}d" if threshold.days is not None else f"{threshold.percent:g}%"


def settings(config: Config) -> dict[str, object]:
    """What the start line says of the alarm settings (the appliance daemon's habit): the default
    profile's expiry tiers, version scans and log reminders, and where traps go."""
    p = config.profile(config.defaults.profile)
    tiers = p.expiry_tiers
    receivers = config.notifications.snmp
    return {
        "tiers": f"info={_days(tiers.info)},warning={_days(tiers.warning)},critical={_days(tiers.critical)}",
        "scan": format_duration(p.scan_interval) if p.scan_protocol_versions else "off",
        "reminders": format_duration(p.log_repeat),
        "traps": ",".join(f"{r.destination}/{r.version}" for r in receivers) or "none",
    }


def summary(config: Config) -> dict[str, object]:
    protocols = Counter(t.protocol for t in config.targets)
    return {
        "config": config.source or "(none)",
        "targets": len(config.targets),  # with --shard: this replica's share
        **({"targets_in_file": config.targets_in_file} if config.targets_in_file is not None else {}),
        "files": len(config.files),
        **{name: len(jobs) for name, jobs in config.sections.items()},
        **({"discovery": len(config.discovery)} if config.discovery else {}),
        "protocols": ",".join(f"{p}:{c}" for p, c in sorted(protocols.items())) or "none",
        "profiles": ",".join(sorted(config.profiles)),
    }
