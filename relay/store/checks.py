"""The write path's checks on an import document, each error collected (pure: no I/O).

`relay flags import` (and the API's import) refuses a document on the first error these find;
`relay validate` reports them all. One function for both, so a file that validates imports.
What LaunchDarkly's SDKs evaluate without error but a writer should hear of is a warning where the
caller collects warnings (relay.evaluation.builder), and an error where it does not (strict writes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.errors import ValidationError
from relay.evaluation import DataWarning, parse_flag, parse_items, parse_segment
from relay.evaluation.reader import Reader
from relay.wire import codec

TOP_LEVEL = {"flags": "flag", "segments": "segment"}  # document key -> item kind
MAX_REPORTED = 100  # errors a report lists before "… and N more"

Items = dict[str, dict[str, dict[str, Any]]]  # kind -> key -> canonical item


def _error_of(check: Callable[[], object]) -> ValidationError | None:
    try:
        check()
    except ValidationError as e:
        return e
    return None


def shape_errors(doc: Any) -> list[ValidationError]:
    """The top level: an object with "flags" and/or "segments" and nothing else. A misspelt key
    ("flagz") would otherwise read as a document with no flags, which `--replace` deletes all of."""
    not_object = _error_of(lambda: Reader(doc, "document"))
    if not_object is not None:
        return [not_object]
    errors = [
        ValidationError(str(key), 'unknown top-level key: a document has only "flags" and "segments"')
        for key in doc
        if key not in TOP_LEVEL
    ]
    if not any(key in doc for key in TOP_LEVEL):
        errors.append(ValidationError("document", 'has neither "flags" nor "segments"'))
    return errors


def _container_error(name: str, value: Any) -> ValidationError:
    """A "flags" or "segments" that is not an object, worded as parse_items words it."""
    error = _error_of(lambda: parse_items({name: value}))
    return error or ValidationError(name, "expected an object")


def check_size(kind: str, key: str, item_json: bytes, max_item_bytes: int) -> ValidationError | None:
    if len(item_json) > max_item_bytes:
        return ValidationError(
            f"{kind}s.{key}", f"{len(item_json):,} bytes as JSON, over max_item_bytes ({max_item_bytes:,})"
        )
    return None


def check_document(
    doc: Any, *, max_item_bytes: int, warnings: list[DataWarning] | None = None
) -> tuple[Items, list[ValidationError]]:
    """Every item of a document validated strictly, in document order; returns the canonical items
    that passed and every error found (one per item: its first). With a `warnings` list, the
    warnings of the items that passed are appended to it; without one they are errors."""
    items: Items = {kind: {} for kind in TOP_LEVEL.values()}
    errors = shape_errors(doc)
    if errors and not isinstance(doc, dict):
        return items, errors
    for name, kind in TOP_LEVEL.items():
        value = doc.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(_container_error(name, value))
            continue
        for map_key, item in value.items():
            # One item at a time through the import's own parser (map-key match, defaults, strict
            # types), so this reports every bad item where parse_items stops at the first.
            found: list[DataWarning] | None = None if warnings is None else []
            try:
                flags, segments = parse_items({name: {map_key: item}}, strict=True, default_version=1, warnings=found)
            except ValidationError as e:
                errors.append(e)
                continue
            data = (flags if kind == "flag" else segments)[map_key].data
            too_big = check_size(kind, map_key, codec.dumps(data), max_item_bytes)
            if too_big is not None:
                errors.append(too_big)
                continue
            items[kind][map_key] = data
            if warnings is not None and found:
                warnings.extend(found)
    return items, errors


def checked_items(doc: Any, *, max_item_bytes: int, warnings: list[DataWarning] | None = None) -> Items:
    """The document's items, or the first error (nothing is written when any item is bad);
    `warnings` as for check_document."""
    items, errors = check_document(doc, max_item_bytes=max_item_bytes, warnings=warnings)
    if errors:
        raise errors[0]
    return items


def item_warnings(kind: str, key: str, item: dict[str, Any]) -> list[DataWarning]:
    """The warnings of an item as stored (a flag a toggle rewrites, say), never refusing it."""
    found: list[DataWarning] = []
    parse = parse_flag if kind == "flag" else parse_segment
    try:
        parse(item, path=f"{kind}s.{key}", strict=True, warnings=found)
    except ValidationError:  # (not what relay wrote: nothing to add to the write's own outcome)
        return []
    return found
