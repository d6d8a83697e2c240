"""Command line: serve (the default), `--config.check`, `check` and `report`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from exporter import __version__, logs
from exporter.adhoc import adhoc_target
from exporter.app import Exporter, parse_listen
from exporter.assess import Assessor
from exporter.check import Status, file_json, file_text, judge, judge_file, render_text, result_json, worst
from exporter.config import load_config
from exporter.config.model import Config, FileTarget, Target
from exporter.errors import ConfigError
from exporter.probe import Prober
from exporter.probers.file import read_target


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
    p.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warn", "error"])
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])
    p.add_argument("--version", action="version", version=f"tls-exporter {__version__}")
    return p


def _check_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tls-exporter check", description="Probe once and report; exit 0 OK, 1 warning, 2 critical, 3 unknown."
    )
    p.add_argument("target", nargs="?", help="host, host:port, [ipv6]:port, or a certificate file path or glob")
    p.add_argument("--protocol", help="protocol (default https)")
    p.add_argument("--server-name", dest="server_name", help="SNI and name to verify (default: the host)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the text report")
    p.add_argument("--config.file", dest="config_file", help="check every configured target, or take profiles from it")
    p.add_argument("--profile", help="profile of --config.file to judge by")
    p.add_argument("--ca-file", dest="ca_file", help="PEM bundle to trust instead of the system store")
    p.add_argument("--timeout", type=float, help="probe timeout in seconds (default: the profile's)")
    p.add_argument("--log.level", dest="log_level", default="warn", choices=["debug", "info", "warn", "error"])
    return p


def config_check(path: str | None) -> int:
    target = path or "config.yml"
    try:
        config = load_config(target)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{target}: {len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    print(
        f"{target}: OK ({len(config.targets)} targets, {len(config.files)} file entries, "
        f"{len(config.profiles)} profiles)"
    )
    return 0


def run_check(argv: Sequence[str]) -> int:
    args = _check_parser().parse_args(argv)
    logs.setup(args.log_level)
    try:
        config = load_config(args.config_file) if args.config_file else Config()
    except ConfigError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return Status.UNKNOWN
    if args.target is None and not args.config_file:
        print("check: give a TARGET or --config.file", file=sys.stderr)
        return Status.UNKNOWN
    if args.target is not None and _looks_like_file(args.target):
        path = str(Path(args.target).absolute())
        return asyncio.run(_check_file(path, args.target, config, profile=args.profile, as_json=args.json))
    if args.target is not None:
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
        if args.timeout:
            target = dataclasses.replace(target, timeout=args.timeout)
        targets: list[Target] = [target]
    else:
        targets = list(config.targets)
    return asyncio.run(_check(targets, config, as_json=args.json))


async def _check(targets: list[Target], config: Config, *, as_json: bool) -> int:
    assessor = Assessor()
    try:
        results = await asyncio.gather(*(Prober(assessor).probe_target(t, config) for t in targets))
    finally:
        await assessor.close()
    now = time.time()
    statuses = [judge(r, t, config, now).status for t, rs in zip(targets, results, strict=True) for r in rs]
    status = worst(statuses)
    if as_json:
        doc = {
            "status": status.name.lower(),
            "exit_code": int(status),
            "targets": [
                {
                    "target": t.target,
                    "protocol": t.protocol,
                    "server_name": t.server_name,
                    "name": t.name,
                    "results": [result_json(r, t, config, now) for r in rs],
                }
                for t, rs in zip(targets, results, strict=True)
            ],
        }
        print(json.dumps(doc, indent=2))
    else:
        for t, rs in zip(targets, results, strict=True):
            for r in rs:
                print(render_text(r, t, config, now))
        print(f"{status.name}: {len(statuses)} address(es) checked")
    return int(status)


def _looks_like_file(target: str) -> bool:
    """A path that exists, or a glob or absolute/relative path: not something to connect to."""
    return Path(target).exists() or target.startswith(("/", "./", "../")) or any(c in target for c in "*?[")


async def _check_file(path: str, name: str, config: Config, *, profile: str | None, as_json: bool) -> int:
    prof = config.profile(profile or config.defaults.profile)
    target = FileTarget(path=path, name=name, owner=config.defaults.owner)
    now = time.time()
    results = await read_target(target, prof, config.certificate_owners, now)
    status = worst([judge_file(r, prof, now).status for r in results])
    if as_json:
        print(
            json.dumps(
                {
                    "status": status.name.lower(),
                    "exit_code": int(status),
                    "files": [file_json(r, prof, now) for r in results],
                },
                indent=2,
            )
        )
    else:
        for r in results:
            print(file_text(r, prof, now))
        print(f"{status.name}: {len(results)} file(s) checked")
    return int(status)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "check":
        return run_check(argv[1:])
    if argv and argv[0] == "report":
        from exporter.report.cli import run_report  # only this subcommand needs it

        return run_report(argv[1:])
    args = _serve_parser().parse_args(argv)
    if args.config_check:
        return config_check(args.config_file)
    logs.setup(args.log_level, args.log_format)
    try:
        parse_listen(args.listen)
        exporter = Exporter(args.config_file, listen=args.listen)
        return asyncio.run(exporter.run())
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"tls-exporter: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


__all__ = ["main"]
