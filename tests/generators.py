"""Seeded random generators of LaunchDarkly-shaped data (flags, segments, contexts).

Everything is driven by one `random.Random(seed)`, so a seed always yields the same dataset.
`generate_dataset` is the adversarial generator used by the differential test: it deliberately
produces malformed-but-well-typed data (bad indexes, invalid attribute refs, cycles, empty
rollouts, ...) as well as ordinary data. Value pools are small and shared between clauses and
contexts so that clauses match often instead of almost never.

`realistic_flag` / `realistic_dataset` / `realistic_contexts` produce clean data (accepted by
`parse_flag(..., strict=True)`) of a typical shape, for benchmarks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

JSON = Any

# --- pools -------------------------------------------------------------------------------------

KIND_KEYS: dict[str, list[str]] = {
    "user": ["u0", "u1", "u2", "u3", "u4", "u5", "user:colon", "pct%key", "zoë", "日本"],
    "org": ["o0", "o1", "o2", "u1"],  # "u1" also a user key: targets must not mix kinds up
    "device": ["d0", "d1", "d2"],
    "team.x-1": ["t0", "t1"],
}
KINDS = list(KIND_KEYS)
ABSENT_KIND = "nosuchkind"  # referenced by clauses/rollouts, never present in a context

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z in epoch ms
POOLS: dict[str, list[JSON]] = {
    "email": [
        "ann@example.com",
        "bob@test.org",
        "carol@Example.com",
        "dave@example.com.au",
        "eve",
        "",
        "ü@example.com",
    ],
    "country": ["DE", "FR", "US", "de"],
    "num": [0, 17, 18, 30, 30.0, 30.5, 99.5, -1, 100, 9007199254740993],
    "int": [33333, 99999, 0, 7, -5, 123456789012],
    "time": [
        T0,
        T0 - 1,
        T0 + 1,
        T0 + 3_600_000,
        T0 - 86_400_000,
        T0 + 0.5,
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20.000Z",
        "2023-11-14T23:13:20+01:00",
        "2023-11-14T22:13:20.001Z",
        "2023-11-14T22:13:19.999999999Z",
        "2023-11-15T00:00:00-05:00",
        "2023-11-14",
        "1700000000000",
        "not a date",
        "2023-11-14t22:13:20z",
        "2023-11-14 22:13:20Z",
        # exotic: no colon in the offset, leap second, hour 24, empty fraction, comma fraction
        "2023-11-14T22:13:20+0100",
        "2016-12-31T23:59:60Z",
        "2023-11-14T24:00:00Z",
        "2023-11-14T22:13:20.Z",
        "2023-11-14T22:13:20,5Z",
        -1000,
        10**15,
    ],
    "semver": [
        "1.2.3",
        "2.0.0-rc.1",
        "2.0.0-rc.10",
        "2.0.0-rc.2",
        "2",
        "2.1",
        "2.0.0",
        "2.0.0+build.5",
        "1.0.0-alpha",
        "1.0.0-alpha.beta",
        "v1.0.0",
        "02.0.0",
        "1.2.3.4",
        "2-rc",
        "",
        "1.0.0-alpha.01",
        "1.0",
        "1.0.0-rc.1+build.2",
        "1.2.3-rc.1.2",
        " 1.0.0",
        "1.0.0-",
        "2.0.0-RC.1",
        "10.20.30",
        "2.0-rc.1",
        "1.2.3-0",
    ],
    "bool": [True, False],
    "group": ["beta", "alpha", "staff", "Beta"],
    "name": ["Ann", "Bob", "Zoë", ""],
    "kind": [*KINDS, "multi", ABSENT_KIND],
}
POOLS["key"] = sorted({k for keys in KIND_KEYS.values() for k in keys})

# Operands for string-ish operators, per attribute family (mixed with wrong-typed ones).
STRING_OPERANDS: dict[str, list[JSON]] = {
    "email": ["@example.com", "ann", "example", "@test.org", ".com", "", "Example"],
    "country": ["D", "E", "U", "de", "DE"],
    "key": ["u", "o", "0", ":", "%", "u1"],
    "kind": ["u", "or", "device", "team", "user"],
    "group": ["be", "ta", "staff", "B"],
    "name": ["A", "nn", "ë"],
    "semver": ["2.", "rc", "1"],
}
REGEXES: dict[str, list[str]] = {
    "email": [
        "^[ab]",
        r"example\.com$",
        "(?i)EXAMPLE",
        "^$",
        "[",
        "@",
        r"\w+@",
        "(?P<u>a)n",
        r"\A[üa]",
        "a++",
        "(?=b)b",
    ],
    "country": ["^[DF]", "^..$", "e"],
    "key": [r"^u[0-3]$", "o", ":", "(", r"^\w+$", "ë"],
    "kind": ["^[uo]", "^device$", r"\."],
    "group": ["^b", "A"],
    "name": ["^A", "ë$"],
    "semver": [r"^\d+\.\d+\.\d+$", "rc"],
}
SEMVER_OPERANDS: list[JSON] = ["2.0.0", "1.2.3", "2", "2.0.0-rc.2", "v2", "2.0.0+other", "1.0.0-alpha.1", 2]
NUMERIC_OPERANDS: list[JSON] = [17, 18, 30, 30.5, 0, 99.5, 100.0, 9007199254740992]
TIME_OPERANDS: list[JSON] = [
    T0,
    T0 + 1,
    T0 - 1,
    "2023-11-14T22:13:20Z",
    "2023-11-14T22:13:20.0005Z",
    "2023-11-14T20:00:00-03:00",
    "2023-11-14",
    T0 + 0.25,
]
WRONG_TYPED: list[JSON] = [True, False, "30", 30, None, ["DE"], {"country": "DE"}, 1]

# (weight, path components, value family). `address`, `nested` and `groups` hold composite values.
PATHS: list[tuple[int, tuple[str, ...], str]] = [
    (10, ("email",), "email"),
    (6, ("country",), "country"),
    (6, ("age",), "num"),
    (4, ("score",), "int"),
    (7, ("created",), "time"),
    (7, ("version",), "semver"),
    (3, ("beta",), "bool"),
    (5, ("groups",), "group"),
    (5, ("address", "country"), "country"),
    (2, ("address", "zip"), "num"),
    (2, ("address",), "address"),
    (3, ("nested", "2"), "semver"),
    (2, ("nested", "a", "b"), "email"),
    (2, ("a/b",), "country"),
    (2, ("t~x",), "num"),
    (2, ("/slash",), "email"),
    (4, ("key",), "key"),
    (2, ("name",), "name"),
    (2, ("anonymous",), "bool"),
    (5, ("kind",), "kind"),
    (1, ("missing",), "email"),
    (1, ("_meta",), "email"),
    (1, ("_meta", "privateAttributes"), "email"),
    (1, ("firstName",), "name"),
]
STRING_FAMILIES = {"email", "country", "key", "kind", "group", "name", "semver"}
OPS_BY_FAMILY: dict[str, list[str]] = {
    **{f: ["in", "startsWith", "endsWith", "contains", "matches"] for f in STRING_FAMILIES},
    "semver": ["in", "semVerEqual", "semVerLessThan", "semVerGreaterThan", "startsWith", "matches"],
    "num": ["in", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"],
    "int": ["in", "lessThan", "greaterThanOrEqual"],
    "time": ["before", "after", "before", "after", "lessThan", "greaterThan", "in"],
    "bool": ["in"],
    "address": ["in"],
}
ALL_OPS = [
    "in",
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
    "before",
    "after",
    "semVerEqual",
    "semVerLessThan",
    "semVerGreaterThan",
    "segmentMatch",
]
INVALID_REFS = ["//x", "/a~2", "/", "/a/", "/x~", ""]
BUCKET_BY = ["key", "score", "email", "beta", "age", "missing", "name", "/address/zip", "/score", "", "/~1slash"]


def _weighted(rng: random.Random, options: list[tuple[float, Any]]) -> Any:
    return rng.choices([o for _, o in options], weights=[w for w, _ in options])[0]


def _escape(component: str) -> str:
    return component.replace("~", "~0").replace("/", "~1")


# --- contexts ----------------------------------------------------------------------------------


def _value(rng: random.Random, family: str) -> JSON:
    if family == "address":
        if rng.random() < 0.1:
            return "Somewhere 1"
        addr: dict[str, JSON] = {}
        if rng.random() < 0.8:
            addr["country"] = rng.choice(POOLS["country"])
        if rng.random() < 0.5:
            addr["zip"] = rng.choice([1, 30, True, "30"])
        return addr
    if family == "groups":
        if rng.random() < 0.1:
            return rng.choice(["beta", [["beta"]], [1, True], [], [None, "beta"], [{"country": "DE"}]])
        return rng.sample(POOLS["group"], rng.randint(0, 3))
    if family == "nested":
        if rng.random() < 0.15:
            return ["x", "y", "z"]  # a path component indexing an array finds nothing
        return {"2": rng.choice(POOLS["semver"]), "a": {"b": rng.choice(POOLS["email"])}}
    return rng.choice(POOLS[family])


CONTEXT_ATTRS: dict[str, str] = {
    "email": "email",
    "country": "country",
    "age": "num",
    "score": "int",
    "created": "time",
    "version": "semver",
    "beta": "bool",
    "groups": "groups",
    "address": "address",
    "nested": "nested",
    "a/b": "country",
    "t~x": "num",
    "/slash": "email",
}


def _attributes(rng: random.Random, names: list[str], p: float = 0.6) -> dict[str, JSON]:
    attrs: dict[str, JSON] = {}
    for name in names:
        if rng.random() < p:
            # A wrongly typed value now and then, and null (= not set) rarely.
            if rng.random() < 0.08:
                attrs[name] = rng.choice([*WRONG_TYPED[:5], {"b": 1}])
            else:
                attrs[name] = _value(rng, CONTEXT_ATTRS[name])
    return attrs


def _single_body(rng: random.Random, kind: str) -> dict[str, JSON]:
    body: dict[str, JSON] = {"key": rng.choice(KIND_KEYS[kind])}
    if rng.random() < 0.5:
        body["name"] = rng.choice([*POOLS["name"], None])
    if rng.random() < 0.3:
        body["anonymous"] = rng.random() < 0.5
    body.update(_attributes(rng, list(CONTEXT_ATTRS), 0.85 if kind == "user" else 0.5))
    if rng.random() < 0.2:
        body["_meta"] = {"privateAttributes": ["email", "/address/country"]}
    return body


def _old_user(rng: random.Random) -> dict[str, JSON]:
    user: dict[str, JSON] = {"key": rng.choice(KIND_KEYS["user"])}
    for builtin, family in [("email", "email"), ("country", "country"), ("name", "name")]:
        if rng.random() < 0.5:
            user[builtin] = rng.choice([_value(rng, family), None])
    for builtin in ["firstName", "lastName", "avatar", "ip"]:
        if rng.random() < 0.3:
            user[builtin] = rng.choice(["Ann", "x", None])
    if rng.random() < 0.4:
        user["anonymous"] = rng.choice([True, False, None])
    custom_names = [n for n in CONTEXT_ATTRS if n not in ("email", "country")]
    if rng.random() < 0.85:
        custom = _attributes(rng, custom_names, 0.8)
        if rng.random() < 0.15:
            # Reserved names inside `custom` are dropped when converting.
            custom.update(
                {
                    "kind": "org",
                    "key": "zz",
                    "name": "Mallory",
                    "anonymous": True,
                    "_meta": {"privateAttributes": ["email"]},
                }
            )
        user["custom"] = custom
    if rng.random() < 0.3:
        user["privateAttributeNames"] = ["email"]
    if rng.random() < 0.2:
        user["secondary"] = "sec"
    if rng.random() < 0.1:
        user["unknownTopLevel"] = 1
    return user


INVALID_CONTEXTS: list[dict[str, JSON]] = [
    {"kind": "user", "key": ""},
    {"kind": "kind", "key": "x"},
    {"kind": "multi"},
    {"kind": "us er", "key": "x"},
    {"kind": "", "key": "x"},
    {"kind": "user", "key": 5},
    {"kind": "user"},
    {"kind": "user", "key": "x", "name": 5},
    {"kind": "user", "key": "x", "anonymous": "yes"},
    {"kind": "user", "key": "x", "_meta": "bad"},
    {"kind": "multi", "user": {"key": ""}},
    {"kind": "multi", "org": "not-an-object"},
    {"kind": "multi", "multi": {"key": "x"}},
    {"kind": "multi", "user": {"key": "u1"}, "kind!": {"key": "x"}},
    {"kind": 5, "key": "x"},
    {"kind": "user", "key": None},
    {"kind": "user", "key": "x", "_meta": {"privateAttributes": "email"}},
    {"kind": "user", "key": "x", "_meta": {"privateAttributes": [1]}},
]


def gen_context(rng: random.Random) -> dict[str, JSON]:
    """One context: new single-kind, multi-kind, old-format user or (rarely) invalid."""
    shape = _weighted(rng, [(35, "user"), (15, "other"), (25, "multi"), (17, "old"), (8, "invalid")])
    if shape == "user":
        return {"kind": "user", **_single_body(rng, "user")}
    if shape == "other":
        kind = rng.choice(KINDS[1:])
        return {"kind": kind, **_single_body(rng, kind)}
    if shape == "multi":
        kinds = rng.sample(KINDS, _weighted(rng, [(15, 1), (60, 2), (25, 3)]))
        return {"kind": "multi", **{k: _single_body(rng, k) for k in kinds}}
    if shape == "old":
        return _old_user(rng)
    return dict(rng.choice(INVALID_CONTEXTS))


def is_old_user(ctx: JSON) -> bool:
    return isinstance(ctx, dict) and "kind" not in ctx


def old_user_to_new(user: dict[str, JSON]) -> dict[str, JSON]:
    """PROTOCOL.md §11: the old user format as the equivalent new-format single-kind context."""
    ctx: dict[str, JSON] = {"kind": "user", "key": user["key"]}
    if user.get("name") is not None:
        ctx["name"] = user["name"]
    if user.get("anonymous") is not None:
        ctx["anonymous"] = user["anonymous"]
    for builtin in ["firstName", "lastName", "email", "country", "avatar", "ip"]:
        if user.get(builtin) is not None:
            ctx[builtin] = user[builtin]
    for name, value in (user.get("custom") or {}).items():
        if name not in ("kind", "key", "name", "anonymous", "_meta"):
            ctx[name] = value
    if user.get("privateAttributeNames"):
        ctx["_meta"] = {"privateAttributes": list(user["privateAttributeNames"])}
    return ctx


# --- clauses -----------------------------------------------------------------------------------


def _clause_kind(rng: random.Random) -> str | None:
    return _weighted(
        rng,
        [
            (45, None),
            (33, "user"),
            (10, "org"),
            (4, "device"),
            (3, ABSENT_KIND),
            (3, "team.x-1"),
            (2, ""),
        ],
    )


def _render_ref(rng: random.Random, path: tuple[str, ...], context_kind: str | None) -> str:
    if context_kind:  # a reference: plain name or /-path with ~0/~1 escapes
        if len(path) == 1 and not path[0].startswith("/") and rng.random() < 0.4:
            return path[0]
        return "/" + "/".join(_escape(c) for c in path)
    # Legacy literal name; a multi-component path cannot be expressed and becomes a literal
    # attribute name starting with "/" (absent from contexts: must not match).
    return path[0] if len(path) == 1 else "/" + "/".join(path)


def _operands(rng: random.Random, op: str, family: str) -> list[JSON]:
    n = _weighted(rng, [(45, 1), (35, 2), (20, 3)])
    if op == "in":
        if family == "address":
            pool = [
                {"country": "DE"},
                {"country": "DE", "zip": 1},
                {"country": "DE", "zip": True},
                {"country": "FR", "zip": 30.0},
                {},
            ]
        elif family == "group":
            pool = [*POOLS["group"], ["beta"], [1]]
        else:
            pool = POOLS.get(family, POOLS["email"])
    elif op in ("startsWith", "endsWith", "contains"):
        pool = STRING_OPERANDS.get(family, STRING_OPERANDS["email"])
    elif op == "matches":
        pool = REGEXES.get(family, REGEXES["email"])
    elif op.startswith("semVer"):
        pool = SEMVER_OPERANDS
    elif op in ("before", "after"):
        pool = TIME_OPERANDS
    else:
        pool = TIME_OPERANDS if family == "time" else NUMERIC_OPERANDS
    values = [rng.choice(pool) for _ in range(n)]
    if rng.random() < 0.15:
        values.append(rng.choice(WRONG_TYPED))
    if rng.random() < 0.03:
        values = []
    return values


def gen_clause(rng: random.Random, segment_keys: list[str]) -> dict[str, JSON]:
    """A clause on a random attribute; 10% are segmentMatch when segments are available."""
    if segment_keys and rng.random() < 0.12:
        clause: dict[str, JSON] = {
            "attribute": rng.choice(["", "", "key", "segmentMatch"]),
            "op": "segmentMatch",
            "values": [rng.choice(segment_keys) for _ in range(_weighted(rng, [(70, 1), (25, 2), (5, 3)]))],
            "negate": rng.random() < 0.2,
        }
        if rng.random() < 0.1:
            clause["contextKind"] = rng.choice(KINDS)
        return clause
    context_kind = _clause_kind(rng)
    _, path, family = rng.choices(PATHS, weights=[w for w, _, _ in PATHS])[0]
    # 12%: any operator on any attribute, for type mismatches on purpose
    op = rng.choice(ALL_OPS[:-1]) if rng.random() < 0.12 else rng.choice(OPS_BY_FAMILY[family])
    attribute = _render_ref(rng, path, context_kind)
    if rng.random() < 0.02:
        attribute = rng.choice(INVALID_REFS) if context_kind else ""
    clause = {"attribute": attribute, "op": op, "values": _operands(rng, op, family), "negate": rng.random() < 0.2}
    if rng.random() < 0.005:
        clause["op"] = "equalz"  # unknown operator: no match, no error
    if context_kind is not None:
        clause["contextKind"] = context_kind
    if rng.random() < 0.1:
        del clause["negate"]  # optional field
    return clause


# --- flags -------------------------------------------------------------------------------------

VARIATION_SETS: list[list[JSON]] = [
    [False, True],
    [True, False],
    ["a", "b", "c"],
    ["red", "green", "blue", "off"],
    [0, 1, 2.5],
    [{"x": 1}, [1, 2], None, "s"],
    [None, 0],
    ["only"],
    [1.5, -2, 3],
]


def _index(rng: random.Random, n: int, bad: float = 0.03) -> int:
    """A variation index: usually valid, sometimes out of range (MALFORMED_FLAG when reached)."""
    if n == 0 or rng.random() < bad:
        return rng.choice([n, n + 1, -1])
    return rng.randrange(n)


def gen_rollout(rng: random.Random, n_vars: int) -> dict[str, JSON]:
    """A rollout or experiment: odd weights, seeds, bucketBy and contextKind included."""
    rollout: dict[str, JSON] = {}
    k = _weighted(rng, [(15, 1), (50, 2), (25, 3), (10, 4)])
    cuts = sorted(rng.randrange(100001) for _ in range(k - 1))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100000], strict=True)]
    if rng.random() < 0.2:  # sum < 100000: the overflow goes to the last bucket
        weights = [w * rng.randint(0, 9) // 10 for w in weights]
    if rng.random() < 0.02:  # well-typed nonsense LaunchDarkly never sends
        weights[rng.randrange(k)] = rng.choice([-20000, 150000])
    rollout["variations"] = []
    for w in weights:
        wv: dict[str, JSON] = {"variation": _index(rng, n_vars), "weight": w}
        if rng.random() < 0.25:
            wv["untracked"] = rng.random() < 0.5
        rollout["variations"].append(wv)
    if rng.random() < 0.03:
        rollout["variations"] = []
    kind = _weighted(rng, [(35, "experiment"), (40, "rollout"), (25, None)])
    if kind is not None:
        rollout["kind"] = kind
    context_kind = _weighted(rng, [(50, None), (20, "user"), (15, "org"), (5, "device"), (7, ABSENT_KIND), (3, "")])
    if context_kind is not None:
        rollout["contextKind"] = context_kind
    if rng.random() < 0.55:
        rollout["bucketBy"] = rng.choice(BUCKET_BY)
        if context_kind and rng.random() < 0.05:
            rollout["bucketBy"] = rng.choice(INVALID_REFS[:-1])
    if rng.random() < 0.4:
        rollout["seed"] = rng.choice([61, 0, -7, 123456789])
    return rollout


def _variation_or_rollout(rng: random.Random, n_vars: int, into: dict[str, JSON], fallthrough: bool) -> None:
    shape = _weighted(rng, [(55, "var"), (40, "rollout"), (3 if fallthrough else 1, "empty"), (2, "both")])
    if shape in ("var", "both"):
        into["variation"] = _index(rng, n_vars)
    if shape in ("rollout", "both"):
        into["rollout"] = gen_rollout(rng, n_vars)


def _targets(rng: random.Random, n_vars: int) -> tuple[list[JSON], list[JSON]]:
    mode = _weighted(rng, [(40, "none"), (20, "old"), (40, "new")])
    if mode == "none" or n_vars == 0:
        return [], []
    targets: list[JSON] = []
    for _ in range(rng.randint(1, 3)):
        t: dict[str, JSON] = {
            "variation": _index(rng, n_vars, 0.05),
            "values": rng.sample(KIND_KEYS["user"], rng.randint(0, 3)),
        }
        if rng.random() < 0.1:
            t["contextKind"] = "user"
        targets.append(t)
    if mode == "old":
        return targets, []
    # LaunchDarkly's layout: user entries in contextTargets have empty values and point at
    # `targets` by variation; other kinds carry their keys directly.
    context_targets: list[JSON] = []
    for t in targets:
        entry: dict[str, JSON] = {"contextKind": "user", "variation": t["variation"], "values": []}
        if rng.random() < 0.05:
            del entry["contextKind"]
        if rng.random() < 0.03:
            entry["values"] = [rng.choice(KIND_KEYS["user"])]  # ignored by the Python SDK
        context_targets.append(entry)
    if rng.random() < 0.15:  # a user entry whose variation has no `targets` entry
        context_targets.append({"contextKind": "user", "variation": _index(rng, n_vars), "values": []})
    for _ in range(rng.randint(0, 3)):
        kind = rng.choice([*KINDS[1:], ABSENT_KIND])
        keys = KIND_KEYS.get(kind, ["x"])
        context_targets.append(
            {
                "contextKind": kind,
                "variation": _index(rng, n_vars, 0.05),
                "values": rng.sample(keys, rng.randint(1, len(keys))),
            }
        )
    rng.shuffle(context_targets)
    return targets, context_targets


def gen_flag(
    rng: random.Random,
    key: str,
    n_vars: int,
    prereq_pool: list[tuple[str, int]],
    back_pool: list[tuple[str, int]],
    segment_keys: list[str],
) -> dict[str, JSON]:
    """One flag. `prereq_pool` holds (key, n_variations) of later flags (acyclic), `back_pool`
    earlier ones (may close a cycle); `segment_keys` may include missing/deleted keys."""
    variations = list(rng.choice([v for v in VARIATION_SETS if len(v) == n_vars] or [[]]))
    flag: dict[str, JSON] = {
        "key": key,
        "version": rng.randint(1, 500),
        "on": rng.random() < 0.85,
        "variations": variations,
        "salt": rng.choice(["", "salty", key[::-1], "s.1"]),
    }
    if rng.random() < 0.1:
        del flag["salt"]
    off = _weighted(rng, [(65, "valid"), (25, "null"), (5, "absent"), (5, "bad")])
    if off == "valid" and n_vars:
        flag["offVariation"] = rng.randrange(n_vars)
    elif off == "null":
        flag["offVariation"] = None
    elif off == "bad":
        flag["offVariation"] = rng.choice([n_vars, -1])
    prereqs: list[JSON] = []
    if rng.random() < 0.3:
        for _ in range(_weighted(rng, [(60, 1), (30, 2), (10, 3)])):
            src = _weighted(rng, [(80, "fwd"), (8, "missing"), (8, "back"), (4, "self")])
            if src == "fwd" and prereq_pool:
                pkey, pn = rng.choice(prereq_pool)
            elif src == "back" and back_pool:
                pkey, pn = rng.choice(back_pool)
            elif src == "self":
                pkey, pn = key, n_vars
            else:
                pkey, pn = "missing-flag", 2
            prereqs.append({"key": pkey, "variation": _index(rng, pn, 0.05)})
    flag["prerequisites"] = prereqs
    flag["targets"], flag["contextTargets"] = _targets(rng, n_vars)
    rules: list[JSON] = []
    for i in range(_weighted(rng, [(20, 0), (25, 1), (25, 2), (15, 3), (10, 4), (5, 5)])):
        rule: dict[str, JSON] = {}
        rid = _weighted(rng, [(80, f"rule-{i}"), (15, None), (5, "")])
        if rid is not None:
            rule["id"] = rid
        n_clauses = _weighted(rng, [(55, 1), (25, 2), (12, 3), (8, 4)])
        rule["clauses"] = [gen_clause(rng, segment_keys) for _ in range(n_clauses)]
        _variation_or_rollout(rng, n_vars, rule, fallthrough=False)
        rule["trackEvents"] = rng.random() < 0.2
        rules.append(rule)
    flag["rules"] = rules
    fallthrough: dict[str, JSON] = {}
    _variation_or_rollout(rng, n_vars, fallthrough, fallthrough=True)
    if fallthrough or rng.random() < 0.5:  # an absent fallthrough is as malformed as {}
        flag["fallthrough"] = fallthrough
    flag["trackEvents"] = rng.random() < 0.1
    flag["trackEventsFallthrough"] = rng.random() < 0.1
    flag["clientSide"] = rng.random() < 0.5
    if rng.random() < 0.5:
        flag["clientSideAvailability"] = {
            "usingEnvironmentId": rng.random() < 0.5,
            "usingMobileKey": rng.random() < 0.5,
        }
    flag["debugEventsUntilDate"] = None
    flag["deleted"] = False
    return flag


# --- segments ----------------------------------------------------------------------------------


def gen_segment(rng: random.Random, key: str, nested_pool: list[str], back_pool: list[str]) -> dict[str, JSON]:
    """One segment. Rules reference `nested_pool` (later segments: acyclic) and rarely
    `back_pool` (earlier ones, or itself: may form a cycle)."""
    seg: dict[str, JSON] = {"key": key, "version": rng.randint(1, 100), "salt": rng.choice(["", "salty", key])}
    seg["included"] = rng.sample(KIND_KEYS["user"], _weighted(rng, [(50, 0), (30, 1), (20, 3)]))
    seg["excluded"] = rng.sample(KIND_KEYS["user"], _weighted(rng, [(60, 0), (30, 1), (10, 2)]))
    for field_name in ("includedContexts", "excludedContexts"):
        entries = []
        for _ in range(_weighted(rng, [(60, 0), (30, 1), (10, 2)])):
            kind = rng.choice([*KINDS, ABSENT_KIND])
            keys = KIND_KEYS.get(kind, ["x"])
            entries.append({"contextKind": kind, "values": rng.sample(keys, rng.randint(1, len(keys)))})
        seg[field_name] = entries
    rules: list[JSON] = []
    for i in range(_weighted(rng, [(25, 0), (40, 1), (25, 2), (10, 3)])):
        clauses = [gen_clause(rng, nested_pool) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.08:  # itself or an earlier segment: a cycle (or a harmless back edge)
            clauses.insert(
                rng.randrange(len(clauses) + 1),
                {
                    "attribute": "",
                    "op": "segmentMatch",
                    "values": [rng.choice([*back_pool, key, key])],
                    "negate": rng.random() < 0.3,
                },
            )
        rule: dict[str, JSON] = {"id": f"{key}-r{i}", "clauses": clauses}
        if rng.random() < 0.4:
            rule["weight"] = rng.choice([0, 14955, 50000, 99999, 100000, rng.randrange(100001)])
            if rng.random() < 0.5:
                rule["bucketBy"] = rng.choice(BUCKET_BY)
            if rng.random() < 0.5:
                rule["rolloutContextKind"] = rng.choice([*KINDS, ABSENT_KIND])
                if rng.random() < 0.05:
                    rule["bucketBy"] = rng.choice(INVALID_REFS[:-1])
        rules.append(rule)
    seg["rules"] = rules
    if rng.random() < 0.12:
        seg["unbounded"] = True
        gen = _weighted(rng, [(60, "int"), (20, "null"), (20, "absent")])
        if gen == "int":
            seg["generation"] = rng.randint(1, 5)
        elif gen == "null":
            seg["generation"] = None
        if rng.random() < 0.4:
            seg["unboundedContextKind"] = rng.choice(KINDS)
    seg["deleted"] = False
    return seg


# --- datasets ----------------------------------------------------------------------------------


@dataclass
class Dataset:
    flags: dict[str, JSON]
    segments: dict[str, JSON]
    contexts: list[JSON] = field(default_factory=list)

    def ld_json(self) -> dict[str, JSON]:
        """LaunchDarkly's `{"flags": {...}, "segments": {...}}` document."""
        return {"flags": self.flags, "segments": self.segments}


