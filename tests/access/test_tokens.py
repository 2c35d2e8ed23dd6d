"""Personal access tokens, in process: the format and its checksum, the stored record, expiry parsing, what
each role and scope allows, and that nothing issues, rotates or revokes beyond its own reach."""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from relay.access.tokens import (
    DEFAULT_EXPIRY,
    DIRECT_REDIS,
    MAX_EXPIRY,
    PREFIX,
    TOKEN_PATTERN,
    Action,
    Role,
    TokenRecord,
    allows,
    authorize_grant,
    can_grant,
    check_live,
    constant_time_equal,
    generate,
    issue,
    looks_valid,
    new_token_id,
    parse_expiry,
    require,
    revoke,
    rotate,
    token_hash,
)
from relay.errors import Forbidden, RelayError, Unauthorized, ValidationError

NOW = 1_700_000_000.0
DAY = 86_400.0
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
SECRET = "Tok3nSecretForTestsOnly0123456"  # 30 characters; the full token is built, not written, below


def _base62(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = BASE62[r] + out
    return out.rjust(6, "0")


# Computed independently of the module: CRC32 of prefix + secret, base62, 6 characters.
SAMPLE = PREFIX + SECRET + _base62(zlib.crc32((PREFIX + SECRET).encode()))


def make(
    role: Role = Role.ADMIN,
    envs: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    days: float = 30,
    name: str = "ann",
) -> TokenRecord:
    return issue(name, role, envs, flags, NOW + days * DAY, NOW, by=f"{DIRECT_REDIS}test")[1]


# --- the format ---


def test_sample_checksum_is_pinned() -> None:
    # Changing the alphabet or the checksum would invalidate every token already issued.
    assert SAMPLE[-6:] == "3sYGrY"
    assert looks_valid(SAMPLE)
    assert re.fullmatch(TOKEN_PATTERN, SAMPLE)


def test_generated_tokens_are_well_formed_and_distinct() -> None:
    tokens = [generate() for _ in range(300)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert looks_valid(token), token
        assert token.startswith("relay_pat_") and len(token) == 46
        assert re.fullmatch(TOKEN_PATTERN, token)
        assert set(token[len(PREFIX) :]) <= set(BASE62)


def test_checksum_catches_every_single_character_change() -> None:
    changed = 0
    for i, original in enumerate(SAMPLE):
        for c in BASE62 + "_-. é":
            if c != original:
                assert not looks_valid(SAMPLE[:i] + c + SAMPLE[i + 1 :]), (i, c)
                changed += 1
    assert changed == len(SAMPLE) * (len(BASE62) + 5 - 1)


def test_swapped_neighbours_are_refused() -> None:
    for i in range(len(PREFIX), len(SAMPLE) - 1):
        if SAMPLE[i] != SAMPLE[i + 1]:
            assert not looks_valid(SAMPLE[:i] + SAMPLE[i + 1] + SAMPLE[i] + SAMPLE[i + 2 :]), i


@pytest.mark.parametrize("length", range(len(SAMPLE)), ids=lambda n: f"first-{n}")
def test_truncated_tokens_are_refused(length: int) -> None:
    assert not looks_valid(SAMPLE[:length])


@pytest.mark.parametrize(
    "token",
    [
        SAMPLE + "0",
        SAMPLE + "\n",
        " " + SAMPLE,
        SAMPLE.upper(),
        "ghp_" + SAMPLE[len(PREFIX) :],
        "relay_pat" + SAMPLE[len(PREFIX) :],
        "relay-pat_" + SAMPLE[len(PREFIX) :],
        "RELAY_PAT_" + SAMPLE[len(PREFIX) :],
    ],
    ids=["extra-char", "newline", "leading-space", "upper", "ghp-prefix", "no-underscore", "dash", "upper-prefix"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert not looks_valid(token)


def test_another_prefix_with_its_own_valid_checksum_is_refused() -> None:
    body = "relay_tap_" + SECRET
    assert not looks_valid(body + _base62(zlib.crc32(body.encode())))


@pytest.mark.parametrize("value", [None, 42, b"relay_pat_", ["relay_pat_"], ""], ids=repr)
def test_non_strings_are_refused_without_raising(value: Any) -> None:
    assert not looks_valid(value)


def test_hash_is_sha256_hex_of_the_exact_token() -> None:
    assert token_hash(SAMPLE) == hashlib.sha256(SAMPLE.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", token_hash(SAMPLE))
    assert token_hash(SAMPLE + " ") != token_hash(SAMPLE)
    assert token_hash(SAMPLE.lower()) != token_hash(SAMPLE)


def test_token_ids_are_public_random_and_short() -> None:
    ids = {new_token_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"tok_[0-9a-f]{12}", i) for i in ids)


def test_issued_record_holds_the_hash_and_an_unrelated_id() -> None:
    token, record = issue("ann", Role.READER, (), (), NOW + DAY, NOW, by="direct-redis:ann")
    assert looks_valid(token)
    assert constant_time_equal(record.hash, token_hash(token))
    assert token not in json.dumps(record.to_dict())
    assert record.id.startswith("tok_") and record.id[4:] not in token.lower()


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [("abc", "abc", True), ("abc", "abd", False), ("abc", "ab", False), ("é", "é", True), ("é", "e", False)],
    ids=["same", "differs", "prefix", "non-ascii-same", "non-ascii-differs"],
)
def test_constant_time_equal(a: str, b: str, equal: bool) -> None:
    assert constant_time_equal(a, b) is equal


# --- roles and actions ---


def test_roles_rank_not_as_strings() -> None:
    assert Role.READER < Role.WRITER < Role.ADMIN
    assert Role.ADMIN > Role.READER and Role.ADMIN >= Role.ADMIN and Role.READER <= Role.WRITER
    assert not Role.ADMIN < Role.READER  # as str, "admin" < "reader"
    assert sorted([Role.ADMIN, Role.READER, Role.WRITER]) == [Role.READER, Role.WRITER, Role.ADMIN]
    assert max(Role) is Role.ADMIN
    assert Role.READER < "admin"  # a plain string is ranked too, not compared as a string
    assert Role.WRITER > "reader"


ALL = (Action.READ, Action.WRITE_ITEM, Action.MANAGE_ENV, Action.MANAGE_TOKENS)
MATRIX = {
    Role.READER: {Action.READ},
    Role.WRITER: {Action.READ, Action.WRITE_ITEM},
    Role.ADMIN: set(ALL),
}


@pytest.mark.parametrize(
    ("role", "action"), [(r, a) for r in Role for a in ALL], ids=lambda v: str(v).replace("_", "-")
)
def test_role_action_matrix(role: Role, action: Action) -> None:
    record = make(role)
    expected = action in MATRIX[role]
    for env in ("prod", None):
        assert allows(record, action, env, "checkout", now=NOW) is expected, env
    if expected:
        require(record, action, "prod", "checkout", now=NOW)
    else:
        with pytest.raises(Forbidden, match=f"needs the {min(r for r in Role if action in MATRIX[r])} role"):
            require(record, action, "prod", "checkout", now=NOW)


# --- environments ---


def test_no_env_list_means_every_environment_even_future_ones() -> None:
    record = make(Role.WRITER)
    for env in ("prod", "staging", "created-next-year", None):
        assert allows(record, Action.WRITE_ITEM, env, "f", now=NOW)


@pytest.mark.parametrize(
    ("action", "env", "expected"),
    [
        (Action.READ, "prod", True),
        (Action.READ, "staging", True),
        (Action.READ, "dev", False),
        (Action.READ, None, False),  # not confined to one environment: all-environment tokens only
        (Action.WRITE_ITEM, "prod", True),
        (Action.WRITE_ITEM, "dev", False),
        (Action.MANAGE_ENV, "prod", True),
        (Action.MANAGE_ENV, "dev", False),
        (Action.MANAGE_ENV, None, False),  # e.g. creating an environment
        (Action.MANAGE_TOKENS, None, True),  # a matter of role; can_grant bounds what it issues
        (Action.MANAGE_TOKENS, "prod", True),
        (Action.MANAGE_TOKENS, "dev", False),
    ],
    ids=lambda v: str(v).replace("_", "-"),
)
def test_env_scoping(action: Action, env: str | None, expected: bool) -> None:
    record = make(Role.ADMIN, envs=("prod", "staging"))
    assert allows(record, action, env, "f", now=NOW) is expected
    if not expected:
        with pytest.raises(Forbidden, match="limited to environments prod, staging") as e:
            require(record, action, env, "f", now=NOW)
        assert e.value.status_code == 403 and e.value.code == "forbidden"


# --- flag globs ---


@pytest.mark.parametrize(
    ("flag_key", "expected"),
    [
        ("checkout-new", True),
        ("checkout-", True),
        ("search", True),
        ("exp-a", True),
        ("exp-c", False),
        ("searchbar", False),
        ("Checkout-new", False),  # case-sensitive, as flag keys are
        ("new-checkout-x", False),
        (None, False),  # a segment: its change can alter any flag
    ],
    ids=lambda v: repr(v),
)
def test_writer_globs(flag_key: str | None, expected: bool) -> None:
    record = make(Role.WRITER, flags=("checkout-*", "search", "exp-[ab]"))
    assert allows(record, Action.WRITE_ITEM, "prod", flag_key, now=NOW) is expected
    assert allows(record, Action.READ, "prod", flag_key, now=NOW)  # globs limit writes only


def test_globbed_writer_may_not_write_segments_and_says_why() -> None:
    record = make(Role.WRITER, flags=("checkout-*",))
    with pytest.raises(Forbidden, match=r"only flags matching checkout-\* \(so no segments\)"):
        require(record, Action.WRITE_ITEM, "prod", now=NOW)
    with pytest.raises(Forbidden, match='not "search"'):
        require(record, Action.WRITE_ITEM, "prod", "search", now=NOW)
    assert allows(make(Role.WRITER), Action.WRITE_ITEM, "prod", None, now=NOW)


@pytest.mark.parametrize("role", [Role.READER, Role.ADMIN], ids=str)
def test_only_writers_take_globs(role: Role) -> None:
    with pytest.raises(ValidationError, match="only writer tokens") as e:
        make(role, flags=("checkout-*",))
    assert e.value.path == "flags"


# --- liveness ---


def test_expired_and_revoked_tokens_do_not_authenticate() -> None:
    record = make(Role.ADMIN, days=1)
    check_live(record, NOW + DAY - 1)
    for now, message in ((NOW + DAY, "token expired"), (NOW + 2 * DAY, "token expired")):
        assert not allows(record, Action.READ, "prod", now=now)
        with pytest.raises(Unauthorized, match=message) as e:
            require(record, Action.READ, "prod", now=now)
        assert e.value.status_code == 401
    revoked = replace(record, revoked=NOW)
    assert not allows(revoked, Action.READ, "prod", now=NOW)
    for now in (NOW, NOW + 2 * DAY):  # revoked wins over expired
        with pytest.raises(Unauthorized, match="token revoked"):
            check_live(revoked, now)


def test_forbidden_is_in_the_error_tree() -> None:
    assert issubclass(Forbidden, RelayError) and (Forbidden.status_code, Forbidden.code) == (403, "forbidden")
    assert (Unauthorized.status_code, Unauthorized.code) == (401, "unauthorized")


# --- expiry ---


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (None, DEFAULT_EXPIRY),
        ("", DEFAULT_EXPIRY),
        ("  ", DEFAULT_EXPIRY),
        ("30d", 30 * DAY),
        ("12h", 12 * 3600),
        ("90m", 90 * 60),
        ("1m", 60),
        ("2w", 14 * DAY),
        ("1y", 365 * DAY),
        ("365d", 365 * DAY),
        ("8760h", 365 * DAY),
        ("52w", 364 * DAY),
        (" 7D ", 7 * DAY),
    ],
    ids=lambda v: repr(v),
)
def test_parse_expiry(text: str | None, seconds: float) -> None:
    assert parse_expiry(text, NOW) == NOW + seconds
    assert DEFAULT_EXPIRY == 30 * DAY and MAX_EXPIRY == 365 * DAY


@pytest.mark.parametrize(
    "text",
    [
        "0d",
        "0m",
        "-1d",
        "366d",
        "2y",
        "53w",
        "8761h",
        "1.5d",
        "30",
        "d",
        "30 days",
        "1e3d",
        "forever",
        "9" * 5000 + "d",
    ],
    ids=lambda v: v[:12],
)
def test_parse_expiry_refuses(text: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_expiry(text, NOW)
    assert e.value.path == "expires"


# --- escalation ---


WIDER = [
    ("writer-to-admin", make(Role.WRITER), Role.ADMIN, (), (), "role admin is above this token's writer"),
    ("reader-to-writer", make(Role.READER), Role.WRITER, (), (), "role writer is above"),
    ("widening-envs", make(envs=("prod",)), Role.READER, ("prod", "staging"), (), "environments staging, outside"),
    ("scoped-to-all-envs", make(envs=("prod",)), Role.READER, (), (), "all environments, where this token has only"),
    ("glob-to-all-flags", make(Role.WRITER, flags=("checkout-*",)), Role.WRITER, (), (), "all flags"),
    ("glob-to-star", make(Role.WRITER, flags=("checkout-*",)), Role.WRITER, (), ("*",), r"flags \*, not covered"),
    ("glob-to-wider-glob", make(Role.WRITER, flags=("checkout-*",)), Role.WRITER, (), ("check*",), "not covered"),
    # conservative: narrower in fact, but only literal globs and plain keys are recognised as covered
    ("glob-to-narrower-glob", make(Role.WRITER, flags=("checkout-*",)), Role.WRITER, (), ("checkout-?",), "not cov"),
    ("plain-key-outside", make(Role.WRITER, flags=("checkout-*",)), Role.WRITER, (), ("search",), "flags search"),
]


@pytest.mark.parametrize(
    ("parent", "role", "envs", "flags", "message"), [w[1:] for w in WIDER], ids=[w[0] for w in WIDER]
)
def test_can_grant_refuses_wider(
    parent: TokenRecord, role: Role, envs: tuple[str, ...], flags: tuple[str, ...], message: str
) -> None:
    with pytest.raises(Forbidden, match=message):
        can_grant(parent, role, envs, flags, NOW + DAY, NOW)


def test_can_grant_refuses_a_longer_life_and_names_everything_wider() -> None:
    parent = make(Role.WRITER, envs=("prod",), days=10)
    with pytest.raises(Forbidden, match=r"expiry in 11\.0 days, after this token's own \(in 10\.0 days\)"):
        can_grant(parent, Role.WRITER, ("prod",), (), NOW + 11 * DAY, NOW)
    with pytest.raises(Forbidden) as e:
        can_grant(parent, Role.ADMIN, ("prod", "dev"), (), NOW + 11 * DAY, NOW)
    assert str(e.value).count(";") == 2 and all(w in str(e.value) for w in ("role admin", "dev", "expiry"))


def test_an_expired_parent_grants_nothing() -> None:
    with pytest.raises(Unauthorized, match="token expired"):
        can_grant(make(days=1), Role.READER, ("prod",), (), NOW + DAY, NOW + 2 * DAY)


NARROWER = [
    ("same", make(Role.WRITER, ("prod",), ("checkout-*",)), Role.WRITER, ("prod",), ("checkout-*",)),
    ("admin-to-anything", make(Role.ADMIN), Role.WRITER, ("prod",), ("checkout-*", "x")),
    ("admin-to-admin-all", make(Role.ADMIN), Role.ADMIN, (), ()),
    ("fewer-envs", make(Role.ADMIN, ("prod", "staging")), Role.READER, ("staging",), ()),
    ("plain-key-in-glob", make(Role.WRITER, (), ("checkout-*",)), Role.WRITER, (), ("checkout-new",)),
    ("subset-of-globs", make(Role.WRITER, (), ("checkout-*", "search")), Role.WRITER, (), ("search",)),
    ("reader-of-globbed-writer", make(Role.WRITER, (), ("checkout-*",)), Role.READER, (), ()),
    ("unglobbed-parent-any-glob", make(Role.WRITER), Role.WRITER, (), ("anything-*",)),
]


@pytest.mark.parametrize(("parent", "role", "envs", "flags"), [n[1:] for n in NARROWER], ids=[n[0] for n in NARROWER])
def test_can_grant_accepts_narrower(
    parent: TokenRecord, role: Role, envs: tuple[str, ...], flags: tuple[str, ...]
) -> None:
    can_grant(parent, role, envs, flags, parent.expires, NOW)


# --- issuing, rotating, revoking ---


def test_only_admins_issue_tokens() -> None:
    for role in (Role.READER, Role.WRITER):
        with pytest.raises(Forbidden, match="manage_tokens needs the admin role"):
            issue("bob", Role.READER, ("prod",), (), NOW + DAY, NOW, by=make(role))
    admin = make(Role.ADMIN, envs=("prod",))
    token, record = issue("bob", Role.WRITER, ("prod",), ("checkout-*",), NOW + DAY, NOW, by=admin)
    assert looks_valid(token) and record.created_by == admin.id and record.created == NOW
    assert (record.role, record.envs, record.flags, record.name) == (Role.WRITER, ("prod",), ("checkout-*",), "bob")
    with pytest.raises(Forbidden, match="all environments"):
        issue("bob", Role.READER, (), (), NOW + DAY, NOW, by=admin)
    with pytest.raises(Forbidden, match="expiry"):
        issue("bob", Role.READER, ("prod",), (), NOW + 31 * DAY, NOW, by=admin)


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"by": "alice"}, "createdBy"),
        ({"name": " "}, "name"),
        ({"envs": ("bad key!",)}, "envs[0]"),
        ({"envs": ("prod", "")}, "envs[1]"),
        ({"flags": ("",)}, "flags[0]"),
        ({"role": Role.READER, "flags": ("x",)}, "flags"),
        ({"expires": NOW}, "expires"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(v),
)
def test_issue_refuses_malformed(kwargs: dict[str, Any], path: str) -> None:
    args: dict[str, Any] = {"name": "ann", "role": Role.WRITER, "envs": (), "flags": (), "expires": NOW + DAY}
    args["by"] = f"{DIRECT_REDIS}ann"
    args.update(kwargs)
    with pytest.raises(ValidationError) as e:
        issue(args["name"], args["role"], args["envs"], args["flags"], args["expires"], NOW, by=args["by"])
    assert e.value.path == path


