"""Hostile HTTP clients and faults against the real exporter process: slowloris past the
connection cap, scrapes through a sustained slowloris flood, reload without the lifecycle flag,
SIGHUP storms, SIGTERM with /probe in flight."""

from __future__ import annotations

import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from e2e.harness import ManagedProcess, free_port, http, one, parse_metrics, running, wait_for, wait_ready
from pki import PKI

from hostile.flood import SlowlorisFlood
from hostile.kit import HostileServers

NOFILE = 256  # the exporter runs with this descriptor limit: its budgets are small and known


def _argv(config: Path, port: int, *extra: str, nofile: int | None = None) -> list[str]:
    args = [f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", *extra]
    if nofile is None:
        return [sys.executable, "-m", "exporter", *args]
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile})); "
        f"sys.argv = ['exporter', *{args!r}]; "
        "runpy.run_module('exporter', run_name='__main__')"
    )
    return [sys.executable, "-c", code]


def _one_target(hostile: HostileServers, pki: PKI, tmp_path: Path, name: str) -> Path:
    """A configuration probing one loopback TLS server every second."""
    tls = hostile.tls(pki.issue(name).server_context())
    config = tmp_path / "config.yml"
    config.write_text(
        "defaults: {interval: 1s, timeout: 1s}\n"
        f"targets: [{{address: '127.0.0.1:{tls}', protocol: tls, server_name: localhost}}]\n"
    )
    return config


def _metrics(base: str) -> list:  # type: ignore[type-arg]
    resp = http(f"{base}/metrics", timeout=5)
    assert resp.status == 200
    return parse_metrics(resp.body)


def _drip(sock: socket.socket, stop: threading.Event) -> None:
    """Slowloris: a request head, one byte a second, never finished."""
    try:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        while not stop.is_set():
            sock.sendall(b"X")
            stop.wait(1.0)
    except OSError:
        pass


def test_slowloris_past_the_cap_leaves_probes_their_descriptors(
    hostile: HostileServers, pki: PKI, tmp_path: Path
) -> None:
    config = _one_target(hostile, pki, tmp_path, "loris")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running("exporter", _argv(config, port, nofile=NOFILE), tmp_path) as proc:
        wait_ready(base, proc)
        before = one(_metrics(base), "tls_exporter_probes_total", outcome="certificate_found").value
        stop = threading.Event()
        sockets = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(s)
        threads = [threading.Thread(target=_drip, args=(s, stop), daemon=True) for s in sockets]
        for t in threads:
            t.start()
        try:
            # Past the cap (64 with 256 descriptors) a connection is answered 503 and closed at once
            # (a client still sending may see the close as a reset, before reading the 503).
            # Watched for two seconds, well inside the 10 s header timeout: what stays silent is held.
            answered: set[socket.socket] = set()
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                readable, _, _ = select.select([s for s in sockets if s not in answered], [], [], 0.2)
                answered.update(readable)
            held = len(sockets) - len(answered)
            assert 1 <= held <= 64
            assert len(answered) >= 200 - 64

            # The held ones are closed by the header timeout, whatever they keep sending.
            def all_closed() -> bool:
                for s in sockets:
                    s.settimeout(0.01)
                    try:
                        if s.recv(4096):
                            continue
                    except TimeoutError:
                        return False
                    except OSError:
                        continue
                return True

            wait_for(all_closed, timeout=60, what="the exporter closing slowloris connections", proc=proc)
        finally:
            stop.set()
            for s in sockets:
                s.close()
        # Probes ran all along (their descriptors were never taken) and the exporter answers.
        samples = _metrics(base)
        after = one(samples, "tls_exporter_probes_total", outcome="certificate_found").value
        assert after > before
        assert one(samples, "tls_exporter_probes_total", outcome="network_error").value == 0
        assert one(samples, "tls_probe_success").value == 1
        refusals = [line for line in proc.stderr().splitlines() if "too many HTTP connections" in line]
        assert 1 <= len(refusals) <= 10  # 136 refusals, rate limited
        assert "Too many open files" not in proc.stderr()


