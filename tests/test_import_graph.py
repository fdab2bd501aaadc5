"""No import circle in either package: the graph read from the source, TYPE_CHECKING imports included.

A circle hidden behind `if TYPE_CHECKING:` still ties two modules together (the type checker and
every reader follow it), so it counts here as much as an import that runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("kexec_bin", "kexec_build")


def modules() -> dict[str, Path]:
    """Every module of both packages by its dotted name (a package by its __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in (SOURCE / package).rglob("*.py"):
            parts = path.relative_to(SOURCE).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of both packages that `name` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            # `from package import module` imports the module; `from module import name`, the module.
            targets.update(
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in node.names
            )
    # A module's own packages are imported before it runs, whatever it says: no edge back to them
    # (`from . import _build_info` names a module the build writes, not the package's __init__).
    return {target for target in targets if target in known and not f"{name}.".startswith(f"{target}.")}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_the_source():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    # Spot checks that the reader sees what is there: a relative import, and one under TYPE_CHECKING.
    assert "kexec_bin.errors" in graph["kexec_bin.resolve"]
    assert "kexec_bin.api" in graph["kexec_bin"]  # kexec_bin/__init__.py imports it for the type checker only


def test_no_import_circle_in_either_package():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert [sorted(group) for group in circles(graph)] == []


def test_a_circle_is_found_when_there_is_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [{"a", "b", "c"}]
