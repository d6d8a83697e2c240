"""Hostile configuration files: alias bombs, deep nesting, FIFOs, /dev/zero, a file too large for
the memory left. Each is a config error with a message (from --config.check, at start and on reload, where it sets
last_reload_successful 0 and keeps the running configuration)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import parse, value

from exporter.config import load_config
from exporter.config.load import LOAD_COST, parse_yaml
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
        size = 1 << 40  # sparse: costs no disk; no machine of these tests has 24 TiB to load it with
        with path.open("wb") as f:
            f.truncate(size)
        mb = size * LOAD_COST // (1 << 20)
        # The memory left moves while the test runs: any figure, but it must be said.
        return (
            path,
            f"{path}: cannot read: loading this {size} byte configuration takes about {mb} MB of memory, "
            "and <N> MB are left",
        )
    return Path("/dev/zero"), "/dev/zero: cannot read: configuration file is a character device, not a regular file"


KINDS = ["bomb", "deep", "fifo", "huge", "zero"]


def _matches(text: str, message: str) -> bool:
    """``text`` is ``message``, where ``<N>`` stands for any number."""
    return re.fullmatch(re.escape(message).replace("<N>", "[0-9]+"), text) is not None


@pytest.mark.parametrize("kind", KINDS)
def test_load_refuses_with_a_message(tmp_path: Path, kind: str) -> None:
    path, message = _hostile(tmp_path, kind)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert len(err.value.errors) == 1
    assert _matches(err.value.errors[0], message)


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
    assert text.startswith("reload failed:\n")
    assert _matches(text.removeprefix("reload failed:\n"), message)
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


def test_a_large_file_loads_when_memory_allows(tmp_path: Path) -> None:
    # No fixed byte limit: 6 MB (over the 4 MB of earlier releases; 100,000 targets are 8 MB) loads.
    path = tmp_path / "large.yml"
    comment = "# " + "x" * 1020 + "\n"
    targets = "targets:\n" + "".join(f"  - {{address: '127.0.0.{i}:443', protocol: tls}}\n" for i in (1, 2, 3))
    path.write_text(comment * 6200 + targets)
    assert path.stat().st_size > 6 * 1024 * 1024
    assert [t.target for t in load_config(path).targets] == ["127.0.0.1:443", "127.0.0.2:443", "127.0.0.3:443"]