def test_scrapes_are_served_through_a_slowloris_flood(hostile: HostileServers, pki: PKI, tmp_path: Path) -> None:
    # 300 slow clients against a cap of 64 connections (256 descriptors), replaced as soon as they
    # are closed: Prometheus's scrapes and health checks still get through, every one of them,
    # because a new connection sheds the one that has waited longest for its request.
    config = _one_target(hostile, pki, tmp_path, "flood")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running("exporter", _argv(config, port, nofile=NOFILE), tmp_path) as proc:
        wait_ready(base, proc)
        before = one(_metrics(base), "tls_exporter_probes_total", outcome="certificate_found").value
        with SlowlorisFlood(port, 300) as flood:
            wait_for(lambda: flood.connections > 300, timeout=30, what="the flood past the cap", proc=proc)
            connected = flood.connections
            failed = []
            for i in range(40):
                for path in ("/metrics", "/-/healthy"):
                    try:
                        status = http(f"{base}{path}", timeout=5).status
                    except OSError as exc:
                        status = repr(exc)  # type: ignore[assignment]
                    if status != 200:
                        failed.append((i, path, status))
            # The requests displaced slow clients, and the flood replaced them: the pressure held.
            wait_for(lambda: flood.connections > connected, timeout=10, what="shed clients replaced", proc=proc)
        assert failed == []
        samples = _metrics(base)
        assert one(samples, "tls_exporter_probes_total", outcome="certificate_found").value > before
        assert one(samples, "tls_exporter_probes_total", outcome="network_error").value == 0
        assert "closed the one waiting longest for its request" in proc.stderr()
        assert "Too many open files" not in proc.stderr()


def test_reload_needs_the_lifecycle_flag_and_sighup_storms_are_harmless(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("targets: []\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running("exporter", _argv(config, port), tmp_path) as proc:
        wait_ready(base, proc)
        resp = http(f"{base}/-/reload", method="POST", data=b"")
        assert resp.status == 403
        assert resp.body == "Lifecycle API is not enabled (start with --web.enable-lifecycle)\n"
        for _ in range(200):
            proc.signal(signal.SIGHUP)
        assert http(f"{base}/-/healthy").status == 200
        assert one(_metrics(base), "tls_exporter_config_last_reload_successful").value == 1
        config.write_text("targets: [{address: 'x:1', protocol: smpt}]\n")
        proc.signal(signal.SIGHUP)
        wait_for(
            lambda: one(_metrics(base), "tls_exporter_config_last_reload_successful").value == 0,
            timeout=30,
            what="a failed reload by SIGHUP",
            proc=proc,
        )
        assert proc.popen.poll() is None


def test_sigterm_with_probes_in_flight_exits_0_at_once(hostile: HostileServers, tmp_path: Path) -> None:
    silent = hostile.silent()
    config = tmp_path / "config.yml"
    # Scheduled probes and /probe requests that would each wait 60 s for a silent server.
    config.write_text(
        "defaults: {interval: 2m, timeout: 60s}\nprobe: {allow: ['127.0.0.0/8']}\n"
        + "targets:\n"
        + "".join(f"  - {{address: '127.0.0.{i}:{silent}', protocol: tls}}\n" for i in (1,))
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running("exporter", _argv(config, port), tmp_path) as proc:
        wait_ready(base, proc)
        answers: list[int] = []

        def probe() -> None:
            try:
                answers.append(http(f"{base}/probe?target=127.0.0.1:{silent}&protocol=tls", timeout=90).status)
            except OSError:
                answers.append(0)

        threads = [threading.Thread(target=probe, daemon=True) for _ in range(30)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # let the requests arrive; they then wait on the silent server
        assert not answers
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0, proc.output()
        for t in threads:
            t.join(10)
        assert len(answers) == 30  # every client got an answer or a closed connection, none hangs
        assert "Traceback" not in proc.stderr()


@pytest.fixture(autouse=True)
def _no_stray(request: pytest.FixtureRequest) -> None:
    """Processes are stopped by ``running``; nothing else here starts one."""
    assert ManagedProcess
