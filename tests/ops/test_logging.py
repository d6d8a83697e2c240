"""Logs for the appliance habit: a real rsyslogd (Debian's rsyslog, an instance of the test's own on
its own socket) receives the exporter's lines under facility local5; the start line says the alarm
settings; SIGINT, SIGTERM and SIGABRT each leave a stop line; a crash (a real SIGSEGV) leaves a
faulthandler stack dump in --log.crash-dir, and the next start names it."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.harness import exporter_argv, free_port, require_binary, running, wait_for, wait_ready


class Syslog:
    def __init__(self, workdir: Path) -> None:
        self.socket = workdir / "log.sock"
        self.local5 = workdir / "local5.log"

    def lines(self) -> list[str]:
        return self.local5.read_text().splitlines() if self.local5.exists() else []


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[Syslog]:
    rsyslogd = require_binary("rsyslogd", "rsyslog")
    workdir = tmp_path / "rsyslog"
    workdir.mkdir()
    log = Syslog(workdir)
    conf = workdir / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{workdir}")\n'
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imuxsock" Socket="{log.socket}" CreatePath="on")\n'
        'template(name="plain" type="string" string="%syslogfacility-text% %syslogtag%%msg%\\n")\n'
        f'local5.* action(type="omfile" file="{log.local5}" template="plain")\n'
    )
    with (workdir / "rsyslogd.stderr").open("wb") as err:
        proc = subprocess.Popen(
            [rsyslogd, "-n", "-f", str(conf), "-i", str(workdir / "rsyslogd.pid")],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_for(lambda: log.socket.exists(), timeout=20, what="rsyslogd's socket")
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _start(tmp_path: Path, syslog: Syslog, crash_dir: Path, name: str) -> tuple[list[str], str]:
    config = tmp_path / "config.yml"
    config.write_text(
        "profiles:\n  default:\n    expiry_tiers: {info: 60d, warning: 21d, critical: 5d}\n"
        "    scan_interval: 2h\ntargets: []\n"
    )
    port = free_port()
    argv = exporter_argv(
        config,
        port,
        "--log.syslog=local5",
        f"--log.syslog-socket={syslog.socket}",
        f"--log.crash-dir={crash_dir}",
    )
    return argv, f"http://127.0.0.1:{port}"


def _logged(syslog: Syslog, text: str) -> list[str]:
    return [line for line in syslog.lines() if text in line]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGABRT], ids=lambda s: s.name)
def test_each_stop_signal_leaves_a_stop_line_in_syslog(tmp_path: Path, syslog: Syslog, sig: signal.Signals) -> None:
    crash_dir = tmp_path / "crashes"
    argv, base = _start(tmp_path, syslog, crash_dir, sig.name)
    with running("exporter", argv, tmp_path) as proc:
        wait_ready(base, proc)
        (started,) = wait_for(lambda: _logged(syslog, "tls-exporter started"), timeout=20, what="the start line")
        assert started.startswith(f"local5 tls-exporter[{proc.pid}]: ")
        assert 'tiers="info=60d,warning=21d,critical=5d"' in started and "scan=2h" in started
        assert "traps=none" in started and "reminders=12h" in started
        proc.signal(sig)
        assert proc.wait(20) == 0, proc.output()
    (stopping,) = _logged(syslog, "shutting down")
    assert f"reason={sig.name}" in stopping
    assert _logged(syslog, "msg=stopped")
    dumps = sorted(crash_dir.iterdir())
    if sig is signal.SIGABRT:  # a stop with the stack of every thread kept
        (dump,) = dumps
        assert dump.name == f"tls-exporter.{proc.pid}.crash"
        text = dump.read_text()
        assert text.startswith("tls-exporter stopped by SIGABRT") and "Current thread 0x" in text
        assert "in _aborted" in text  # the stack as the handler saw it
        assert _logged(syslog, "stack dump written")
    else:
        assert dumps == []  # a clean stop leaves no file behind


def test_a_crash_leaves_a_stack_dump_that_the_next_start_names(tmp_path: Path, syslog: Syslog) -> None:
    crash_dir = tmp_path / "crashes"
    argv, base = _start(tmp_path, syslog, crash_dir, "segv")
    with running("exporter", argv, tmp_path) as proc:
        wait_ready(base, proc)
        proc.signal(signal.SIGSEGV)  # what a crashing C extension raises: fatal, no clean stop
        assert proc.wait(20) == -signal.SIGSEGV
    crashed = proc.pid
    (dump,) = crash_dir.iterdir()
    assert dump.name == f"tls-exporter.{crashed}.crash"
    text = dump.read_text()
    assert "Fatal Python error: Segmentation fault" in text and 'File "' in text
    assert not _logged(syslog, "msg=stopped")  # it did not stop: it crashed
    with running("exporter", argv, tmp_path) as proc:
        wait_ready(base, proc)
        reported = crash_dir / f"tls-exporter.{crashed}.crash.reported"
        (line,) = wait_for(lambda: _logged(syslog, "an earlier run crashed"), timeout=20, what="the crash line")
        assert f"dump={reported}" in line and reported.read_text() == text
    assert not dump.exists()  # renamed: told once