def generate_dataset(seed: int, n_flags: int = 150, n_segments: int = 40, n_contexts: int = 120) -> Dataset:
    """An adversarial dataset: every model feature, valid or malformed-but-well-typed."""
    rng = random.Random(seed)
    seg_keys = [f"seg-{seed}-{i}" for i in range(n_segments)]
    deleted_segs = {k for k in seg_keys if rng.random() < 0.05}
    segments: dict[str, JSON] = {}
    for i, key in enumerate(seg_keys):
        if key in deleted_segs:
            segments[key] = {"key": key, "version": rng.randint(1, 9), "deleted": True}
            continue
        nested = [*seg_keys[i + 1 : i + 8], "seg-missing"]
        segments[key] = gen_segment(rng, key, nested, seg_keys[max(0, i - 3) : i])
    flag_keys = [f"flag-{seed}-{i}" for i in range(n_flags)]
    n_vars = {k: _weighted(rng, [(3, 0), (7, 1), (50, 2), (25, 3), (15, 4)]) for k in flag_keys}
    deleted_flags = {k for k in flag_keys if rng.random() < 0.03}
    clause_segs = [*seg_keys, "seg-missing"]
    flags: dict[str, JSON] = {}
    for i, key in enumerate(flag_keys):
        if key in deleted_flags:
            flags[key] = {"key": key, "version": rng.randint(1, 9), "deleted": True}
            continue
        fwd = [(k, n_vars[k]) for k in flag_keys[i + 1 : i + 12]]
        back = [(k, n_vars[k]) for k in flag_keys[max(0, i - 6) : i]]
        flags[key] = gen_flag(rng, key, n_vars[key], fwd, back, clause_segs)
    contexts = [gen_context(rng) for _ in range(n_contexts)]
    return Dataset(flags, segments, contexts)


