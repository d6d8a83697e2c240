"""`tls-exporter report` against a real Prometheus holding a month of history (written with
`promtool tsdb create-blocks-from openmetrics`, see history.py): the numbers of the daily,
weekly and monthly reports, the HTML in headless Chromium, and scheduled delivery by SMTP and
into a directory, with a failed delivery retried at the next slot."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smtp_sink import SmtpSink

from exporter.config.notify_model import Report as ReportConfig
from exporter.config.notify_model import ReportFormat, ReportPeriod, SmtpDelivery
from exporter.report.schedule import ReportScheduler

from .browser import chromium, inspect
from .history import DAY, STEP, fresh, openmetrics
from .tsdb import History, prometheus_serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    end = float((int(time.time()) // STEP) * STEP - STEP)
    with prometheus_serving(tmp_path_factory.mktemp("report-history"), openmetrics(end), end) as h:
        yield h


@pytest.fixture(scope="module")
def young(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """A Prometheus that holds fifteen minutes of history (see history.fresh)."""
    end = float((int(time.time()) // 60) * 60 - 120)
    with prometheus_serving(
        tmp_path_factory.mktemp("young"), openmetrics(end, fresh(end), span=900, step=60), end
    ) as h:
        yield h


def report(history: History, period: str, fmt: str = "json", *extra: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "exporter", "report", f"--period={period}", f"--prometheus.url={history.url}",
         f"--format={fmt}", f"--time={history.end:.0f}", *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def _targets(items: list[dict[str, Any]]) -> list[str]:
    return [i["target"] for i in items]


def test_daily_status(history: History) -> None:
    doc = json.loads(report(history, "day"))
    assert doc["period"] == "day"
    assert (doc["start"], doc["end"]) == (history.end - DAY, history.end)
    assert doc["totals"] == {"certificates": 5, "ok": 3, "warning": 1, "critical": 1, "failed_endpoints": 1}
    certs = {c["target"]: c for c in doc["daily"]["certificates"]}
    # Worst first: the expired one, then the warning, then the rest by days left.
    assert _targets(doc["daily"]["certificates"]) == [
        "old.example.com", "vpn.example.com", "api.example.com", "shop.example.com", "long.example.com",
    ]  # fmt: skip
    assert {t: (c["tier"], c["verdict"]) for t, c in certs.items()} == {
        "old.example.com": ("expired", "critical"),
        "vpn.example.com": ("warning", "warning"),
        "api.example.com": ("info", "ok"),
        "shop.example.com": ("info", "ok"),
        "long.example.com": ("ok", "ok"),
    }
    assert certs["old.example.com"]["days_left"] == pytest.approx(-2.0)
    assert certs["old.example.com"]["problems"] == [
        "expired 2.0 days ago", "chain invalid: expired", "weak key", "weak signature",
        "legacy protocol accepted: TLSv1.0",
    ]  # fmt: skip
    assert certs["shop.example.com"]["days_left"] == pytest.approx(89.5)
    assert certs["vpn.example.com"]["grade"] == "B"
    assert [(f["target"], f["outcome"], f["owner"]) for f in doc["daily"]["failed"]] == [
        ("mail.example.com", "connection_refused", "hsm-team")
    ]
    changes = doc["daily"]["changes"]
    assert [(c["kind"], c["target"], c["at"]) for c in changes] == [
        ("renewed", "shop.example.com", history.end - DAY / 2)
    ]
    assert changes[0]["previous_not_after"] == history.end + 5 * DAY
    assert changes[0]["not_after"] == history.end + 89.5 * DAY
    assert doc["weekly"] is None and doc["monthly"] is None


def test_a_young_prometheus_is_said_and_rows_are_locations(young: History) -> None:
    """Fifteen minutes of history: the week's comparisons say so and start there; a certificate first
    seen ten minutes ago is new then, not at its notBefore (tomorrow); two server names on one
    address are two rows; the legacy finding lists exactly the versions below the minimum."""
    doc = json.loads(report(young, "week"))
    (note,) = doc["notes"]
    assert re.search(r"Prometheus holds 0\.[1-3] hours of history, less than the week", note), note
    certs = {(c["target"], c["server_name"]): c for c in doc["daily"]["certificates"]}
    assert set(certs) == {("192.0.2.20:443", "a.example.com"), ("192.0.2.20:443", "b.example.com")}
    a, b = certs["192.0.2.20:443", "a.example.com"], certs["192.0.2.20:443", "b.example.com"]
    assert (a["verdict"], a["problems"]) == ("warning", ["legacy protocol accepted: TLSv1.1"])
    assert (b["verdict"], b["problems"]) == ("critical", ["not valid yet"])  # as check and the alert say
    w = doc["weekly"]
    assert (w["tiers_before"]["ok"], w["tiers"]["ok"]) == (1, 2)  # compared with 15 minutes ago, not "a week"
    (new,) = json.loads(report(young, "day"))["daily"]["changes"]
    assert (new["kind"], new["subject"]) == ("new", "CN=b.example.com")
    assert young.end - 900 < new["at"] <= young.end  # first seen by the exporter, not notBefore
    assert "Note: Prometheus holds" in report(young, "day", "markdown")


def test_weekly_trend(history: History) -> None:
    w = json.loads(report(history, "week"))["weekly"]
    assert [(c["target"], c["previous_subject"], c["subject"]) for c in w["renewed"]] == [
        ("shop.example.com", "CN=shop.example.com", "CN=shop.example.com")
    ]
    assert [(c["target"], c["previous_subject"], c["subject"], c["at"]) for c in w["replaced"]] == [
        ("api.example.com", "CN=api-old.example.com", "CN=api.example.com", history.end - 4 * DAY)
    ]
    assert _targets(w["newly_expiring"]) == ["vpn.example.com"]  # 32 days a week ago, 25 now
    assert _targets(w["expired"]) == ["old.example.com"]
    assert _targets(w["started_failing"]) == ["mail.example.com"]
    assert w["days_left"] == {"expired": 1, "0-7 days": 0, "7-30 days": 1, "30-90 days": 2, "90+ days": 1}
    assert w["days_left_before"] == {"expired": 0, "0-7 days": 1, "7-30 days": 1, "30-90 days": 1, "90+ days": 3}
    assert w["tiers"] == {"expired": 1, "critical": 0, "warning": 1, "info": 2, "ok": 1}
    assert w["tiers_before"] == {"expired": 0, "critical": 1, "warning": 1, "info": 1, "ok": 3}
    trend = {s["name"]: s["points"] for s in w["trend"]}
    assert len(trend["ok"]) == 7 * 4 + 1  # every 6 hours
    assert {name: points[-1][1] for name, points in trend.items()} == {k: float(v) for k, v in w["tiers"].items()}
    assert {name: points[0][1] for name, points in trend.items()} == {k: float(v) for k, v in w["tiers_before"].items()}


def test_monthly_compliance(history: History) -> None:
    m = json.loads(report(history, "month"))["monthly"]
    assert _targets(m["weak_keys"]) == _targets(m["weak_signatures"]) == ["old.example.com"]
    assert [(c["target"], v) for c, v in m["legacy_protocols"]] == [("old.example.com", "TLSv1.0")]
    assert m["grades"] == {"A": 3, "B": 1, "F": 1}
    assert m["chain_issues"] == {"expired": 1}
    assert _targets(m["unowned"]) == ["old.example.com"]
    assert [(c["target"], round((c["not_after"] - c["not_before"]) / DAY)) for c in m["longest_lived"]] == [
        ("long.example.com", 1100), ("old.example.com", 730), ("vpn.example.com", 365),
        ("shop.example.com", 90), ("api.example.com", 65),
    ]  # fmt: skip
    policies = {p["policy"]: (p["passed"], p["failures"]) for p in m["policies"]}
    old = "old.example.com (192.0.2.12:443)"
    assert policies == {
        "No expired certificate": (False, [old]),
        "No certificate in the critical tier": (True, []),
        "Every endpoint answers with a certificate": (False, ["mail.example.com (connection_refused)"]),
        "Every chain verifies": (False, [old]),
        "No weak key": (False, [old]),
        "No weak signature hash": (False, [old]),
        "No legacy protocol version accepted": (False, [old]),
        "Grade B or better": (False, [f"{old} (F)"]),
        "Validity within the policy's maximum": (True, []),
        "Every certificate has an owner": (False, [old]),
    }
    # The month's trend: old.example.com went critical then expired within it.
    trend = {s["name"]: [v for _, v in s["points"]] for s in m["trend"]}
    assert len(trend["ok"]) == 31 and max(trend["critical"]) >= 1 and trend["expired"][-1] == 1


def test_markdown_for_tickets(history: History) -> None:
    text = report(history, "month", "markdown")
    assert text.startswith("# Monthly certificate compliance, ")
    assert "| No expired certificate | FAIL (1) | old.example.com (192.0.2.12:443) |" in text
    assert "| No certificate in the critical tier | PASS |  |" in text
    assert "| long.example.com (192.0.2.15:443) | platform | CN=long.example.com | 1100 |" in text
    week = report(history, "week", "markdown")
    assert "| expired | 1 | 0 | +1 |" in week and "| ok | 1 | 3 | -2 |" in week


@pytest.mark.parametrize("period", ["day", "week", "month"])
async def test_html_renders_in_chromium(history: History, period: str, tmp_path: Path) -> None:
    page = tmp_path / f"{period}.html"
    report(history, period, "html", f"--output={page}", "--dashboard.url=http://grafana.example.com/d/x")
    html = page.read_text()
    assert "<script" not in html and "http-equiv" not in html
    expected_charts = {"day": 2, "week": 2, "month": 3}[period]
    with chromium(tmp_path) as port:
        for width in (1280, 760):
            shot = tmp_path / f"{period}-{width}.png"
            layout = await inspect(port, page, shot, width=width)
            assert shot.stat().st_size > 10_000, "screenshot too small to show the report"
            assert layout["title"].startswith({"day": "Daily", "week": "Weekly", "month": "Monthly"}[period])
            assert layout["external"] == 0  # no src= or stylesheet link: one self-contained file
            assert layout["scrollWidth"] <= layout["viewport"], layout
            assert layout["overflowing"] == [], layout
            charts = layout["charts"]
            assert len(charts) == expected_charts, charts
            for chart in charts:
                assert chart["width"] > 200 and chart["height"] > 40, chart
                assert chart["width"] <= layout["viewport"], chart
                assert chart["marks"] > 0, chart


async def test_scheduled_delivery_retries_at_next_slot(history: History, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    sink = SmtpSink(fail_next=1).start()
    try:
        smtp = SmtpDelivery(smarthost=f"127.0.0.1:{sink.port}", host="127.0.0.1", port=sink.port,
                            sender="tls-exporter@example.com", to=("pki@example.com",), starttls=True)  # fmt: skip
        configs = (
            ReportConfig(name="daily-mail", period=ReportPeriod.DAY, at="0 * * * *", prometheus_url=history.url,
                         smtp=smtp),
            ReportConfig(name="weekly-files", period=ReportPeriod.WEEK, at="0 * * * *", format=ReportFormat.MARKDOWN,
                         prometheus_url=history.url, directory=str(tmp_path / "reports")),
        )  # fmt: skip
        counts: Counter[tuple[str, str]] = Counter()
        scheduler = ReportScheduler(lambda: configs, lambda c, r: counts.update([(c, r)]))
        first, second = history.end - 2 * 3600, history.end - 3600
        with caplog.at_level(logging.INFO, logger="exporter.report"):
            assert await scheduler.tick(first - 600) == []  # plans only
            assert scheduler.next_slot("daily-mail") == first
            assert await scheduler.tick(first) == ["daily-mail", "weekly-files"]
            assert counts == {("email", "error"): 1, ("directory", "sent"): 1}
            assert scheduler.next_slot("daily-mail") == second
            assert await scheduler.tick(second - 60) == []
            assert await scheduler.tick(second) == ["daily-mail", "weekly-files"]
        assert counts == {("email", "error"): 1, ("email", "sent"): 1, ("directory", "sent"): 2}
        failed = [r for r in caplog.records if r.getMessage().startswith("report not delivered")]
        assert len(failed) == 1
        assert "451" in failed[0].fields["error"]  # type: ignore[attr-defined]
        mails = sink.snapshot()
        assert len(mails) == 1
        mail = mails[0]
        assert mail.recipients == ["pki@example.com"]
        assert str(mail.message["Subject"]).strip().startswith("[tls-exporter] Daily certificate status, ")
        assert str(mail.message["Subject"]).strip().endswith(": 1 critical, 1 warning")
        assert "<svg" in mail.html() and "old.example.com" in mail.html()
        assert "5 certificates: 3 ok, 1 warning, 1 critical; 1 failed endpoints." in mail.text()
        files = sorted(p.name for p in (tmp_path / "reports").iterdir())
        assert len(files) == 2 and all(f.startswith("weekly-files-week-") and f.endswith(".md") for f in files)
        assert "# Weekly certificate trend" in (tmp_path / "reports" / files[-1]).read_text()
    finally:
        sink.stop()
