"""The layout rules of docs/architecture.md, checked on the source (`ast`, no import needed).

* nothing outside `jshost/engine/` imports the Rust extension `jshost._engine`, but the RESP
  layer `jshost/resp.py`, which the extension implements too;
* nothing outside `jshost/store/` asks which store (or session) it has: no `isinstance` with a
  store class, no `hasattr` / `getattr` probe of a store or session;
* the host does not import the protocol layer (`jshost.commands`, `jshost.connection`, ...);
* no module-level import cycle among jshost's modules;
* no file in `jshost/` over `MAX_LINES` lines, but `jshost/errors.py` (every error text).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jshost"
MAX_LINES = 700
#: Allowed to be longer: every user-visible error text, in its one home.
LONG_FILES = {"jshost/errors.py"}
#: Modules besides `jshost/engine/` that are the Python side of a part of the extension.
#: (`jshost.fastpath`: the native call path runs JS functions itself, with the request parser's
#: buffer; it is the one way Python reaches that core.)
EXTENSION_FRONTS = {"jshost.resp", "jshost.fastpath"}
STORE_CLASSES = {"Store", "Session", "EmbeddedStore", "EmbeddedSession", "RemoteStore",
                 "RemoteSession"}
#: The protocol layer, which the host must not import.
PROTOCOL_MODULES = ("jshost.commands", "jshost.connection", "jshost.server", "jshost.resp")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _type_checking_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports run when the module is imported: top level, and inside top-level `try` /
    `if` blocks, but not under `if TYPE_CHECKING:` nor in functions and classes."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _type_checking_block(node):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                stack.extend(handler.body)


def all_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, wherever it is."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def imported_modules(node: ast.Import | ast.ImportFrom, known: dict[str, Path],
                     here: str) -> set[str]:
    """The jshost modules an import statement loads (a `from package import name` of a
    submodule loads that submodule)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:  # relative
        package = here.split(".")
        if not (known[here].name == "__init__.py"):
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    found = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.add(sub if sub in known else base)
    return found


def parsed() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text("utf-8"), str(path))
            for name, path in modules().items()}


def extension_imports(tree: ast.Module, known: dict[str, Path], here: str) -> list[int]:
    """The lines that import `jshost._engine`."""
    lines = []
    for node in all_imports(tree):
        loaded = imported_modules(node, known, here)
        if isinstance(node, ast.ImportFrom) and node.module == "jshost" and any(
                alias.name == "_engine" for alias in node.names):
            loaded.add("jshost._engine")
        if "jshost._engine" in loaded:
            lines.append(node.lineno)
    return lines


def test_only_the_engine_package_imports_the_extension() -> None:
    known = modules()
    offenders = [f"{rel(known[name])}:{line}" for name, tree in parsed().items()
                 if not (name == "jshost.engine" or name.startswith("jshost.engine."))
                 and name not in EXTENSION_FRONTS
                 for line in extension_imports(tree, known, name)]
    assert offenders == []


def test_the_extension_import_finder_finds_them() -> None:
    tree = ast.parse("import jshost._engine\nfrom jshost import _engine\n"
                     "from jshost._engine import Runtime\ndef f():\n    import jshost._engine\n"
                     "from jshost import errors\n")
    assert extension_imports(tree, modules(), "jshost.errors") == [1, 2, 3, 5]


def _mentions_store(node: ast.AST) -> bool:
    text = ast.unparse(node).lower()
    return "store" in text or "session" in text


def store_probes(tree: ast.Module) -> list[str]:
    """`isinstance` with a store class, and `hasattr` / `getattr` on a store or session."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id == "isinstance" and len(node.args) == 2:
            kinds = node.args[1]
            names = {n.id for n in ast.walk(kinds) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(kinds) if isinstance(n, ast.Attribute)}
            if names & STORE_CLASSES:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif node.func.id in ("hasattr", "getattr") and node.args and _mentions_store(
                node.args[0]):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_nothing_outside_the_store_asks_which_store_it_has() -> None:
    known = modules()
    offenders = [f"{rel(known[name])}:{probe}" for name, tree in parsed().items()
                 if not (name == "jshost.store" or name.startswith("jshost.store."))
                 for probe in store_probes(tree)]
    assert offenders == []


def test_the_store_probe_finder_finds_probes() -> None:
    tree = ast.parse("isinstance(self.store, EmbeddedStore)\n"
                     "isinstance(s, (int, store.RemoteSession))\n"
                     "getattr(ctx.store, 'serve_blocked', None)\n"
                     "hasattr(client.session, 'submit')\n"
                     "isinstance(reply, ErrorReply)\n"
                     "getattr(exc, 'text', exc)\n")
    assert [probe.split(":")[0] for probe in store_probes(tree)] == ["1", "2", "3", "4"]


def test_the_host_does_not_import_the_protocol_layer() -> None:
    known = modules()
    offenders = []
    for name, tree in parsed().items():
        if not (name == "jshost.host" or name.startswith("jshost.host.")):
            continue
        for node in all_imports(tree):
            for loaded in imported_modules(node, known, name):
                if loaded.startswith(PROTOCOL_MODULES):
                    offenders.append(f"{rel(known[name])}:{node.lineno} imports {loaded}")
    assert offenders == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of `graph` (as the list of its nodes, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle is not None:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle is not None:
                return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    """Module → the jshost modules it imports when it is imported. A package imported for one
    of its submodules is not an edge: Python has it in `sys.modules` (maybe half-initialised)
    and only the submodule's own code runs."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, tree in parsed().items():
        edges = set()
        for node in module_level_imports(tree):
            edges |= {m for m in imported_modules(node, known, name) if m in known}
        edges.discard(name)
        graph[name] = edges
    return graph


def test_no_module_level_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


@pytest.mark.parametrize("path", sorted(
    p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in {".py", ".js", ".ts"}),
    ids=rel)
def test_no_file_is_too_long(path: Path) -> None:
    if rel(path) in LONG_FILES:
        pytest.skip("the one home of every error text: allowed to be long")
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= MAX_LINES, f"{rel(path)} has {lines} lines"
