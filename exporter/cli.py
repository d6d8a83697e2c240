"""Command line: serve (the default), `--config.check`, `check` and `report`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NoReturn

from exporter import __version__
from exporter.config.durations import parse_duration
from exporter.config.model import Config, FileTarget, Job, Threshold
from exporter.config.parse_profile import VALIDATION_POLICIES
from exporter.judge.assess import Assessor
from exporter.judge.fetch import Fetcher
from exporter.judge.scan import Scanner
from exporter.outputs.check import perfdata, render_text, result_json
from exporter.outputs.verdict import Status, days_of, verdict, worst
from exporter.pipeline import Pipeline
from exporter.sources import PROBERS
from exporter.sources.adhoc import adhoc_target
from exporter.support import logs
from exporter.support.errors import ConfigError
from exporter.support.netpolicy import FetchPolicy
from exporter.support.protocols import PROTOCOLS

if TYPE_CHECKING:
    from exporter.schedule.shard import Shard

# Paths the exporter serves itself: the telemetry path may not take one of them.
RESERVED_PATHS = ("/", "/probe", "/sd", "/-/healthy", "/-/ready", "/-/reload")


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tls-exporter",
        description="Prometheus exporter for TLS certificates.",
        epilog="Subcommands: tls-exporter check TARGET|--config.file=F [options]; "
        "tls-exporter report --period=day|week|month --prometheus.url=URL [options]",
    )
    p.add_argument("--config.file", dest="config_file", help="configuration file (default: ./config.yml if present)")
    p.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the configuration, print every error, exit 0 or 1",
    )
    p.add_argument("--web.listen-address", dest="listen", default=":9632", help="address to listen on (default :9632)")
    p.add_argument(
        "--web.config.file",
        dest="web_config_file",
        help="web configuration (exporter-toolkit format): TLS, basic auth, response headers",
    )
    p.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        type=_telemetry_path,
        default="/metrics",
        help="path of the metrics (default /metrics)",
    )
    p.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="serve POST /-/reload (off by default: any client could change state; SIGHUP always reloads)",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        default=None,
        help="probe only share I of N of the targets: I/N, or auto/N (I from the host name's trailing -K)",
    )
    p.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warn", "error"])
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])
    p.add_argument(
        "--log.syslog",
        dest="log_syslog",
        metavar="FACILITY",
        choices=logs.SYSLOG_FACILITIES,
        help="also log to the local syslog socket with this facility (e.g. local5), ident tls-exporter",
    )
    p.add_argument(
        "--log.syslog-socket",
        dest="log_syslog_socket",
        default="/dev/log",
        metavar="PATH",
        help="the syslog socket for --log.syslog (default /dev/log)",
    )
    p.add_argument(
        "--log.crash-dir",
        dest="log_crash_dir",
        metavar="DIR",
        help="keep a stack dump of a crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) here; the next start logs it",
    )
    p.add_argument("--version", action="version", version=f"tls-exporter {__version__}")
    return p


class _CheckParser(argparse.ArgumentParser):
    """A bad argument is UNKNOWN (3) to a Nagios-style caller, never CRITICAL (argparse's 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(int(Status.UNKNOWN), f"{self.prog}: error: {message}\n")


def _check_parser() -> argparse.ArgumentParser:
    p = _CheckParser(
        prog="tls-exporter check", description="Probe once and report; exit 0 OK, 1 warning, 2 critical, 3 unknown."
    )
    p.add_argument("target", nargs="?", help="host, host:port, [ipv6]:port, or a certificate file path or glob")
    p.add_argument(
        "--protocol",
        metavar="PROTOCOL",
        help=f"one of {', '.join(sorted(PROTOCOLS))} (default https)",
    )
    p.add_argument("--server-name", dest="server_name", help="SNI and name to verify (default: the host)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the text report")
    p.add_argument("--config.file", dest="config_file", help="check every configured target, or take profiles from it")
    p.add_argument("--profile", help="profile of --config.file to judge by")
    p.add_argument("--ca-file", dest="ca_file", help="PEM bundle to trust instead of the system store")
    p.add_argument(
        "--validation-policy",
        dest="validation_policy",
        choices=VALIDATION_POLICIES,
        help="judge chains by the CA/Browser Forum rules (webpki) or RFC 5280 alone (rfc5280); default: webpki "
        "with the system store, rfc5280 with --ca-file or a trust: bundle (overrides every profile)",
    )
    p.add_argument("--timeout", help="probe timeout: 5s, 1500ms, or seconds (default: the configured timeout)")
    p.add_argument(
        "-w", "--warning", type=_days, metavar="DAYS", help="warning when fewer days are left (overrides every profile)"
    )
    p.add_argument(
        "-c",
        "--critical",
        type=_days,
        metavar="DAYS",
        help="critical when fewer days are left (overrides every profile)",
    )
    p.add_argument("--log.level", dest="log_level", default="warn", choices=["debug", "info", "warn", "error"])
    return p


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of days (decimals allowed)") from None
    if not days >= 0 or days == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r}: a number of days, 0 or more")
    return days


