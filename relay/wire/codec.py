"""Every byte of JSON in and out of relay goes through here (the only orjson import)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from relay.errors import ValidationError
from relay.evaluation import Evaluation


def loads(data: bytes | str, *, what: str = "body") -> Any:
    """Parse JSON, or raise ValidationError saying where it broke."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ValidationError(what, f"invalid JSON: {e}") from None


def dumps(
    value: Any, *, pretty: bool = False, sort_keys: bool = False, default: Callable[[Any], Any] | None = None
) -> bytes:
    option = (orjson.OPT_INDENT_2 if pretty else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return orjson.dumps(value, option=option or None, default=default)


def evaluation_detail(result: Evaluation) -> dict[str, Any]:
    """An evaluation as LaunchDarkly's SDKs describe it: value, variationIndex, reason."""
    return {"value": result.value, "variationIndex": result.variation, "reason": result.reason.to_dict()}
