"""Hostile configuration files: alias bombs, deep nesting, FIFOs, /dev/zero. Each is a config
error with a message (from --config.check, at start and on reload, where it sets
last_reload_successful 0 and keeps the running configuration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import parse, value

from exporter.config import load_config
from exporter.config.load import parse_yaml
from exporter.support.errors import ConfigError

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)
DEEP = "targets: " + "[" * 50_000 + "]" * 50_000


def _hostile(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """The path of a hostile config and the error it must give."""
    path = tmp_path / f"{kind}.yml"
    if kind == "bomb":
        path.write_text(BOMB + "\n")
        return (
            path,
            f"{path}: invalid YAML: the document expands to 490329064 nodes (aliases), over the limit of 200000",
        )
    if kind == "deep":
        path.write_text(DEEP + "\n")
        return path, f"{path}:1:73: invalid YAML: nested deeper than 64 levels"
    if kind == "fifo":
        os.mkfifo(path)
        return path, f"{path}: cannot read: configuration file is a FIFO, not a regular file"
    if kind == "huge":
        with path.open("wb") as f:
            f.truncate(5 * 1024 * 1024)
        return path, f"{path}: cannot read: configuration file is 5242880 bytes, over the 4194304 byte limit"
    return Path("/dev/zero"), "/dev/zero: cannot read: configuration file is a character device, not a regular file"


KINDS = ["bomb", "deep", "fifo", "huge", "zero"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_refuses_with_a_message(tmp_path: Path, kind: str) -> None:
    path, message = _hostile(tmp_path, kind)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.errors == [message]


@pytest.mark.parametrize("kind", ["bomb", "deep", "zero"])
def test_config_check_reports_and_exits_1(tmp_path: Path, kind: str) -> None:
    path, message = _hostile(tmp_path, kind)
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check", f"--config.file={path}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [message, f"{path}: 1 error(s)"]  # no traceback


@pytest.mark.parametrize("kind", KINDS)
async def test_reload_keeps_the_running_config(make_client, tmp_path: Path, kind: str) -> None:
    exporter, client = await make_client("targets: [{address: '127.0.0.1:9', protocol: tls}]\n")
    running = exporter.config
    path, message = _hostile(tmp_path, kind)
    exporter.config_file = str(path)
    ok, text = await exporter.reload()
    assert not ok
    assert text == f"reload failed:\n{message}"
    assert exporter.config is running
    s = parse(await (await client.get("/metrics")).text())
    assert value(s, "tls_exporter_config_last_reload_successful") == 0
    assert value(s, "tls_exporter_targets") == 1


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_trust_bundle_fifo_or_device_in_the_config_is_an_error(tmp_path: Path, kind: str) -> None:
    bundle = tmp_path / "bundle.pem"
    if kind == "fifo":
        os.mkfifo(bundle)
        reason = "trust bundle is a FIFO, not a regular file"
    else:
        bundle = Path("/dev/zero")
        reason = "trust bundle is a character device, not a regular file"
    path = tmp_path / "config.yml"
    path.write_text(f"profiles: {{strict: {{trust: '{bundle}'}}}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.errors == [f"{path}:1:21: profiles.strict.trust: cannot read '{bundle}': {reason}"]


def test_client_certificate_fifo_in_the_config_is_an_error(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    os.mkfifo(cert)
    key.write_text("not read: the certificate fails first\n")
    path = tmp_path / "config.yml"
    path.write_text(f"profiles: {{mtls: {{client_cert: '{cert}', client_key: '{key}'}}}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.errors == [
        f"{path}:1:19: profiles.mtls.client_cert: cannot read '{cert}': "
        "client certificate is a FIFO, not a regular file"
    ]


def test_a_large_document_without_aliases_is_not_a_bomb() -> None:
    """The alias limit counts the nodes aliases add: 100,000 targets are over 300,000 nodes of
    their own and must load; the same count reached through aliases is refused."""
    plain = "[" + "x, " * 250_000 + "]"
    assert len(parse_yaml(plain)) == 250_000  # type: ignore[arg-type]
    aliased = "a: &a [" + "x, " * 1_000 + "]\nb: [" + "*a, " * 250 + "]"
    with pytest.raises(ValueError, match=r"expands to 251\d{3} nodes \(aliases\), over the limit of 200000"):
        parse_yaml(aliased)
