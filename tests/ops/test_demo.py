"""`tls-exporter demo` as a user runs it: a process that starts its endpoints and the exporter, shows
every finding it promises in the inventory, and on Ctrl-C stops with status 0, its files gone."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import ManagedProcess, free_port, http

from exporter.cli import _serve_parser
from exporter.demo import DEFAULT_LISTEN

# name -> (verdict, the finding codes, exactly)
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "good": ("ok", set()),
    "expired": ("critical", {"expired"}),
    "expiring-5d": ("critical", {"expiry_critical"}),
    "expiring-20d": ("warning", {"expiry_warning"}),
    "wrong-host": ("critical", {"hostname_mismatch"}),
    "self-signed": ("critical", {"chain_invalid"}),
    "untrusted": ("critical", {"chain_invalid"}),
    "weak-key": ("warning", {"weak_key"}),
    "sha1": ("critical", {"weak_signature", "chain_invalid"}),  # clients refuse a SHA-1 leaf too
    "legacy-tls": ("warning", {"legacy_protocol"}),
    "revoked": ("critical", {"revoked"}),
    "file": ("ok", {"expiry_info"}),
}
SETTLE = 120.0  # seconds for every entry to be probed, scanned and graded (a loaded machine is slow)


def seen(inventory: list[dict[str, Any]]) -> dict[str, tuple[str, set[str]]]:
    return {e["name"]: (e["verdict"], {f["code"] for f in e["findings"]}) for e in inventory}


def settled(inventory: list[dict[str, Any]]) -> bool:
    """Every entry probed, every version scan in (no grade pending) and every promised finding shown."""
    return all(e["verdict"] != "pending" and not e["grading"] for e in inventory) and seen(inventory) == EXPECTED


def banner_value(proc: ManagedProcess, label: str) -> str | None:
    for line in proc.stdout().splitlines():
        if line.strip().startswith(label):
            return line.strip().removeprefix(label).split()[0]
    return None


def wait_settled(base: str, proc: ManagedProcess) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SETTLE
    inventory: list[dict[str, Any]] = []
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"demo exited with {proc.popen.returncode} before settling\n{proc.output()}")
        try:
            inventory = http(f"{base}/api/v1/inventory", timeout=5).json()
        except (OSError, ValueError) as exc:
            last_error = exc
        else:
            if settled(inventory):
                return inventory
        time.sleep(0.5)
    shown = json.dumps([{k: e[k] for k in ("name", "verdict", "grading", "findings")} for e in inventory], indent=1)
    pytest.fail(
        f"the demo did not settle within {SETTLE:.0f}s (last error {last_error!r});\n"
        f"wanted {EXPECTED}\nlast seen {seen(inventory)}\nlast inventory:\n{shown}\n{proc.output()}"
    )


def test_demo_defaults_to_the_servers_listen_address() -> None:
    assert _serve_parser().get_default("listen") == DEFAULT_LISTEN


@pytest.mark.timeout(300)
def test_demo_shows_every_finding_and_cleans_up(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "exporter", "demo", "--web.listen-address", f"127.0.0.1:{port}"]
    proc = ManagedProcess("demo", argv, tmp_path)
    try:
        inventory = wait_settled(base, proc)
        entries = {e["name"]: e for e in inventory}
        assert len(inventory) == len(entries) == len(EXPECTED)
        assert abs(entries["expiring-5d"]["days_left"] - 5) < 0.1
        assert abs(entries["expiring-20d"]["days_left"] - 20) < 0.1
        assert entries["expired"]["days_left"] < 0
        assert entries["good"]["chain_valid"] is True and entries["good"]["owner"] == "web-team"
        assert all(e["owner"] for e in inventory)
        texts = {name: " ".join(f["text"] for f in e["findings"]) for name, e in entries.items()}
        assert "self_signed" in texts["self-signed"]
        assert "untrusted_root" in texts["untrusted"]
        assert "TLSv1.0" in texts["legacy-tls"]
        assert entries["revoked"]["ocsp_status"] == "revoked"
        assert entries["file"]["kind"] == "file" and entries["file"]["path"].endswith("file.pem")
        codes = {f["code"] for e in inventory for f in e["findings"]}
        assert len(codes) >= 8, codes

        page = http(f"{base}/", timeout=10)
        assert page.status == 200
        assert all(name in page.body for name in EXPECTED)

        temp = banner_value(proc, "temp dir")
        assert temp is not None and Path(temp).is_dir(), proc.stdout()
        assert banner_value(proc, "exporter") == f"{base}/"
        assert "Ctrl-C to stop" in proc.stdout()

        proc.signal(signal.SIGINT)
        status = proc.wait(15)
        assert status == 0, proc.output()
        assert not Path(temp).exists()
        assert "temporary files removed" in proc.stdout()
    finally:
        proc.stop()
