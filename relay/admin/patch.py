"""PATCH bodies: JSON Merge Patch (RFC 7396: a kill switch is `{"on": false}`) and JSON Patch (RFC 6902).

Both apply to the stored item and give the whole new item, which then goes through the write path like a PUT.
A JSON Patch may come as the bare array of operations, or as `{"patch": [...], "comment": "..."}`.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from relay.errors import UnsupportedMediaType, ValidationError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 §2: an object patch merges key by key, `null` removing a key; anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: dict[str, Any], operations: Any) -> Any:
    """RFC 6902: the operations applied in order, all or nothing (a failed `test` refuses the whole patch)."""
    if not isinstance(operations, list):
        raise ValidationError("patch", "a JSON Patch is an array of operations")
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise ValidationError(f"patch[{i}]", 'each operation is an object with "op" and "path" strings')
    try:
        return jsonpatch.JsonPatch(operations).apply(target, in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise ValidationError("patch", f"a test operation failed: {e}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, ValueError) as e:
        raise ValidationError("patch", f"cannot apply: {e}") from None


def apply(media_type: str, current: dict[str, Any], body: Any) -> tuple[Any, str]:
    """The patched item and the comment the body carried ("" if none), by the request's media type."""
    if media_type == MERGE_PATCH:
        if not isinstance(body, dict):
            raise ValidationError("patch", "a merge patch of an item is a JSON object")
        comment = body.pop("comment", "")
        return merge_patch(current, body), _comment(comment)
    if media_type == JSON_PATCH:
        comment: Any = ""
        if isinstance(body, dict):
            comment, body = body.get("comment", ""), body.get("patch")
        return json_patch(current, body), _comment(comment)
    raise UnsupportedMediaType(f"expected Content-Type: {MERGE_PATCH} or {JSON_PATCH}")


def _comment(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError("comment", "expected a string")
    return value
