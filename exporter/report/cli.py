"""`tls-exporter report --period=day|week|month --prometheus.url=URL [--format] [--output] [--time]`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from exporter.config.notify_model import ReportFormat, ReportPeriod
from exporter.report.build import build_report
from exporter.report.query import Prometheus, QueryError
from exporter.report.render import render


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tls-exporter report",
        description="Build a report from Prometheus: daily status, weekly trend or monthly compliance.",
    )
    periods = [x.value for x in ReportPeriod if x is not ReportPeriod.DISCOVERY]  # (sent by the runs themselves)
    p.add_argument("--period", required=True, choices=periods)
    p.add_argument("--prometheus.url", dest="prometheus_url", required=True, help="e.g. http://127.0.0.1:9090")
    p.add_argument("--format", default="html", choices=[x.value for x in ReportFormat])
    p.add_argument("--output", help="file to write (default: standard output)")
    p.add_argument("--time", help="end of the period, RFC 3339 or Unix seconds (default: now)")
    p.add_argument("--dashboard.url", dest="dashboard_url", help="Grafana dashboard to link from the report")
    return p


def parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def run_report(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        end = parse_time(args.time) if args.time else time.time()
    except ValueError:
        print(f"report: invalid --time {args.time!r} (RFC 3339 or Unix seconds)", file=sys.stderr)
        return 2
    try:
        report = build_report(
            Prometheus(args.prometheus_url), ReportPeriod(args.period), end=end, dashboard_url=args.dashboard_url
        )
    except QueryError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    text = render(report, ReportFormat(args.format))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
