"""The dependency rule: the evaluation core imports no I/O, framework or serialization library."""

from __future__ import annotations

import ast
from pathlib import Path

import relay

PACKAGE = Path(relay.__file__).parent
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
# Modules that may import each third-party library (STYLE.md's module map).
ONLY_IN = {"orjson": {"codec.py"}}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_evaluation_core_is_pure() -> None:
    files = list((PACKAGE / "evaluation").glob("*.py"))
    assert files
    for path in files:
        assert not (_imports(path) & FORBIDDEN_IN_CORE), f"{path.name} imports {_imports(path) & FORBIDDEN_IN_CORE}"


def test_evaluation_core_imports_nothing_above_it() -> None:
    for path in (PACKAGE / "evaluation").glob("*.py"):
        source = path.read_text()
        assert "from relay." not in source.replace("from relay.evaluation", "").replace("from relay.errors", "")


def test_library_imports_stay_in_their_module() -> None:
    for library, allowed in ONLY_IN.items():
        for path in PACKAGE.rglob("*.py"):
            if library in _imports(path):
                assert path.name in allowed, f"{path.relative_to(PACKAGE)} imports {library}"