# --- lenient mutations: what LaunchDarkly's SDKs evaluate and relay's write path warns about ----------
# Each mutation makes an item odd in one way LaunchDarkly's data model allows (relay writes it with a
# warning; docs/compatibility.md), or harmless (extra fields, missing optional ones). Everything here
# stays importable through the write path: well-typed, within JSON limits.

# Per operator, clause values it never matches (a value of the wrong type, or one that does not parse).
NEVER_MATCHING: dict[str, list[JSON]] = {
    **{op: [5, True, None, ["a"], {"a": 1}] for op in ("startsWith", "endsWith", "contains")},
    "matches": ["(", "[", "*a", 5, True, None, {"a": 1}],
    **{
        op: ["63", "30", True, False, None, [30], {"n": 1}, ""]
        for op in ("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual")
    },
    **{op: ["2023-11-14", "1700000000000", "not a date", True, None, [T0], ""] for op in ("before", "after")},
    **{
        op: ["v2.0.0", "02.0.0", "1.2.3.4", 2, None, True, ""]
        for op in ("semVerEqual", "semVerLessThan", "semVerGreaterThan")
    },
    "segmentMatch": [5, True, None, 1.5],  # hashable: the SDK looks them up and finds nothing
}
UNKNOWN_OPS = ["equalz", "newerOperator", "", "IN", "segmentMatches", "semVerEqualz"]
INVALID_KINDS = ["multi", "kind", "us er", "ü", "a:b"]
EXTRA_FIELDS: list[tuple[str, JSON]] = [
    ("description", "from LaunchDarkly"),
    ("_meta", {"x": 1}),
    ("tags", ["a", "b"]),
    ("someFutureField", {"nested": [1, {"a": None}]}),
    ("name", "Checkout"),
]
OPTIONAL_FLAG_FIELDS = [
    "salt", "offVariation", "targets", "contextTargets", "rules", "prerequisites", "clientSide",
    "clientSideAvailability", "trackEvents", "trackEventsFallthrough", "debugEventsUntilDate", "deleted", "on",
    "variations", "fallthrough",
]  # fmt: skip
OPTIONAL_SEGMENT_FIELDS = ["salt", "included", "excluded", "includedContexts", "excludedContexts", "rules", "deleted"]


