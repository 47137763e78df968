"""The package's layering, checked from its source: who may import whom.

Providers sit below the HTTP layer, exceptions live in one module, and no two modules
need each other to load (imports needed only for type checking excepted).
"""

from __future__ import annotations

import ast
from pathlib import Path

import asgi_session

PACKAGE = Path(asgi_session.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["asgi_session", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, with_type_checking: bool) -> set[str]:
    """The asgi_session modules a module imports when it loads (top level only)."""
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If) and _is_type_checking(node):
                if with_type_checking:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                # `from asgi_session import _csrf` imports a module, not a name.
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    visit(tree.body)
    return {name for name in found if name.startswith("asgi_session")}


def _graph(*, with_type_checking: bool = False) -> dict[str, set[str]]:
    sources = {
        _module_name(path): ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))
    }
    graph: dict[str, set[str]] = {}
    for name, tree in sources.items():
        edges = {
            imported
            for imported in _imports(tree, with_type_checking=with_type_checking)
            if imported in sources and not name.startswith(imported + ".")
        }
        # Loading a module from outside its package loads the package first. (The root
        # package is always loaded before anything else, and a package is already
        # loading when its own modules run, so neither closes a circle.)
        for imported in list(edges):
            parts = imported.split(".")
            for end in range(2, len(parts)):
                package = ".".join(parts[:end])
                if not name.startswith(package + ".") and name != package:
                    edges.add(package)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def test_no_import_cycles_outside_type_checking() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_providers_sit_below_the_http_layer_and_the_flow() -> None:
    """Providers see only their plug-in interface: no routes, no request internals, and
    nothing of the sign-in flow they hand their identities to."""
    graph = _graph(with_type_checking=True)
    above = {
        "asgi_session._routes",
        "asgi_session._middleware",
        "asgi_session._pages",
        "asgi_session._context",
        "asgi_session._signin",
        "asgi_session._accounts",
    }
    for name, imported in graph.items():
        if name.startswith("asgi_session.providers"):
            assert not imported & above, f"{name} imports {sorted(imported & above)}"


def test_the_plug_in_interface_imports_no_provider() -> None:
    imported = _graph(with_type_checking=True)["asgi_session.providers._base"]
    assert {name for name in imported if name.startswith("asgi_session.providers")} == set()


def test_providers_build_no_http_responses() -> None:
    for path in (PACKAGE / "providers").glob("*.py"):
        assert "starlette.responses" not in path.read_text(), path.name


def test_exceptions_are_defined_in_errors_only() -> None:
    from asgi_session import errors

    # Private signals never leave the module that raises them.
    allowed = {
        ("_routes.py", "BodyTooLarge"),
        ("_jwt.py", "_SessionEnded"),
        ("_totp.py", "SealedValueError"),
        ("passwords.py", "_Unreadable"),
    }
    exception_bases = {*errors.__all__, "Exception", "BaseException", "ValueError"}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(base, ast.Name) and base.id in exception_bases)
                or (isinstance(base, ast.Attribute) and base.attr in exception_bases)
                or (isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception")))
                for base in node.bases
            ):
                assert (path.name, node.name) in allowed, f"{path.name}: {node.name}"


def _private_members(tree: ast.Module) -> set[str]:
    """``_names`` a module's classes define: methods and attributes set on ``self``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            names.add(node.attr)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def test_no_module_reaches_into_another_modules_private_names() -> None:
    trees = {path: ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}
    members = {path: _private_members(tree) for path, tree in trees.items()}
    for path, tree in trees.items():
        elsewhere = set().union(*(names for other, names in members.items() if other != path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in elsewhere - members[path]
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                raise AssertionError(f"{path.name}:{node.lineno} reaches into .{node.attr}")


def test_only_the_request_context_changes_a_session() -> None:
    users = [
        path.name
        for path in PACKAGE.rglob("*.py")
        if "replace_contents(" in path.read_text() and path.name != "_session.py"
    ]
    assert users == ["_context.py"]
