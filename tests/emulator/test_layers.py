"""The emulator's layer contract (DESIGN.md, "Emulator layout"), checked on every import statement,
including imports inside functions:

    cli -> (app | console) -> runtime -> (asl | integrations | cloud) -> services -> storage -> aws

console imports no other layer at all: it is a client of the served APIs (boto3 on the URLs cli/serve
injects), checked by test_the_console_reaches_the_emulator_only_through_its_apis.

A module imports only downward or within its own layer; in the middle layer, only integrations may
import asl (the port the interpreter owns). And no import cycle, at any size.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EMULATOR = Path(__file__).resolve().parents[2] / "emulator"

RANKS = {
    "aws": 0,
    "storage": 1,
    "services": 2,
    "asl": 3, "integrations": 3, "cloud": 3,
    "runtime": 4,
    "app": 5, "console": 5,
    "cli": 6,
    "__main__": 7,
}
# Edges allowed between different packages of the same layer.
SAME_LAYER = {("integrations", "asl")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(EMULATOR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every emulator module ``path`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from emulator.x import y` may name a submodule y or an attribute of x
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            names = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        else:
            continue
        found.update(name for name in names if name == "emulator" or name.startswith("emulator."))
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in EMULATOR.rglob("*.py")}


def existing(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name refers to (``emulator.a.b.attr`` -> ``emulator.a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    edges = {}
    for name, path in modules.items():
        targets = {existing(target, modules) for target in imports_of(path)}
        # a package's __init__ is not an edge of its own submodules, and "emulator" itself is a bare namespace
        edges[name] = {t for t in targets if t and t != name and t != "emulator" and not name.startswith(t + ".")}
    return edges


def forbidden_edges(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in edges.items():
        for target in targets:
            a, b = layer(source), layer(target)
            if a is None or b is None or a == b:
                continue
            if a not in RANKS or b not in RANKS:
                bad.append(f"{source} -> {target}: {a if a not in RANKS else b} is not a known layer")
            elif RANKS[a] < RANKS[b] or (RANKS[a] == RANKS[b] and (a, b) not in SAME_LAYER):
                bad.append(f"{source} -> {target}")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_import_goes_down_the_layers():
    assert forbidden_edges(graph()) == []


def test_there_is_no_import_cycle():
    assert cycles(graph()) == []


def test_every_package_is_a_known_layer():
    assert {layer(m) for m in all_modules() if layer(m)} <= set(RANKS)


# -- the checker itself catches what it must --------------------------------------------------
@pytest.mark.parametrize("source, target", [
    ("emulator.services.sagemaker.serve", "emulator.runtime"),
    ("emulator.asl.run", "emulator.integrations.lambda_"),
    ("emulator.storage.records", "emulator.services.s3.store"),
    ("emulator.cloud.deploy", "emulator.asl.parse"),
])
def test_an_upward_or_sideways_edge_is_reported(source, target):
    assert forbidden_edges({source: {target}}) == [f"{source} -> {target}"]


def test_a_cycle_hidden_in_a_function_is_found(tmp_path, monkeypatch):
    package = tmp_path / "emulator"
    (package / "services").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services" / "__init__.py").write_text("")
    (package / "services" / "a.py").write_text("from emulator.services import b\n")
    (package / "services" / "b.py").write_text("def late():\n    from emulator.services.a import x\n")
    monkeypatch.setattr(__import__(__name__), "EMULATOR", package)
    assert cycles(graph()) == [["emulator.services.a", "emulator.services.b"]]


def test_the_console_reaches_the_emulator_only_through_its_apis():
    edges = graph()
    outside = {f"{source} -> {target}" for source, targets in edges.items() if layer(source) == "console"
               for target in targets if layer(target) != "console"}
    assert outside == set()
