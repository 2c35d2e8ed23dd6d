"""The JSON codec: errors that say where, and the output options relay uses."""

from __future__ import annotations

import math
from datetime import date

import pytest

from relay.errors import ValidationError
from relay.wire import codec


def test_loads_takes_bytes_and_str() -> None:
    assert codec.loads(b'{"a":[1,2.5,null,true]}') == {"a": [1, 2.5, None, True]}
    assert codec.loads('"é"') == "é"


@pytest.mark.parametrize("data", [b"", b"{", b"{'a': 1}", b"[1,]", b"NaN", b"\xff"], ids=repr)
def test_bad_json_is_a_validation_error_naming_where(data: bytes) -> None:
    with pytest.raises(ValidationError) as e:
        codec.loads(data, what="flags.checkout")
    assert e.value.path == "flags.checkout" and e.value.reason.startswith("invalid JSON: ")
    assert e.value.__cause__ is None and e.value.__suppress_context__  # orjson's error is not chained


def test_loads_says_body_by_default() -> None:
    with pytest.raises(ValidationError) as e:
        codec.loads(b"{")
    assert e.value.path == "body"


def test_dumps_is_compact_utf_8_in_the_given_key_order() -> None:
    assert codec.dumps({"b": 1, "a": "é/\n", "c": [None, 1.5]}) == '{"b":1,"a":"é/\\n","c":[null,1.5]}'.encode()


def test_dumps_options() -> None:
    value = {"b": 1, "a": [1]}
    assert codec.dumps(value, sort_keys=True) == b'{"a":[1],"b":1}'
    assert codec.dumps(value, pretty=True) == b'{\n  "b": 1,\n  "a": [\n    1\n  ]\n}'
    assert codec.dumps(value, pretty=True, sort_keys=True) == b'{\n  "a": [\n    1\n  ],\n  "b": 1\n}'


def test_dumps_default_encodes_what_json_cannot() -> None:
    assert codec.dumps({"d": date(2024, 6, 1)}) == b'{"d":"2024-06-01"}'  # orjson's own
    assert codec.dumps({"s": {3}}, default=sorted) == b'{"s":[3]}'
    with pytest.raises(TypeError):
        codec.dumps({"s": {3}})


def test_dumps_writes_null_for_non_finite_floats() -> None:
    # (orjson's behaviour, where the standard library's json writes NaN, which is not JSON)
    assert codec.dumps([math.nan, math.inf]) == b"[null,null]"
