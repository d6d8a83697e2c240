"""Keep the one-way flow honest: judgement and dialogues import no I/O, web or metrics code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"

FORBIDDEN = {
    # Certificate analysis judges values: no event loop, sockets, HTTP or metrics.
    # (ssl is allowed only for the location of the system trust store.)
    "certs": ("asyncio", "aiohttp", "socket", "prometheus_client", "exporter.web", "exporter.metrics", "exporter.tls"),
    # A STARTTLS dialogue never imports ssl: the caller upgrades the connection.
    "starttls": ("ssl", "aiohttp", "prometheus_client", "exporter.web", "exporter.metrics", "exporter.certs"),
    # Probers observe; they never render metrics.
    "tls": ("prometheus_client", "exporter.web", "exporter.metrics"),
    "config": ("asyncio", "aiohttp", "prometheus_client", "exporter.web", "exporter.metrics"),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_their_layer(package: str) -> None:
    files = sorted((PACKAGE / package).glob("*.py"))
    assert files, f"exporter/{package} has no modules"
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in files
        for name in sorted(imports_of(path))
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package])
    ]
    assert offenders == []


def test_probe_code_never_imports_prometheus_client() -> None:
    for module in ("probe.py", "resolve.py", "scheduler.py", "store.py"):
        assert not any(n.startswith("prometheus_client") for n in imports_of(PACKAGE / module)), module
