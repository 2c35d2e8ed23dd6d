"""Loader for LaunchDarkly's sdk-test-harness server-side evaluation cases (PROTOCOL.md §15).

The YAML files live outside the repository (Apache-2.0, © LaunchDarkly) and are read at test time:
`$RELAY_SHARED_DIR/testdata/ld-sdk-test-harness/server-side-eval/*.yml`, where `RELAY_SHARED_DIR`
defaults to the `shared` directory next to the repository root. `load_cases()` expands every file
into `EvalCase`s exactly as the harness does (sdk-test-harness `data/substitutions.go`,
`mockld/sdk_data.go` and `sdktests/common_tests_eval.go`).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SKIPPED_FILES",
    "UNSUPPORTED_CAPABILITIES",
    "EvalCase",
    "data_dir",
    "expand_file",
    "load_cases",
    "load_yaml",
    "normalize_flag",
    "normalize_segment",
    "shared_dir",
]

# Files that test an API relay does not have. errors-wrong-type.yml checks the WRONG_TYPE error of
# typed variation methods (boolVariation on a string flag, ...); relay only evaluates to JSON values.
SKIPPED_FILES = frozenset({"errors-wrong-type.yml"})

# Harness capabilities relay cannot offer; a suite whose `requireCapability` names one is skipped,
# any other capability is assumed supported. "strongly-typed" is the typed-variation API (the only
# capability the server-side eval files use, and only in errors-wrong-type.yml).
UNSUPPORTED_CAPABILITIES = frozenset({"strongly-typed"})

_HARNESS_SUBDIR = Path("testdata", "ld-sdk-test-harness", "server-side-eval")


def shared_dir() -> Path:
    """The shared directory: `$RELAY_SHARED_DIR`, else `<repo>/../shared`."""
    env = os.environ.get("RELAY_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared"


def data_dir() -> Path:
    return shared_dir() / _HARNESS_SUBDIR


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One expanded evaluation. `flags`/`segments` are the normalized sdkData of its suite (each case
    owns a private copy). `expect_value` is what the SDK returns, i.e. `default` on an error."""

    id: str
    file: str
    suite: str
    name: str
    flags: Mapping[str, dict[str, Any]]
    segments: Mapping[str, dict[str, Any]]
    flag_key: str
    context: Any
    value_type: str | None
    default: Any
    expect_value: Any
    expect_variation: int | None
    expect_reason: dict[str, Any]


# --- YAML 1.2 ---------------------------------------------------------------------------------------
# The harness parses with Go's yaml.v3 (YAML 1.2 core schema). PyYAML implements YAML 1.1, where the
# key `on:` is a boolean (every flag would read as off), `2017-12-06` is a date, `010` is octal and
# `1:20` is sexagesimal. Replace the implicit resolvers for those tags with the 1.2 core ones.

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_REPLACED_TAGS = {
    _BOOL,
    _INT,
    _FLOAT,
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:value",  # YAML 1.1's `=` scalar, unknown to 1.2
}


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (merge keys `<<` and anchors still work)."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Yaml12Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # "010" is ten in YAML 1.2, not eight


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


Yaml12Loader.add_constructor(_BOOL, _construct_bool)
Yaml12Loader.add_constructor(_INT, _construct_int)
Yaml12Loader.add_constructor(_FLOAT, _construct_float)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=Yaml12Loader)


# --- substitution -------------------------------------------------------------------------------------


def _check_json_keys(value: Any, where: str = "$") -> None:
    # json.dumps would silently turn a non-string key into a string; the harness refuses such files.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: YAML map key {key!r} is not a string")
            _check_json_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_keys(item, f"{where}[{index}]")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _replace_variables(text: str, substitutions: Mapping[str, Any]) -> str:
    """One pass of the harness's `replaceVariables` over JSON text: `"<X>"` (quotes included) becomes
    X's JSON value, then a bare `<X>` becomes X's text (a string's characters, else its JSON)."""
    for name, value in substitutions.items():
        typed = _dumps(value)
        text = text.replace(f'"<{name}>"', typed)
        interpolated = value if isinstance(value, str) else typed
        # Outside string literals JSON text never contains "<", so a bare <X> is always inside a
        # string; escape the inserted text so that string's value becomes exactly X's text.
        text = text.replace(f"<{name}>", _dumps(interpolated)[1:-1])
    return text


def _parameter_sets(parameters: list[Any]) -> list[dict[str, Any]]:
    """A list of maps is used as is; a list of lists of maps expands into every combination, merged
    in list order, with the first list varying fastest (as `makeParameterPermutations` does)."""
    if not parameters:
        return []
    if isinstance(parameters[0], dict):
        return [dict(p) for p in parameters]
    if not all(isinstance(p, list) for p in parameters):
        raise ValueError("parameters must be a list of maps or a list of lists of maps")
    sets = []
    for combination in itertools.product(*reversed(parameters)):
        merged: dict[str, Any] = {}
        for part in reversed(combination):
            merged.update(part)
        sets.append(merged)
    return sets


def expand_file(text: str) -> list[dict[str, Any]]:
    """Expand one data file into its test suites (one per parameter set)."""
    document = load_yaml(text)
    _check_json_keys(document)
    constants: dict[str, Any] = document.get("constants") or {}
    parameter_sets = _parameter_sets(document.get("parameters") or [])
    source = _dumps(document)
    if not constants and not parameter_sets:
        return [document]
    if not parameter_sets:
        return [json.loads(_replace_variables(source, constants))]
    suites = []
    for parameters in parameter_sets:
        # Constants, then parameters, then constants again: a parameter's value may name a constant
        # (EXPECT: <IS_MATCH>) and a constant's value may name a parameter (value: <TYPE_DEFAULT>).
        expanded = _replace_variables(source, constants)
        expanded = _replace_variables(expanded, parameters)
        expanded = _replace_variables(expanded, constants)
        suites.append(json.loads(expanded))
    return suites