def _clauses_of(rules: list[JSON]) -> list[JSON]:
    return [c for r in rules for c in r.get("clauses", [])]


def _rollouts_of(flag: JSON) -> list[JSON]:
    vrs = [*flag.get("rules", []), flag.get("fallthrough") or {}]
    return [vr["rollout"] for vr in vrs if isinstance(vr.get("rollout"), dict) and "variation" not in vr]


def _some_clause(rng: random.Random, rules: list[JSON], segment_keys: list[str]) -> JSON:
    """A clause of `rules` (a new rule holding a new one when there is none)."""
    clauses = _clauses_of(rules)
    if clauses:
        return rng.choice(clauses)
    new = gen_clause(rng, segment_keys)
    rules.append({"id": "added", "clauses": [new], "variation": 0})
    return new


def _mutate_clause(rng: random.Random, clause: JSON) -> None:
    op = clause["op"]
    if op in NEVER_MATCHING and rng.random() < 0.75:  # a value it never matches, anywhere in the list
        clause["values"].insert(rng.randint(0, len(clause["values"])), rng.choice(NEVER_MATCHING[op]))
    elif rng.random() < 0.5:
        clause["op"] = rng.choice(UNKNOWN_OPS)
    else:
        clause["contextKind"] = rng.choice(INVALID_KINDS)


