"""The house rules, checked on the source: each package is one layer, imports only go down, there
is no import cycle, and each third-party library with a sharp edge stays in its one home.

Layers, lowest first (docs/architecture.md draws them). A module may import its own package and
any lower layer, never a higher one. Every import counts, including those under TYPE_CHECKING and
inside functions: a cycle hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import relay

PACKAGE = Path(relay.__file__).parent
LAYERS = [
    "errors",
    "evaluation",
    "config",
    "wire",
    "runtime",
    "access",
    "store",
    "fanout",
    "experiments",
    "server",
    "admin",
    "app",
    "loadtest",
    "cli",
]
RANK = {name: i for i, name in enumerate(LAYERS)}
# The pure core imports no I/O, framework or serialization library.
FORBIDDEN_IN_CORE = {
    "asyncio",
    "redis",
    "starlette",
    "sse_starlette",
    "uvicorn",
    "orjson",
    "socket",
    "logging",
    "click",
}
# Where each library may be imported (paths relative to relay/, a folder stands for all below it).
ONLY_IN = {
    "orjson": ("wire/",),
    "redis": ("store/", "cli/common.py"),  # the CLI maps Redis's errors to its messages and exit codes
}
# uvicorn's public API (running a server) is used by `relay serve`; everything else of uvicorn's
# is private to it and touched only in server/uvicorn/.
UVICORN_PUBLIC = {"uvicorn"}
UVICORN_HOME = "server/uvicorn/"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("relay", *parts))] = path
    return out


MODULES = _modules()


@cache
def _imports(path: Path) -> frozenset[str]:
    """Every module name this file imports (absolute; relative imports resolved)."""
    names: set[str] = set()
    here = ".".join(("relay", *path.relative_to(PACKAGE).with_suffix("").parts))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: -node.level] if path.name != "__init__.py" else here.split(".")
                if path.name == "__init__.py" and node.level > 1:
                    anchor = here.split(".")[: -(node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            for alias in node.names:  # `from relay.wire import codec` imports relay.wire.codec
                if f"{base}.{alias.name}" in MODULES:
                    names.add(f"{base}.{alias.name}")
    return frozenset(names)


def _layer(module: str) -> str:
    top = module.split(".")[1] if module.count(".") else ""
    return top


def _relay_imports(module: str) -> set[str]:
    return {name for name in _imports(MODULES[module]) if name in MODULES and name != "relay"}


def test_every_package_has_a_layer() -> None:
    for module in MODULES:
        if module in {"relay", "relay.__main__"}:
            continue
        assert _layer(module) in RANK, f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)"


def test_imports_only_go_down() -> None:
    wrong = []
    for module in MODULES:
        if module in {"relay", "relay.__main__"}:
            continue
        for target in _relay_imports(module):
            if target == "relay" or _layer(target) == _layer(module):
                continue
            if RANK[_layer(target)] > RANK[_layer(module)]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports going up a layer:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle() -> None:
    graph = {m: _relay_imports(m) - {m} for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(sorted(" -> ".join(c) for c in cycles))


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("library", sorted(ONLY_IN))
def test_library_stays_in_its_home(library: str) -> None:
    homes = ONLY_IN[library]
    for path in MODULES.values():
        if any(name.split(".")[0] == library for name in _imports(path)):
            assert _relative(path).startswith(homes), f"{_relative(path)} imports {library} (allowed: {homes})"


def test_uvicorn_internals_only_in_their_home() -> None:
    for path in MODULES.values():
        if _relative(path).startswith(UVICORN_HOME):
            continue
        private = {n for n in _imports(path) if n.split(".")[0] == "uvicorn" and n not in UVICORN_PUBLIC}
        assert not private, f"{_relative(path)} imports uvicorn internals {private}: they belong in {UVICORN_HOME}"


def test_evaluation_core_is_pure() -> None:
    files = list((PACKAGE / "evaluation").rglob("*.py"))
    assert files
    for path in files:
        bad = {n.split(".")[0] for n in _imports(path)} & FORBIDDEN_IN_CORE
        assert not bad, f"{_relative(path)} imports {bad}"


def test_at_most_eight_modules_at_the_top() -> None:
    top = [p.name for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py"}]
    assert len(top) <= 8, top
