"""LaunchDarkly sdk-test-harness server-side evaluation cases, run through relay and through the real
Python SDK 9.18.4 evaluator (the oracle: if the SDK run fails, the loader is wrong, not relay)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from ldclient.context import Context as SDKContext
from ldclient.impl.evaluator import Evaluator
from ldclient.impl.events.types import EventFactory
from ldclient.impl.model import FeatureFlag, Segment

from relay.errors import InvalidContextError
from relay.evaluation import Snapshot, parse_context, parse_flag, parse_segment

try:  # rootdir-relative when tests/ is a package, else tests/ itself is on sys.path
    from tests import conformance
except ImportError:
    import conformance  # type: ignore[no-redef]

if not conformance.data_dir().is_dir():
    pytest.skip(
        f"sdk-test-harness data not found at {conformance.data_dir()} "
        "(set RELAY_SHARED_DIR to the directory holding testdata/ld-sdk-test-harness)",
        allow_module_level=True,
    )

CASES = conformance.load_cases()
Result = tuple[Any, int | None, dict[str, Any]]


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers compare by value, but a bool is never a number (True != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def assert_result(case: conformance.EvalCase, actual: Result) -> None:
    expected = (case.expect_value, case.expect_variation, case.expect_reason)
    if json_equal(list(actual), list(expected)):
        return
    repro = {
        "flagKey": case.flag_key,
        "flags": case.flags,
        "segments": case.segments,
        "context": case.context,
        "default": case.default,
    }
    pytest.fail(
        f"{case.id}\n  expected: {_show(expected)}\n  actual:   {_show(actual)}\n"
        f"  repro: {json.dumps(repro, sort_keys=True)}",
        pytrace=False,
    )


def _show(result: Result) -> str:
    value, variation, reason = result
    return f"value={json.dumps(value)} variation={variation} reason={json.dumps(reason)}"


def test_cases_loaded() -> None:
    # Guards against the parametrized tests passing vacuously (PROTOCOL.md §15: 722 expansions).
    assert len(CASES) >= 700
    assert len({case.id for case in CASES}) == len(CASES)
    files = {path.name for path in conformance.data_dir().glob("*.yml")} - conformance.SKIPPED_FILES
    assert {case.file for case in CASES} == files  # no file silently expanded to nothing


# --- relay ------------------------------------------------------------------------------------------


def evaluate_with_relay(case: conformance.EvalCase, *, as_written: bool = False) -> Result:
    """`as_written`: parsed as the write path parses (strict checks, each finding a warning), which
    must accept all of LaunchDarkly's own test data, and evaluate it the same."""
    strict, notes = (True, []) if as_written else (False, None)
    flags = {
        key: parse_flag(data, path=f"flags.{key}", strict=strict, warnings=notes) for key, data in case.flags.items()
    }
    segments = {
        key: parse_segment(data, path=f"segments.{key}", strict=strict, warnings=notes)
        for key, data in case.segments.items()
    }
    try:
        context = parse_context(case.context)
    except InvalidContextError:
        context = None
    evaluation = Snapshot(flags, segments).evaluate(case.flag_key, context)
    # As the SDK client does: no variation index means the caller's default is returned.
    value = case.default if evaluation.variation is None else evaluation.value
    return value, evaluation.variation, evaluation.reason.to_dict()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_relay(case: conformance.EvalCase) -> None:
    assert_result(case, evaluate_with_relay(case))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_relay_as_the_write_path_takes_it(case: conformance.EvalCase) -> None:
    assert_result(case, evaluate_with_relay(case, as_written=True))


# --- the real SDK, as an oracle for the loader -------------------------------------------------------

_OLD_USER_STRINGS = ("firstName", "lastName", "email", "country", "avatar", "ip")
_RESERVED_CUSTOM = frozenset({"kind", "key", "name", "anonymous", "_meta"})


def sdk_context(data: Any) -> SDKContext:
    """Context.from_dict refuses the old user format (no "kind"); convert it as Go's ldcontext does
    (PROTOCOL.md §11). Anything unusable yields an invalid context, as the SDK would."""
    if not isinstance(data, dict) or "kind" in data:
        return SDKContext.from_dict(data)
    key = data.get("key")
    if not isinstance(key, str):
        return SDKContext.from_dict({"kind": "user"})  # invalid: no key
    builder = SDKContext.builder(key).kind("user")
    builder._allow_empty_key(True)  # the old format allows "" (sdk's own __from_dict_old_user does this)
    if data.get("name") is not None:
        builder.name(data["name"])
    if data.get("anonymous") is not None:
        builder.anonymous(data["anonymous"])
    for attr in _OLD_USER_STRINGS:
        if data.get(attr) is not None:
            builder.set(attr, data[attr])
    custom = data.get("custom")
    if isinstance(custom, dict):
        for attr, value in custom.items():
            if attr not in _RESERVED_CUSTOM:
                builder.set(attr, value)
    for attr in data.get("privateAttributeNames") or []:
        builder.private(attr)
    return builder.build()


def evaluate_with_sdk(case: conformance.EvalCase) -> Result:
    flags: Mapping[str, FeatureFlag] = {k: FeatureFlag(v) for k, v in case.flags.items()}
    segments: Mapping[str, Segment] = {k: Segment(v) for k, v in case.segments.items()}
    evaluator = Evaluator(flags.get, segments.get, lambda key: (None, "NOT_CONFIGURED"), logging.getLogger(__name__))
    # The order of checks in LDClient._evaluate_internal.
    context = sdk_context(case.context)
    if not context.valid:
        return case.default, None, {"kind": "ERROR", "errorKind": "USER_NOT_SPECIFIED"}
    flag = flags.get(case.flag_key)
    if flag is None:
        return case.default, None, {"kind": "ERROR", "errorKind": "FLAG_NOT_FOUND"}
    detail = evaluator.evaluate(flag, context, EventFactory(False)).detail
    value = case.default if detail.variation_index is None else detail.value
    return value, detail.variation_index, detail.reason


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_sdk_oracle(case: conformance.EvalCase) -> None:
    assert_result(case, evaluate_with_sdk(case))