def _mutate_weights(rng: random.Random, rollout: JSON) -> None:
    variations = rollout.get("variations") or []
    if not variations:
        return
    how = rng.choice(["short", "over", "negative", "zero", "huge"])
    for i, wv in enumerate(variations):
        if how == "short":
            wv["weight"] = wv["weight"] // 2
        elif how == "over":
            wv["weight"] = wv["weight"] * 3 // 2 + 1
        elif how == "zero":
            wv["weight"] = 0
        elif i == 0:
            wv["weight"] = -rng.randint(1, 50000) if how == "negative" else 10**9


def _out_of_range(rng: random.Random, flag: JSON) -> None:
    n = len(flag.get("variations") or [])
    bad = rng.choice([n, n + 5, -1, -100])
    where = rng.choice(["off", "fallthrough", "rule", "target", "context-target", "rollout"])
    if where == "off":
        flag["offVariation"] = bad
    elif where == "fallthrough":
        flag["fallthrough"] = {"variation": bad}
    elif where == "rule" and flag.get("rules"):
        rule = rng.choice(flag["rules"])
        rule.pop("rollout", None)
        rule["variation"] = bad
    elif where == "target" and flag.get("targets"):
        rng.choice(flag["targets"])["variation"] = bad
    elif where == "context-target" and flag.get("contextTargets"):
        rng.choice(flag["contextTargets"])["variation"] = bad
    elif where == "rollout" and _rollouts_of(flag):
        variations = rng.choice(_rollouts_of(flag)).get("variations") or [{"weight": 100000}]
        rng.choice(variations)["variation"] = bad
    else:
        flag["offVariation"] = bad


