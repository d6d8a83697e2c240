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
    # Sources observe; they never judge, render metrics or serve.
    "sources": (
        "prometheus_client",
        "exporter.web",
        "exporter.metrics",
        "exporter.pipeline",
        "exporter.schedule.store",
    ),
    "tls": ("prometheus_client", "exporter.web", "exporter.metrics"),
    # The web layer sees the narrow service interface, never the application.
    "web": ("exporter.app", "exporter.schedule.scheduler", "exporter.pipeline"),
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
    for module in (
        "pipeline.py",
        "judge/assess.py",
        "judge/scan.py",
        "sources/resolve.py",
        "schedule/scheduler.py",
        "schedule/store.py",
        "schedule/changes.py",
    ):
        assert not any(n.startswith("prometheus_client") for n in imports_of(PACKAGE / module)), module


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """exporter module -> the exporter modules it imports (``from a import b`` counts a.b when b is a module)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each once (depth-first search over the graph)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = path[path.index(node) :]
            if sorted(cycle) not in [sorted(c) for c in found]:
                found.append(cycle)
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return found


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert "exporter.app" in graph["exporter.cli"]  # the walk sees real edges
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded to top-level units: a package (exporter.config) or a loose module."""

    def unit(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else module

    folded: dict[str, set[str]] = {}
    for module, edges in graph.items():
        folded.setdefault(unit(module), set()).update(unit(e) for e in edges if unit(e) != unit(module))
    return folded


def test_packages_import_each_other_one_way() -> None:
    """No loop between packages either (config -> tls -> certs -> config was one): each stage only
    leans on the ones before it."""
    folded = package_graph(import_graph())
    assert "exporter.config" in folded["exporter.certs"]  # the fold sees real edges
    assert cycles(folded) == []


# The classes that tell sources apart: only the sources themselves (and the config that builds
# their jobs) may ask for them; every later stage reads what the job describes (served, kind ...).
SOURCE_CLASSES = frozenset(
    {"Target", "FileTarget", "BundleURL", "FileOutcome", "TLSSource", "FileSource", "BundleSource"}
)
SOURCE_HOMES = ("exporter/sources/", "exporter/config/")


def _source_branches(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)} if len(node.args) > 1 else set()
            if names & SOURCE_CLASSES:
                found.append(f"line {node.lineno}: isinstance(..., {', '.join(sorted(names & SOURCE_CLASSES))})")
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value == "file" for o in operands):
                found.append(f"line {node.lineno}: compares with 'file'")
    return found


def test_nothing_after_the_sources_asks_which_source_a_job_came_from() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if relative.startswith(SOURCE_HOMES):
            continue
        branches = _source_branches(ast.parse(path.read_text()))
        if branches:
            offenders[relative] = branches
    assert offenders == {}


def test_the_source_branch_finder_finds_one() -> None:
    code = "if isinstance(job, Target):\n    pass\nif protocol == 'file':\n    pass\n"
    assert _source_branches(ast.parse(code)) == ["line 1: isinstance(..., Target)", "line 3: compares with 'file'"]


def test_few_modules_lie_loose() -> None:
    """The stages are folders; at the top only the entry points, the application, the pipeline that
    joins the stages and the result model they pass along."""
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == [
        "__init__.py",
        "__main__.py",
        "app.py",
        "cli.py",
        "demo.py",
        "healthcheck.py",
        "pipeline.py",
        "results.py",
    ]