def test_any_token_rotates_itself_keeping_id_scope_and_expiry() -> None:
    old_token, record = issue("ann", Role.READER, ("prod",), (), NOW + 5 * DAY, NOW, by="direct-redis:ann")
    token, rotated = rotate(record, record, NOW + DAY)
    assert looks_valid(token) and token != old_token
    assert rotated.hash == token_hash(token) != token_hash(old_token)
    assert rotated == replace(record, hash=rotated.hash)
    with pytest.raises(Forbidden, match="expiry"):  # rotating itself cannot extend its life
        rotate(record, record, NOW + DAY, expires=NOW + 6 * DAY)
    assert rotate(record, record, NOW + DAY, expires=NOW + 2 * DAY)[1].expires == NOW + 2 * DAY


def test_rotating_another_token_needs_an_admin_that_covers_it() -> None:
    target = make(Role.WRITER, envs=("prod",), days=20, name="bob")
    with pytest.raises(Forbidden, match="manage_tokens needs the admin role"):
        rotate(make(Role.WRITER), target, NOW)
    with pytest.raises(Forbidden, match="environments prod, outside"):
        rotate(make(Role.ADMIN, envs=("staging",)), target, NOW)
    short_admin = make(Role.ADMIN, days=10)
    with pytest.raises(Forbidden, match="expiry"):  # keeping target's 20 days would outlive the admin
        rotate(short_admin, target, NOW)
    _, rotated = rotate(short_admin, target, NOW, expires=NOW + 5 * DAY)
    assert (rotated.id, rotated.name, rotated.expires) == (target.id, "bob", NOW + 5 * DAY)
    with pytest.raises(ValidationError, match="revoked"):
        rotate(short_admin, replace(target, revoked=NOW), NOW, expires=NOW + DAY)
    long_admin, later = make(Role.ADMIN, days=60), NOW + 21 * DAY
    with pytest.raises(ValidationError) as e:  # an expired token rotated as it is would be born expired
        rotate(long_admin, target, later)
    assert e.value.path == "expires"
    check_live(rotate(long_admin, target, later, expires=later + DAY)[1], later)  # or revived, by an admin