def _no_outcome(rng: random.Random, flag: JSON) -> None:
    how = rng.choice(["fallthrough-empty", "fallthrough-absent", "rule", "empty-rollout"])
    if how == "fallthrough-empty":
        flag["fallthrough"] = {}
    elif how == "fallthrough-absent":
        flag.pop("fallthrough", None)
    elif how == "rule" and flag.get("rules"):
        rule = rng.choice(flag["rules"])
        rule.pop("variation", None)
        rule.pop("rollout", None)
    else:
        flag["fallthrough"] = {"rollout": {"variations": []}}


def _extra_fields(rng: random.Random, item: JSON) -> None:
    places = [item, *item.get("rules", []), *_clauses_of(item.get("rules", [])), *_rollouts_of(item)]
    for _ in range(rng.randint(1, 3)):
        name, value = rng.choice(EXTRA_FIELDS)
        rng.choice(places)[name] = value


def _drop_optional(rng: random.Random, item: JSON, names: list[str]) -> None:
    for name in rng.sample(names, rng.randint(1, 3)):
        item.pop(name, None)
    for clause in _clauses_of(item.get("rules", [])):
        if rng.random() < 0.2:
            clause.pop("negate", None)
    for rule in item.get("rules", []):
        for name in ("id", "trackEvents", "bucketBy", "rolloutContextKind"):
            if rng.random() < 0.1:
                rule.pop(name, None)


