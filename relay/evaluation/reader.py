"""Typed reads from parsed JSON that fail with the JSON path and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from relay.errors import ValidationError


@dataclass(frozen=True, slots=True)
class DataWarning:
    """Something LaunchDarkly's SDKs evaluate without error but a writer should know about (a
    clause value its operator never matches, an index that evaluates to MALFORMED_FLAG, ...): the
    write path accepts it and reports it with its JSON path; strict writes refuse it instead."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def json_type(value: Any) -> str:
    """How a JSON value is described in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'the string "{shown}"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# JSON nesting allowed inside one item or context. orjson reads 1024 levels but writes only 255, so
# anything deeper that got in would fail every later encoding of it (a 500 per request or stream).
MAX_DEPTH = 64


def check_depth(value: Any, path: str, limit: int = MAX_DEPTH) -> None:
    """Raise ValidationError at the first array or object nested more than `limit` levels deep.
    Iterative, so even a Python value nested far past the recursion limit gets a clear error."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise ValidationError(_path_below(value, path, limit), f"nested more than {limit} levels deep")
        children = node.values() if type(node) is dict else node if type(node) is list else ()
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))


def _path_below(value: Any, path: str, limit: int) -> str:
    """The JSON path of the first container at depth `limit + 1` (built only for the error)."""
    stack: list[tuple[Any, str, int]] = [(value, path, 1)]
    while stack:
        node, where, depth = stack.pop()
        if depth > limit:
            return where
        if type(node) is dict:
            stack.extend((v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in reversed(node.items()))
        elif type(node) is list:
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in reversed(list(enumerate(node))))
    return path


def is_int(value: Any) -> bool:
    """A JSON integer: Python bools are ints, JSON booleans are not."""
    return isinstance(value, int) and not isinstance(value, bool)


class Reader:
    """One JSON object at a JSON path; each getter validates one property.

    The path is kept as a link to the parent and built only when an error needs it: most items
    are valid, and building a string per array element cost a fifth of a large load."""

    __slots__ = ("_index", "_name", "_parent", "data")

    def __init__(self, data: Any, path: str = "", *, parent: Reader | None = None, index: int = -1) -> None:
        self._parent = parent
        self._name = path
        self._index = index
        if type(data) is not dict:
            raise ValidationError(self.path, f"expected an object, got {json_type(data)}")
        self.data: dict[str, Any] = data

    @property
    def path(self) -> str:
        if self._parent is None:
            return self._name
        base = self._parent.at(self._name)
        return base if self._index < 0 else f"{base}[{self._index}]"

    def child(self, data: Any, name: str, index: int = -1) -> Reader:
        return type(self)(data, name, parent=self, index=index)

    def at(self, name: str) -> str:
        path = self.path
        return f"{path}.{name}" if path and name else path or name

    def fail(self, name: str, reason: str) -> NoReturn:
        raise ValidationError(self.at(name), reason)

    # The getters below repeat their type test inline: they run for every field of every item at
    # cold start, where a helper call per field costs measurably.
    def _bad(self, name: str, want: str, value: Any) -> NoReturn:
        self.fail(name, f"expected {want}, got {json_type(value)}")

    def opt_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and type(value) is not str:
            self._bad(name, "a string", value)
        return value

    def req_str(self, name: str) -> str:
        value = self.data.get(name)
        if type(value) is not str:
            if value is None:
                self.fail(name, "is required")
            self._bad(name, "a string", value)
        return value

    def opt_int(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is not None and type(value) is not int:
            self._bad(name, "an integer", value)
        return value

    def req_int(self, name: str) -> int:
        value = self.opt_int(name)
        if value is None:
            self.fail(name, "is required")
        return value

    def opt_number(self, name: str) -> int | float | None:
        value = self.data.get(name)
        if value is not None and type(value) is not int and type(value) is not float:
            self._bad(name, "a number", value)
        return value

    def opt_bool(self, name: str) -> bool:
        value = self.data.get(name)
        if value is not None and type(value) is not bool:
            self._bad(name, "a boolean", value)
        return value is True

    def opt_dict(self, name: str) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is not None and type(value) is not dict:
            self._bad(name, "an object", value)
        return value

    def opt_list(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if value is None:
            return []
        if type(value) is not list:
            self._bad(name, "an array", value)
        return value

    def req_list(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if type(value) is not list:
            if value is None:
                self.fail(name, "is required")
            self._bad(name, "an array", value)
        return value

    def str_list(self, name: str, *, required: bool = False) -> list[str]:
        items = self.req_list(name) if required else self.opt_list(name)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ValidationError(f"{self.at(name)}[{i}]", f"expected a string, got {json_type(item)}")
        return items

    def objects(self, name: str, *, required: bool = False) -> list[Reader]:
        items = self.req_list(name) if required else self.opt_list(name)
        cls = type(self)
        return [cls(item, name, parent=self, index=i) for i, item in enumerate(items)]


class TrustedReader(Reader):
    """For JSON that relay itself validated and wrote (items loaded back from Redis): the same
    reads without the type tests. Anything unexpected still raises, and the caller then re-reads
    the item with a validating Reader to report it properly."""

    __slots__ = ()

    def __init__(self, data: Any, path: str = "", *, parent: Reader | None = None, index: int = -1) -> None:
        self._parent = parent
        self._name = path
        self._index = index
        self.data = data

    def opt_str(self, name: str) -> str | None:
        return self.data.get(name)

    def req_str(self, name: str) -> str:
        return self.data[name]  # type: ignore[no-any-return]

    def opt_int(self, name: str) -> int | None:
        return self.data.get(name)

    def req_int(self, name: str) -> int:
        return self.data[name]  # type: ignore[no-any-return]

    def opt_number(self, name: str) -> int | float | None:
        return self.data.get(name)

    def opt_bool(self, name: str) -> bool:
        return self.data.get(name) is True

    def opt_dict(self, name: str) -> dict[str, Any] | None:
        return self.data.get(name)

    def opt_list(self, name: str) -> list[Any]:
        return self.data.get(name) or []

    def req_list(self, name: str) -> list[Any]:
        return self.data[name]  # type: ignore[no-any-return]