# --- sdkData normalization ----------------------------------------------------------------------------
# The harness round-trips every flag and segment through Go's ldmodel, which writes the canonical, fully
# populated JSON (PROTOCOL.md §6). Fill in what that writer adds and the Python SDK requires; unknown
# properties are kept (a real payload may carry them, and parsers must ignore them).


def _dict_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _normalize_clause(clause: dict[str, Any]) -> None:
    clause.setdefault("attribute", "")
    clause.setdefault("values", [])
    clause.setdefault("negate", False)


def _normalize_clauses(holder: dict[str, Any]) -> None:
    clauses = holder.setdefault("clauses", [])
    for clause in _dict_list(clauses):
        if isinstance(clause, dict):
            _normalize_clause(clause)


def _normalize_targets(targets: Any) -> None:
    for target in _dict_list(targets):
        if isinstance(target, dict):
            target.setdefault("values", [])


def _normalize_variation_or_rollout(holder: dict[str, Any]) -> None:
    rollout = holder.get("rollout")
    if isinstance(rollout, dict):
        rollout.setdefault("variations", [])


def _normalize_item(key: str, item: dict[str, Any]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    item["key"] = key
    if not item.get("version"):  # missing, null or 0 -> 1
        item["version"] = 1
    item.setdefault("deleted", False)
    item.setdefault("salt", "")
    return item


def normalize_flag(key: str, data: dict[str, Any]) -> dict[str, Any]:
    flag = _normalize_item(key, data)
    flag.setdefault("on", False)
    flag.setdefault("variations", [])
    flag.setdefault("offVariation", None)
    flag.setdefault("fallthrough", {})
    for name in ("prerequisites", "targets", "contextTargets", "rules"):
        flag.setdefault(name, [])
    if isinstance(flag["fallthrough"], dict):
        _normalize_variation_or_rollout(flag["fallthrough"])
    _normalize_targets(flag["targets"])
    _normalize_targets(flag["contextTargets"])
    for rule in _dict_list(flag["rules"]):
        if isinstance(rule, dict):
            _normalize_clauses(rule)
            _normalize_variation_or_rollout(rule)
    return flag


def normalize_segment(key: str, data: dict[str, Any]) -> dict[str, Any]:
    segment = _normalize_item(key, data)
    for name in ("included", "excluded", "includedContexts", "excludedContexts", "rules"):
        segment.setdefault(name, [])
    _normalize_targets(segment["includedContexts"])
    _normalize_targets(segment["excludedContexts"])
    for rule in _dict_list(segment["rules"]):
        if isinstance(rule, dict):
            _normalize_clauses(rule)
    return segment


def _normalize_sdk_data(sdk_data: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    sdk_data = sdk_data or {}
    flags = {k: normalize_flag(k, v) for k, v in (sdk_data.get("flags") or {}).items()}
    segments = {k: normalize_segment(k, v) for k, v in (sdk_data.get("segments") or {}).items()}
    return flags, segments


# --- cases --------------------------------------------------------------------------------------------


def _infer_default(flags: Mapping[str, dict[str, Any]], flag_key: str) -> Any:
    """The harness's `inferDefaultFromFlag`: a zero value of the type of the flag's first variation."""
    variations = (flags.get(flag_key) or {}).get("variations") or []
    if not variations:
        return None
    first = variations[0]
    if isinstance(first, bool):
        return False
    if isinstance(first, int | float):
        return 0
    if isinstance(first, str):
        return ""
    return None


def _suite_cases(file: str, suite: dict[str, Any], seen: dict[str, int]) -> Iterator[EvalCase]:
    flags, segments = _normalize_sdk_data(suite.get("sdkData"))
    suite_name = suite.get("name") or ""
    for index, evaluation in enumerate(suite.get("evaluations") or []):
        name = evaluation.get("name") or str(index)
        case_id = f"{file}/{suite_name}/{name}"
        # Parameter sets can produce the same names (a op b / b op a); keep ids unique.
        seen[case_id] = seen.get(case_id, 0) + 1
        if seen[case_id] > 1:
            case_id = f"{case_id}#{seen[case_id]}"
        flag_key = evaluation.get("flagKey", "")
        default = evaluation.get("default")
        if default is None:
            default = _infer_default(flags, flag_key)
        expect = evaluation.get("expect") or {}
        yield EvalCase(
            id=case_id,
            file=file,
            suite=suite_name,
            name=name,
            flags=copy.deepcopy(flags),
            segments=copy.deepcopy(segments),
            flag_key=flag_key,
            context=evaluation.get("context"),
            value_type=evaluation.get("valueType"),
            default=default,
            expect_value=expect.get("value"),
            expect_variation=expect.get("variationIndex"),
            expect_reason=expect.get("reason") or {},
        )


def load_cases(directory: Path | None = None) -> list[EvalCase]:
    """Every expanded evaluation of every `*.yml` in `directory` (default `data_dir()`), sorted by file."""
    directory = data_dir() if directory is None else directory
    cases: list[EvalCase] = []
    seen: dict[str, int] = {}
    for path in sorted(directory.glob("*.yml")):
        if path.name in SKIPPED_FILES:
            continue
        for suite in expand_file(path.read_text(encoding="utf-8")):
            if suite.get("requireCapability") in UNSUPPORTED_CAPABILITIES:
                continue
            cases.extend(_suite_cases(path.name, suite, seen))
    return cases