def mutate_flag(rng: random.Random, flag: JSON, segment_keys: list[str]) -> None:
    """One lenient mutation of a flag, in place."""
    how = rng.choice(
        ["value", "value", "value", "weights", "range", "range", "kind", "self", "outcome", "user-entry",
         "old-kind", "segment-key", "extra", "missing"]
    )  # fmt: skip
    rules = flag.setdefault("rules", [])
    if how == "value" or (how == "weights" and not _rollouts_of(flag)):
        _mutate_clause(rng, _some_clause(rng, rules, segment_keys))
    elif how == "weights":
        _mutate_weights(rng, rng.choice(_rollouts_of(flag)))
    elif how == "range":
        _out_of_range(rng, flag)
    elif how == "kind":
        target = rng.choice([*_rollouts_of(flag), *flag.get("contextTargets", []), _some_clause(rng, rules, [])])
        target["contextKind"] = rng.choice(INVALID_KINDS)
    elif how == "self":
        flag.setdefault("prerequisites", []).append({"key": flag["key"], "variation": rng.randrange(3)})
    elif how == "outcome":
        _no_outcome(rng, flag)
    elif how == "user-entry":
        entry = {"contextKind": "user", "variation": rng.randrange(3), "values": [rng.choice(KIND_KEYS["user"])]}
        flag.setdefault("contextTargets", []).append(entry)
        flag.setdefault("targets", []).append({"variation": entry["variation"], "values": ["u2"]})
    elif how == "old-kind" and flag.get("targets"):
        rng.choice(flag["targets"])["contextKind"] = rng.choice(["org", "device"])
    elif how == "segment-key" and segment_keys:
        values = [rng.choice(segment_keys), rng.choice(NEVER_MATCHING["segmentMatch"])]
        rules.insert(0, {"id": "seg", "clauses": [{"attribute": "", "op": "segmentMatch", "values": values}],
                         "variation": 0})  # fmt: skip
    elif how == "extra":
        _extra_fields(rng, flag)
    else:
        _drop_optional(rng, flag, OPTIONAL_FLAG_FIELDS[:-3] if rng.random() < 0.7 else OPTIONAL_FLAG_FIELDS)


def mutate_segment(rng: random.Random, segment: JSON, segment_keys: list[str]) -> None:
    """One lenient mutation of a segment, in place."""
    how = rng.choice(["weight", "value", "value", "kind", "extra", "missing"])
    rules = segment.setdefault("rules", [])
    if how == "weight":
        rule = rng.choice(rules) if rules else {"clauses": []}
        rule["weight"] = rng.choice([-1, -50000, -100000, -150000, 100001, 250000])
        if not rules:
            rules.append(rule)
    elif how == "value":
        _mutate_clause(rng, _some_clause(rng, rules, segment_keys))
    elif how == "kind":
        if rules and rng.random() < 0.5:
            rng.choice(rules)["rolloutContextKind"] = rng.choice(INVALID_KINDS)
        else:
            entry = {"contextKind": rng.choice(INVALID_KINDS), "values": ["x", "u1"]}
            segment.setdefault(rng.choice(["includedContexts", "excludedContexts"]), []).append(entry)
    elif how == "extra":
        _extra_fields(rng, segment)
    else:
        _drop_optional(rng, segment, OPTIONAL_SEGMENT_FIELDS[:-1])