def test_authorize_grant_is_the_one_check() -> None:
    writer = make(Role.WRITER)
    authorize_grant(writer, writer, NOW)  # itself
    with pytest.raises(Forbidden):
        authorize_grant(writer, make(Role.READER), NOW)


def test_revoking() -> None:
    admin, bob = make(Role.ADMIN, envs=("prod",), days=5), make(Role.WRITER, envs=("prod",), days=20, name="bob")
    revoked = revoke(bob, bob, NOW + DAY)  # itself, any role
    assert revoked.revoked == NOW + DAY and revoke(bob, revoked, NOW + 2 * DAY).revoked == NOW + DAY
    with pytest.raises(Unauthorized, match="token revoked"):
        check_live(revoked, NOW + DAY)
    assert revoke(admin, bob, NOW).revoked == NOW  # a shorter-lived admin may still end it
    with pytest.raises(Forbidden, match="manage_tokens"):
        revoke(make(Role.WRITER), bob, NOW)
    with pytest.raises(Forbidden, match="all environments"):  # a lesser admin cannot switch off a wider one
        revoke(admin, make(Role.ADMIN), NOW)


# --- the stored record ---


def test_record_round_trips_as_plain_json() -> None:
    record = replace(make(Role.WRITER, envs=("prod",), flags=("checkout-*",)), last_used=NOW + 5, revoked=NOW + 9)
    data = json.loads(json.dumps(record.to_dict()))
    assert set(data) == {"id", "name", "role", "hash", "envs", "flags", "created", "expires", "createdBy"} | {
        "lastUsed",
        "revoked",
    }
    assert data["role"] == "writer" and type(data["role"]) is str and data["envs"] == ["prod"]
    assert TokenRecord.from_dict(data) == record
    fresh = make()
    assert TokenRecord.from_dict(fresh.to_dict()) == fresh


