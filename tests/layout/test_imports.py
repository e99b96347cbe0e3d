"""The arrows of design.md hold: no import circle, and each half imports only what it may.

A circle hidden by an import inside a function is still a circle, so the graph is built from
every import statement (grimp reads them all, those under `if TYPE_CHECKING` too).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import grimp
import pytest

PACKAGES = ("fcapi", "fedinfra", "runner", "bench")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.find_modules_directly_imported_by(node)):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("fcapi", "runner"),
        ("fcapi", "fedinfra"),
        ("fedinfra", "fcapi"),
        ("fedinfra", "runner"),
    ],
)
def test_halves_import_one_way(graph: grimp.ImportGraph, importer: str, forbidden: str) -> None:
    chains = graph.find_shortest_chains(importer=importer, imported=forbidden)
    assert not chains, f"{importer} must not import {forbidden}: {sorted(chains)}"


def test_client_never_imports_the_emulator(graph: grimp.ImportGraph) -> None:
    client = {"fcapi"} | {
        m for m in graph.find_descendants("fcapi") if not m.startswith("fcapi.emulator")
    }
    offenders = sorted(
        f"{m} -> {imported}"
        for m in client
        for imported in graph.find_modules_directly_imported_by(m)
        if imported.startswith("fcapi.emulator")
    )
    assert offenders == []


def test_runner_takes_only_the_inventory_side_of_fedinfra(graph: grimp.ImportGraph) -> None:
    allowed = {"fedinfra", "fedinfra.inventory", "fedinfra.problems"}
    offenders = sorted(
        f"{m} -> {imported}"
        for m in graph.find_descendants("runner") | {"runner"}
        for imported in graph.find_modules_directly_imported_by(m)
        if imported.startswith("fedinfra") and imported not in allowed
    )
    assert offenders == []


def test_client_runner_and_inventory_load_neither_emulator_nor_pulumi() -> None:
    """A runner-only install has neither extra: importing what it uses must not need them."""
    probe = textwrap.dedent(
        """
        import sys
        import fcapi.website, fcapi.controller, fcapi.cli, fedinfra.inventory
        import runner.cli, runner.api
        bad = sorted(m for m in sys.modules
                     if m.startswith(("fcapi.emulator", "pulumi", "fastapi", "uvicorn",
                                      "numpy", "yaml")))
        print(",".join(bad))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