def lenient_dataset(seed: int, n_flags: int = 150, n_segments: int = 40, n_contexts: int = 120) -> Dataset:
    """`generate_dataset`'s adversarial data with lenient mutations on top (1 to 3 on most items): what
    a real LaunchDarkly export may hold, all of it importable through relay's write path."""
    ds = generate_dataset(seed, n_flags, n_segments, n_contexts)
    rng = random.Random(seed * 7919 + 1)
    segment_keys = list(ds.segments)
    for flag in ds.flags.values():
        if not flag.get("deleted") and rng.random() < 0.8:
            for _ in range(rng.randint(1, 3)):
                mutate_flag(rng, flag, segment_keys)
    for segment in ds.segments.values():
        if not segment.get("deleted") and rng.random() < 0.7:
            for _ in range(rng.randint(1, 2)):
                mutate_segment(rng, segment, segment_keys)
    return ds


# --- realistic data for benchmarks -------------------------------------------------------------

_REALISTIC_CLAUSES: list[tuple[str | None, str, str, list[JSON]]] = [
    ("user", "email", "endsWith", ["@example.com", "@test.org"]),
    ("user", "/address/country", "in", ["DE", "FR", "US"]),
    (None, "country", "in", ["DE", "FR"]),
    ("user", "version", "semVerGreaterThan", ["1.5.0"]),
    ("user", "age", "greaterThanOrEqual", [18]),
    ("user", "created", "before", ["2023-11-15T00:00:00Z"]),
    ("user", "groups", "contains", ["bet"]),
    ("org", "key", "startsWith", ["o"]),
    (None, "kind", "in", ["org"]),
    ("user", "email", "matches", [r"^[a-c].*@example\.com$"]),
    ("user", "score", "lessThan", [50000]),
]


def realistic_flag(
    rng: random.Random, key: str, segment_keys: list[str] | None = None, n_rules: int = 5, n_clauses: int = 3
) -> dict[str, JSON]:
    """A clean, typical flag: n_rules rules x n_clauses clauses of mixed operators, a user
    target list and a percentage-rollout fallthrough. Accepted by `parse_flag(strict=True)`."""
    rules: list[JSON] = []
    for i in range(n_rules):
        clauses: list[JSON] = []
        for _ in range(n_clauses):
            if segment_keys and rng.random() < 0.1:
                clauses.append(
                    {"attribute": "", "op": "segmentMatch", "values": [rng.choice(segment_keys)], "negate": False}
                )
                continue
            kind, attr, op, values = rng.choice(_REALISTIC_CLAUSES)
            clause: dict[str, JSON] = {"attribute": attr, "op": op, "values": values, "negate": rng.random() < 0.1}
            if kind is not None:
                clause["contextKind"] = kind
            clauses.append(clause)
        rules.append({"id": f"{key}-rule-{i}", "clauses": clauses, "variation": rng.randrange(2), "trackEvents": False})
    return {
        "key": key,
        "version": rng.randint(1, 1000),
        "on": True,
        "salt": f"{key}-salt",
        "variations": [False, True],
        "offVariation": 0,
        "prerequisites": [],
        "targets": [{"variation": 1, "values": [f"user-{j}" for j in range(5)]}],
        "contextTargets": [{"contextKind": "user", "variation": 1, "values": []}],
        "rules": rules,
        "fallthrough": {
            "rollout": {
                "kind": "rollout",
                "contextKind": "user",
                "bucketBy": "key",
                "variations": [{"variation": 0, "weight": 60000}, {"variation": 1, "weight": 40000}],
            }
        },
        "clientSide": True,
        "clientSideAvailability": {"usingEnvironmentId": True, "usingMobileKey": True},
        "trackEvents": False,
        "trackEventsFallthrough": False,
        "debugEventsUntilDate": None,
        "deleted": False,
    }


def realistic_segment(rng: random.Random, key: str) -> dict[str, JSON]:
    return {
        "key": key,
        "version": rng.randint(1, 100),
        "salt": f"{key}-salt",
        "included": [f"user-{j}" for j in rng.sample(range(1000), 20)],
        "excluded": [],
        "includedContexts": [{"contextKind": "org", "values": ["o1", "o2"]}],
        "excludedContexts": [],
        "rules": [
            {
                "id": f"{key}-r0",
                "clauses": [
                    {
                        "contextKind": "user",
                        "attribute": "email",
                        "op": "endsWith",
                        "values": ["@example.com"],
                        "negate": False,
                    }
                ],
                "weight": 50000,
                "bucketBy": "key",
                "rolloutContextKind": "user",
            }
        ],
        "deleted": False,
    }


def realistic_dataset(n_flags: int = 200, n_segments: int = 20, seed: int = 0) -> dict[str, JSON]:
    """LaunchDarkly's `{"flags": ..., "segments": ...}` document of clean, typical flags."""
    rng = random.Random(seed)
    seg_keys = [f"segment-{i}" for i in range(n_segments)]
    return {
        "flags": {f"flag-{i}": realistic_flag(rng, f"flag-{i}", seg_keys) for i in range(n_flags)},
        "segments": {k: realistic_segment(rng, k) for k in seg_keys},
    }


def realistic_contexts(n: int = 100, seed: int = 0) -> list[dict[str, JSON]]:
    """Valid new-format contexts (single user and user+org multi) matching the realistic flags."""
    rng = random.Random(seed)
    out: list[dict[str, JSON]] = []
    for i in range(n):
        user: dict[str, JSON] = {
            "key": f"user-{rng.randrange(1000)}",
            "email": f"u{i}@{rng.choice(['example.com', 'x.io'])}",
            "address": {"country": rng.choice(["DE", "FR", "US", "GB"])},
            "country": rng.choice(["DE", "GB"]),
            "version": rng.choice(["1.2.0", "1.6.1", "2.0.0"]),
            "age": rng.randint(10, 70),
            "created": T0 + rng.randint(-(10**9), 10**9),
            "groups": rng.sample(["beta", "alpha", "staff"], 2),
            "score": rng.randrange(100000),
        }
        if rng.random() < 0.3:
            out.append({"kind": "multi", "user": user, "org": {"key": f"o{rng.randrange(5)}"}})
        else:
            out.append({"kind": "user", **user})
    return out
