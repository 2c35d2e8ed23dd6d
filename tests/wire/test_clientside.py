"""evalx bodies from cached fragments: always what encoding every flag's state afresh gives."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from relay.errors import InvalidContextError
from relay.evaluation import Evaluation, Flag, Snapshot, parse_context, parse_flag, parse_segment
from relay.evaluation.model import malformed
from relay.evaluation.reader import MAX_DEPTH
from relay.loadtest.seed import ruleset
from relay.server.routes.client import with_reasons
from relay.wire.clientside import b64url_bytes, context_from_json, evalx_body, flag_state, for_browsers


def _fresh(flags: dict[str, Flag], results: dict[str, Evaluation], with_reasons: bool) -> dict[str, Any]:
    return {k: flag_state(flags[k], r, with_reasons) for k, r in results.items()}


def _snapshot() -> tuple[dict[str, Flag], Snapshot]:
    doc = ruleset(60, 6, seed=3)
    for f in doc["flags"].values():
        f |= {"version": 1, "clientSideAvailability": {"usingEnvironmentId": True, "usingMobileKey": True}}
        f["trackEvents"] = f["key"].endswith("7")
    for s in doc["segments"].values():
        s["version"] = 1
    flags = {k: parse_flag(v) for k, v in doc["flags"].items()}
    return flags, Snapshot(flags, {k: parse_segment(v) for k, v in doc["segments"].items()})


def test_bodies_match_fresh_encoding_with_and_without_reasons() -> None:
    flags, snapshot = _snapshot()
    for i in range(200):
        ctx = parse_context({"kind": "user", "key": f"user-{i}", "plan": ["free", "pro"][i % 2], "age": 20 + i % 50})
        results = snapshot.evaluate_all(ctx, for_browsers)
        for reasons in (False, True, False):  # the same results objects, both forms, in turn
            assert orjson.loads(evalx_body(flags, results, reasons)) == _fresh(flags, results, reasons)


def test_bodies_from_known_results_match_fresh_encoding() -> None:
    flags, snapshot = _snapshot()
    slow = 0
    for i in range(300):
        ctx = parse_context({"kind": "user", "key": f"user-{i}", "plan": ["free", "pro"][i % 2], "age": 20 + i % 50})
        results = snapshot.evaluate_all(ctx, for_browsers)
        slow += not all(hasattr(getattr(r, "memo", None), "plain") for r in results.values())
        for _ in range(2):  # the second time every result has been met before
            assert orjson.loads(evalx_body(flags, results, False)) == _fresh(flags, results, False)
    assert slow < 300  # later contexts land on known results only: the comprehension served them


def test_no_result_object_belongs_to_two_flags() -> None:
    # What evalx_body's fragments kept on results rely on: every parse of a flag builds its own results
    # (error results excepted). Two parses of the same flags, and the flags among themselves.
    doc = ruleset(60, 6, seed=5)
    for item in (*doc["flags"].values(), *doc["segments"].values()):
        item["version"] = 1
    segments = {k: parse_segment(v) for k, v in doc["segments"].items()}
    owners: dict[int, tuple[Flag, Evaluation]] = {}
    for _ in range(2):
        flags = {k: parse_flag(v) for k, v in doc["flags"].items()}
        snapshot = Snapshot(flags, segments)
        for i in range(200):
            ctx = parse_context({"kind": "user", "key": f"u{i}", "plan": ["free", "pro", "enterprise"][i % 3]})
            for key, result in snapshot.evaluate_all(ctx).items():
                if result.is_error:
                    continue
                # (Kept alive in `owners`, so an id seen again is the same object.)
                owner, _ = owners.setdefault(id(result), (flags[key], result))
                assert owner is flags[key], f"{key} returned another flag's result"


def test_shared_error_results_are_encoded_for_each_flag() -> None:
    # A bad variation index evaluates to the MALFORMED_FLAG constant, the same object for every flag.
    bad = {"on": True, "variations": [1, 2], "fallthrough": {"variation": 5}}
    a = parse_flag({"key": "a", "version": 3, **bad}, strict=False)
    b = parse_flag({"key": "b", "version": 4, **bad}, strict=False)
    ctx = parse_context({"key": "k"})
    ra, rb = Snapshot({"a": a}, {}).evaluate_all(ctx), Snapshot({"b": b}, {}).evaluate_all(ctx)
    assert ra["a"] is rb["b"] and ra["a"].is_error
    for _ in range(3):
        assert orjson.loads(evalx_body({"a": a}, ra, False)) == _fresh({"a": a}, ra, False)
    for _ in range(3):
        assert orjson.loads(evalx_body({"b": b}, rb, False)) == _fresh({"b": b}, rb, False)


def test_results_made_per_request_are_encoded_and_not_kept() -> None:
    flag = parse_flag({"key": "f", "version": 1, "on": True, "variations": [1, 2], "fallthrough": {"variation": 0}})
    for i in range(5):
        result = malformed((f"p{i}",))  # a new object every time, as the SDKs' error results are
        body = orjson.loads(evalx_body({"f": flag}, {"f": result}, False))
        assert body == _fresh({"f": flag}, {"f": result}, False)
        assert not hasattr(result, "memo")  # error results are never kept (they can be shared)


def test_a_changed_flag_is_encoded_from_its_own_fields() -> None:
    data = {"key": "f", "version": 1, "on": True, "variations": [1, 2], "fallthrough": {"variation": 0}}
    old, new = parse_flag(data), parse_flag({**data, "version": 2, "trackEvents": True})
    ctx = parse_context({"key": "k"})
    for _ in range(2):
        before = Snapshot({"f": old}, {}).evaluate_all(ctx)
        after = Snapshot({"f": new}, {}).evaluate_all(ctx)
        assert before["f"] is not after["f"]  # a changed flag's results are its own objects
        assert orjson.loads(evalx_body({"f": old}, before, False))["f"]["version"] == 1
        changed = orjson.loads(evalx_body({"f": new}, after, False))["f"]
        assert (changed["version"], changed["trackEvents"]) == (2, True)


_BASE64ISH = st.text(alphabet="ABCabc012+/-_=!. \u00e9\n")  # valid, invalid and non-ASCII characters


@settings(max_examples=500, derandomize=True, database=None)
@given(st.one_of(_BASE64ISH, st.binary().map(lambda b: base64.urlsafe_b64encode(b).decode())))
def test_base64url_decoding_is_the_standard_librarys(text: str) -> None:
    def outcome(decode: Callable[[str], bytes]) -> bytes | str:
        try:
            return decode(text)
        except binascii.Error:
            return "binascii.Error"
        except ValueError:
            return "ValueError"

    assert outcome(b64url_bytes) == outcome(lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))


@pytest.mark.parametrize(
    "query",
    [b"", b"withReasons=true", b"withReasons=false", b"xwithReasons=true", b"a=1&withReasons=true&b=2",
     b"withReasons=true&withReasons=false", b"withReasons=false&withReasons=true", b"withReasons=True",
     b"withReasons=truex", b"withReasons", b"h=abc&withReasons=true"],
)  # fmt: skip
def test_with_reasons_reads_the_query_as_starlette_does(query: bytes) -> None:
    assert with_reasons(query) == (QueryParams(query).get("withReasons") == "true")


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 5 * MAX_DEPTH])
@pytest.mark.parametrize("brackets_in_strings", [0, 3 * MAX_DEPTH])
def test_context_depth_is_checked_however_the_json_looks(depth: int, brackets_in_strings: int) -> None:
    # The depth walk is skipped only where the text's brackets prove it shallow.
    note = ("{[" * brackets_in_strings).encode()
    nested = b"[" * (depth - 1) + b"1" + b"]" * (depth - 1)  # in the context object: `depth` levels
    raw = b'{"kind":"user","key":"k","note":"' + note + b'","a":' + nested + b"}"
    if depth > MAX_DEPTH:
        with pytest.raises(InvalidContextError, match="nested more than"):
            context_from_json(raw)
    else:
        assert context_from_json(raw).singles[0].key == "k"