def test_unknown_fields_are_kept_and_integers_accepted() -> None:
    data = {**make().to_dict(), "note": {"from": "a newer version"}, "created": 1_700_000_000}
    record = TokenRecord.from_dict(data)
    assert record.created == 1_700_000_000.0 and record.to_dict()["note"] == {"from": "a newer version"}


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def mutate(data: dict[str, Any]) -> Any:
        data[key] = value
        return data

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda data: {k: v for k, v in data.items() if k != key}


CORRUPT: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("not-an-object", lambda d: [d], "token"),
    ("no-id", _drop("id"), "token.id"),
    ("bad-id", _set("id", "tok_XYZ"), "token.id"),
    ("role-unknown", _set("role", "superuser"), "role"),
    ("role-number", _set("role", 2), "role"),
    ("hash-short", _set("hash", "abc"), "hash"),
    ("hash-upper", lambda d: _set("hash", d["hash"].upper())(d), "hash"),
    ("envs-string", _set("envs", "prod"), "envs"),
    ("envs-number", _set("envs", [1]), "envs[0]"),
    ("envs-bad-key", _set("envs", ["prod", "no spaces"]), "envs[1]"),
    ("flags-missing", _drop("flags"), "flags"),
    ("flags-empty-glob", _set("flags", [""]), "flags[0]"),
    ("flags-on-admin", _set("flags", ["checkout-*"]), "flags"),
    ("created-string", _set("created", "yesterday"), "created"),
    ("created-bool", _set("created", True), "created"),
    ("expires-null", _set("expires", None), "expires"),
    ("expires-nan", _set("expires", math.nan), "expires"),
    ("last-used-string", _set("lastUsed", "now"), "lastUsed"),
    ("revoked-bool", _set("revoked", True), "revoked"),
    ("created-by-anyone", _set("createdBy", "someone"), "createdBy"),
    ("name-empty", _set("name", ""), "name"),
    ("name-missing", _drop("name"), "name"),
]


@pytest.mark.parametrize(("mutate", "path"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_from_dict_refuses_corrupted_data_with_the_path(mutate: Callable[[dict[str, Any]], Any], path: str) -> None:
    record = make()
    with pytest.raises(ValidationError) as e:
        TokenRecord.from_dict(mutate(record.to_dict()))
    expected = path if path.startswith("token") else f"tokens.{record.id}.{path}"
    assert e.value.path == expected
    assert e.value.status_code == 400