def with_thresholds(config: Config, warning: float | None, critical: float | None) -> Config:
    """Every profile's warning and critical tiers set to ``warning``/``critical`` days (check_ssl_cert's
    -w/-c); ValueError when the warning tier would not exceed the critical one."""
    if warning is None and critical is None:
        return config
    profiles = {}
    for name, profile in config.profiles.items():
        tiers = profile.expiry_tiers
        w = Threshold(days=warning) if warning is not None else tiers.warning
        c = Threshold(days=critical) if critical is not None else tiers.critical
        if w is not None and c is not None and w.days is not None and c.days is not None and w.days <= c.days:
            raise ValueError(f"-w/--warning ({w.days:g} days) must exceed -c/--critical ({c.days:g} days)")
        profiles[name] = dataclasses.replace(profile, expiry_tiers=dataclasses.replace(tiers, warning=w, critical=c))
    return dataclasses.replace(config, profiles=MappingProxyType(profiles))


def _telemetry_path(value: str) -> str:
    if not value.startswith("/") or value in RESERVED_PATHS:
        raise argparse.ArgumentTypeError(f"{value!r}: a path starting with '/', not one of {', '.join(RESERVED_PATHS)}")
    return value


def _shard(value: str) -> Shard:
    from exporter.schedule.shard import parse_shard  # the server's option: `check` starts faster without it

    try:
        return parse_shard(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_errors(source: str, exc: ConfigError) -> None:
    for line in exc.errors:
        print(line, file=sys.stderr)
    print(f"{source}: {len(exc.errors)} error(s)", file=sys.stderr)


def config_check(path: str | None, web_config_file: str | None = None) -> int:
    from exporter.config.load import load_config

    target = path or "config.yml"
    failed = False
    try:
        config = load_config(target)
    except ConfigError as exc:
        _print_errors(target, exc)
        failed = True
    else:
        sections = "".join(f"{len(jobs)} {name} entries, " for name, jobs in config.sections.items())
        print(
            f"{target}: OK ({len(config.targets)} targets, {len(config.files)} file entries, {sections}"
            f"{len(config.profiles)} profiles)"
        )
    if web_config_file is not None:
        try:
            from exporter.web.webconfig import load_web_config  # only when a web config is given

            web = load_web_config(web_config_file)
        except ConfigError as exc:
            _print_errors(web_config_file, exc)
            failed = True
        else:
            tls = f"TLS, client certificates {web.tls.client_auth_type}" if web.tls else "plain HTTP"
            print(f"{web_config_file}: OK ({tls}, {len(web.users)} basic auth users, {len(web.headers)} headers)")
    return 1 if failed else 0


def _load(path: str) -> Config:
    # The loader (YAML, every section's parser) only for --config.file: `check TARGET` starts faster.
    from exporter.config.load import load_config

    return load_config(path)


def _timeout(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"--timeout: {exc}") from None


def run_check(argv: Sequence[str]) -> int:
    args = _check_parser().parse_args(argv)
    logs.setup(args.log_level)
    try:
        config = _load(args.config_file) if args.config_file else Config()
        config = with_thresholds(config, args.warning, args.critical)
        if args.validation_policy:
            profiles = {
                name: dataclasses.replace(p, validation_policy=args.validation_policy)
                for name, p in config.profiles.items()
            }
            config = dataclasses.replace(config, profiles=profiles)
        timeout = _timeout(args.timeout) if args.timeout else None
    except ConfigError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return Status.UNKNOWN
    except ValueError as exc:
        print(f"check: {exc}", file=sys.stderr)
        return Status.UNKNOWN
    if args.target is None and not args.config_file:
        print("check: give a TARGET or --config.file", file=sys.stderr)
        return Status.UNKNOWN
    jobs: list[Job]
    if args.target is not None and _looks_like_file(args.target):
        path = str(Path(args.target).absolute())
        d = config.defaults
        jobs = [FileTarget(path=path, name=args.target, owner=d.owner, profile=args.profile or d.profile)]
    elif args.target is not None:
        try:
            target = adhoc_target(
                args.target, protocol=args.protocol, server_name=args.server_name, profile=args.profile, config=config
            )
        except ValueError as exc:
            print(f"check: {exc}", file=sys.stderr)
            return Status.UNKNOWN
        if args.ca_file:
            profile = dataclasses.replace(config.profile(target.profile), trust=args.ca_file)
            config = dataclasses.replace(config, profiles={**config.profiles, target.profile: profile})
        jobs = [target]
    else:
        jobs = [job for source in PROBERS.values() for job in source.jobs(config)]
    if timeout is not None:
        jobs = [dataclasses.replace(job, timeout=timeout) for job in jobs]
    return asyncio.run(_check(jobs, config, as_json=args.json))


async def _check(jobs: list[Job], config: Config, *, as_json: bool) -> int:
    # The version scan runs inside each probe's --timeout, before the grade that depends on it.
    scanner = Scanner()
    fetcher = Fetcher(policy=FetchPolicy.of(config.fetch.allow, config.fetch.deny))
    pipeline = Pipeline(assessor=Assessor(fetcher=fetcher), scanner=scanner, scan_inline=True)
    try:
        results = await asyncio.gather(*(pipeline.probe(job, config) for job in jobs))
        scans = [[scanner.latest_for(job, r.location) for r in rs] for job, rs in zip(jobs, results, strict=True)]
    finally:
        await pipeline.close()
    now = time.time()
    statuses = [
        verdict(r, job, config.profile(job.profile), now, scan).status
        for job, rs, ss in zip(jobs, results, scans, strict=True)
        for r, scan in zip(rs, ss, strict=True)
    ]
    status = worst(statuses)
    if as_json:
        doc: dict[str, object] = {"status": status.name.lower(), "exit_code": int(status)}
        entries = []
        files = []
        for job, rs, ss in zip(jobs, results, scans, strict=True):
            profile = config.profile(job.profile)
            rendered = [result_json(r, job, profile, now, scan) for r, scan in zip(rs, ss, strict=True)]
            if job.served:
                entries.append(
                    {
                        "target": job.target,
                        "protocol": job.protocol,
                        "server_name": job.server_name,
                        "name": job.name,
                        "results": rendered,
                    }
                )
            else:
                files.extend(rendered)
        if entries or not files:
            doc["targets"] = entries
        if files:
            doc["files"] = files
        print(json.dumps(doc, indent=2))
    else:
        for job, rs, ss in zip(jobs, results, scans, strict=True):
            for r, scan in zip(rs, ss, strict=True):
                print(render_text(r, job, config.profile(job.profile), now, scan))
        kinds = Counter(job.kind for job, rs in zip(jobs, results, strict=True) for _ in rs) or Counter(address=0)
        counted = [f"{count} {kind}{'(es)' if kind.endswith('s') else '(s)'}" for kind, count in kinds.items()]
        days = [
            (d, config.profile(job.profile))
            for job, rs in zip(jobs, results, strict=True)
            for r in rs
            if (d := days_of(r, job, now)) is not None
        ]
        perf = perfdata(*min(days, key=lambda dp: dp[0])) if days else ""
        print(f"{status.name}: {' and '.join(counted)} checked" + (f" | {perf}" if perf else ""))
    return int(status)


_ADDRESS = re.compile(r"^\[[0-9A-Fa-f:.%\w-]+\](:\d+)?$")


def _looks_like_file(target: str) -> bool:
    """A path that exists, or a glob or absolute/relative path: not something to connect to.
    ``[::1]:443`` is an address, not a glob character class."""
    if _ADDRESS.match(target):
        return False
    return Path(target).exists() or target.startswith(("/", "./", "../")) or any(c in target for c in "*?[")


def run_rules(argv: Sequence[str]) -> int:
    """`tls-exporter rules`: the bundled alert rules for this deployment, on stdout."""
    from exporter.outputs.rules import RULES_FILE, bundled, render_rules

    p = argparse.ArgumentParser(
        prog="tls-exporter rules",
        description="Print the bundled alert rules (alerting-rules/tls-exporter.rules.yml) for a deployment.",
    )
    p.add_argument("--selector", help='the label matchers of the exporter\'s own `up` series (default: job=~".*tls.*")')
    p.add_argument(
        "--runbook-url", dest="runbook_url", help="runbook_url becomes URL/<AlertName> (a wiki, a docs site)"
    )
    p.add_argument(
        "--web.external-url",
        dest="external_url",
        help="the exporter's URL as users reach it: runbook_url becomes URL/runbooks/<AlertName> (served by it)",
    )
    p.add_argument("--format", default="prometheus", choices=["prometheus", "prometheusrule"])
    args = p.parse_args(argv)
    base = args.runbook_url or (f"{args.external_url.rstrip('/')}/runbooks" if args.external_url else None)
    try:
        sys.stdout.write(render_rules(bundled(RULES_FILE), selector=args.selector, runbook_base=base, fmt=args.format))
    except ValueError as exc:
        print(f"tls-exporter rules: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "check":
        return run_check(argv[1:])
    if argv and argv[0] == "rules":
        return run_rules(argv[1:])
    if argv and argv[0] == "demo":
        from exporter.demo import run_demo  # only this subcommand needs it

        return run_demo(argv[1:])
    if argv and argv[0] == "report":
        from exporter.report.cli import run_report  # only this subcommand needs it

        return run_report(argv[1:])
    args = _serve_parser().parse_args(argv)
    if args.config_check:
        return config_check(args.config_file, args.web_config_file)
    try:
        logs.setup(args.log_level, args.log_format, syslog=args.log_syslog, syslog_socket=args.log_syslog_socket)
    except OSError as exc:
        print(
            f"tls-exporter: --log.syslog: cannot reach {args.log_syslog_socket}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    crash = None
    if args.log_crash_dir:
        from exporter.support.crash import CrashDumps

        crash = CrashDumps(args.log_crash_dir)
        try:
            crash.arm()
        except OSError as exc:
            print(f"tls-exporter: --log.crash-dir: {exc}", file=sys.stderr)
            return 1
        crash.report_earlier()
    # The server stack (aiohttp, the web handlers) is imported only to serve: `check` and
    # `--config.check` start faster without it.
    from exporter.app import Exporter, parse_listen
    from exporter.support import eventloop
    from exporter.web.webconfig import WebConfig, load_web_config

    try:
        parse_listen(args.listen)
        web_config: WebConfig | None = load_web_config(args.web_config_file) if args.web_config_file else None
        exporter = Exporter(
            args.config_file,
            listen=args.listen,
            web_config=web_config,
            telemetry_path=args.telemetry_path,
            shard=args.shard,
            enable_lifecycle=args.enable_lifecycle,
            crash=crash,
        )
        return eventloop.run(exporter.run())
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"tls-exporter: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if crash is not None:
            crash.disarm()  # a clean stop: this run's empty dump file goes


__all__ = ["main"]
