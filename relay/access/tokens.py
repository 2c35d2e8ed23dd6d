"""Personal access tokens: their format, their stored record, and what each role and scope allows.

A token is `relay_pat_` + 30 base62 characters from `secrets` (178 bits) + a 6-character base62 CRC32 of both, as
GitHub's `ghp_`: secret scanners know the prefix (`TOKEN_PATTERN`), and `looks_valid` refuses a typo before
any lookup. Redis keeps only its SHA-256 (the secret is random, so a fast hash is enough); a public id (`tok_`
+ 12 hex digits) names it in audit rows, URLs and revocation. Roles rank reader < writer < admin; `envs`
limits a token to some environments, `flags` a writer to some flag keys (globs), empty meaning all. Every
token expires within a year, and none grants more than it has. Pure: no I/O; times are epoch seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import string
import zlib
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from relay.access.environments import ENV_KEY
from relay.errors import Forbidden, Unauthorized, ValidationError

PREFIX = "relay_pat_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
SECRET_CHARS, CHECKSUM_CHARS = 30, 6  # 62**6 > 2**32: any CRC32 fits in 6
TOKEN_PATTERN = rf"{PREFIX}[0-9A-Za-z]{{{SECRET_CHARS + CHECKSUM_CHARS}}}"  # for secret scanners' rules
DIRECT_REDIS = "direct-redis:"  # created_by of tokens the CLI writes straight to Redis, + the OS user
DEFAULT_EXPIRY, MAX_EXPIRY = 30 * 86_400.0, 365 * 86_400.0
_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}
_DURATION = re.compile(r"([0-9]{1,9})([mhdwy])")  # bounded: int() refuses over 4,300 digits
_TOKEN, _ID, _HASH = re.compile(TOKEN_PATTERN), re.compile(r"tok_[0-9a-f]{12}"), re.compile(r"[0-9a-f]{64}")
_GLOB_CHARS = frozenset("*?[")  # what fnmatch treats as special outside brackets
Keys = tuple[str, ...]  # environment keys, or flag globs
Issued = tuple[str, "TokenRecord"]  # a new token, to show once, and its record, to store


def _checksum(body: str) -> str:
    crc = zlib.crc32(body.encode())  # in base62, most significant digit first
    return "".join(ALPHABET[crc // 62**i % 62] for i in reversed(range(CHECKSUM_CHARS)))


def generate() -> str:
    """A new token: show it once, keep only `token_hash(token)`."""
    body = PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_CHARS))
    return body + _checksum(body)


def looks_valid(token: object) -> bool:
    """Whether `token` is well formed (prefix, charset, length, checksum), so that a typo costs no lookup."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return False
    return constant_time_equal(token[-CHECKSUM_CHARS:], _checksum(token[:-CHECKSUM_CHARS]))


def token_hash(token: str) -> str:
    """What is stored in place of a token: the SHA-256, hex, of its exact text."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_id() -> str:
    """A public id, random rather than derived from the secret, so that showing it reveals nothing."""
    return f"tok_{secrets.token_hex(6)}"


def constant_time_equal(a: str, b: str) -> bool:
    """Equality in time independent of where the strings differ (bytes: compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(a.encode(), b.encode())


_ORDER = ("reader", "writer", "admin")


class Role(StrEnum):
    """Ordered reader < writer < admin, not as str would order them ("admin" < "reader"), hence the operators."""

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    def __lt__(self, other: object) -> bool:
        return _ORDER.index(self) < _ORDER.index(other)

    def __le__(self, other: object) -> bool:
        return _ORDER.index(self) <= _ORDER.index(other)

    def __gt__(self, other: object) -> bool:
        return _ORDER.index(self) > _ORDER.index(other)

    def __ge__(self, other: object) -> bool:
        return _ORDER.index(self) >= _ORDER.index(other)


class Action(StrEnum):
    READ = "read"  # flags, segments, experiments, the audit log
    WRITE_ITEM = "write_item"  # a flag (pass its key) or a segment (no key)
    MANAGE_ENV = "manage_env"  # environments, their SDK and mobile keys
    MANAGE_TOKENS = "manage_tokens"


_LEAST_ROLE = {Action.READ: Role.READER, Action.WRITE_ITEM: Role.WRITER}  # the others: admin
_JSON = {"created_by": "createdBy", "last_used": "lastUsed"}  # attribute names that differ in JSON
_FIELDS = {"id", "name", "role", "hash", "envs", "flags", "created", "expires", "createdBy", "lastUsed", "revoked"}


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: its hash, never the token. `revoked` is when it was revoked."""

    id: str
    name: str  # whose it is
    role: Role
    hash: str
    created: float
    expires: float
    created_by: str  # the issuing token's id, or "direct-redis:<os user>"
    envs: Keys = ()  # empty: every environment, including ones created later
    flags: Keys = ()  # fnmatchcase globs a writer's flag writes must match; empty: all flags
    last_used: float | None = None
    revoked: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # newer versions' fields, kept

    def covers_env(self, env: str | None) -> bool:
        """None: not confined to one environment (listing them all, creating one): all-environment tokens only."""
        return not self.envs or env in self.envs

    def covers_flag(self, flag_key: str | None) -> bool:
        """None: not one flag, such as a segment, whose change can alter any flag: only writers without globs."""
        return not self.flags or (flag_key is not None and any(fnmatchcase(flag_key, g) for g in self.flags))

    def covers_glob(self, glob: str) -> bool:
        """Whether all `glob` matches, this token may write: conservatively (is "a?c" within "a*"? classes?), if
        it is one of this token's globs literally, or a plain key (no glob characters) one of them matches."""
        return not self.flags or glob in self.flags or (not _GLOB_CHARS & set(glob) and self.covers_flag(glob))

    def to_dict(self) -> dict[str, Any]:
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        plain.update(role=str(self.role), envs=list(self.envs), flags=list(self.flags))
        return {**self.extra, **{_JSON.get(n, n): v for n, v in plain.items()}}

    @staticmethod
    def from_dict(data: Any) -> TokenRecord:
        """A stored record, checked field by field: bad data raises ValidationError with its path."""
        if not isinstance(data, dict):
            raise ValidationError("token", f"expected an object, got {type(data).__name__}")
        if not _ID.fullmatch(tid := _get(data, "token", "id", str)):
            raise ValidationError("token.id", f'expected "tok_" and 12 hex digits, got "{tid}"')
        at = f"tokens.{tid}"
        role, by, name = (_get(data, at, k, str) for k in ("role", "createdBy", "name"))
        if role not in _ORDER:
            raise ValidationError(f"{at}.role", f'expected reader, writer or admin, got "{role}"')
        if not _HASH.fullmatch(digest := _get(data, at, "hash", str)):
            raise ValidationError(f"{at}.hash", "expected 64 lowercase hex digits (a SHA-256)")
        envs, flags = tuple(_get(data, at, "envs", list)), tuple(_get(data, at, "flags", list))
        created, expires = _get(data, at, "created", float), _get(data, at, "expires", float)
        used, revoked = _get(data, at, "lastUsed", float, True), _get(data, at, "revoked", float, True)
        extra = {k: v for k, v in data.items() if k not in _FIELDS}
        record = TokenRecord(tid, name, Role(role), digest, created, expires, by, envs, flags, used, revoked, extra)
        return _checked(record, f"{at}.")


def _get(data: dict[str, Any], at: str, key: str, kind: type, optional: bool = False) -> Any:
    if (value := data.get(key)) is None and optional:
        return None
    if kind is float:  # a JSON number: int or float, but not bool (an int to Python), NaN or infinity
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif isinstance(value, kind):
        return value
    want = {str: "a string", float: "a number", list: "a list"}[kind]
    raise ValidationError(f"{at}.{key}", f"expected {want}, got {type(value).__name__}")


def _checked(record: TokenRecord, at: str = "") -> TokenRecord:
    """For issue and from_dict. Globs only on writers: a reader's would limit nothing, an admin's not envs/tokens."""
    for i, env in enumerate(record.envs):
        if not isinstance(env, str) or not ENV_KEY.fullmatch(env):
            raise ValidationError(f"{at}envs[{i}]", f"expected an environment key, got {env!r}")
    for i, glob in enumerate(record.flags):
        if not isinstance(glob, str) or not glob.strip():
            raise ValidationError(f"{at}flags[{i}]", f"expected a non-empty flag key or glob, got {glob!r}")
    if record.flags and record.role is not Role.WRITER:
        raise ValidationError(f"{at}flags", f"only writer tokens take flag globs, not {record.role}")
    if not record.name.strip():
        raise ValidationError(f"{at}name", "a token needs a name: whose it is")
    if not (_ID.fullmatch(by := record.created_by) or by.startswith(DIRECT_REDIS)):
        raise ValidationError(f"{at}createdBy", f'expected a token id or "{DIRECT_REDIS}<os user>", got "{by}"')
    return record


def parse_expiry(text: str | None, now: float) -> float:
    """Expiry for "90m", "12h", "30d", "2w", "1y" (None: 30 days); at most a year, so leaked tokens still die."""
    if not (text := (text or "").strip()):
        return now + DEFAULT_EXPIRY
    if not (m := _DURATION.fullmatch(text.lower())):
        raise ValidationError("expires", f'expected a duration such as "30d", "12h", "90m", "2w" or "1y", got "{text}"')
    if not 0 < (seconds := int(m[1]) * _UNITS[m[2]]) <= MAX_EXPIRY:
        raise ValidationError("expires", f'must be in the future and at most 365 days away, got "{text}"')
    return now + seconds


def check_live(record: TokenRecord, now: float) -> None:
    """Unauthorized for a revoked or expired token: it no longer establishes who is asking."""
    if record.revoked is not None or now >= record.expires:
        raise Unauthorized("token revoked" if record.revoked is not None else "token expired")


def _refusal(record: TokenRecord, action: Action, env: str | None, flag_key: str | None) -> str | None:
    if record.role < (need := _LEAST_ROLE.get(action, Role.ADMIN)):
        return f"{action} needs the {need} role, this token is {record.role}"
    if (env is not None or action is not Action.MANAGE_TOKENS) and not record.covers_env(env):
        return f"this token is limited to environments {', '.join(record.envs)}" + (f", not {env}" if env else "")
    if action is Action.WRITE_ITEM and not record.covers_flag(flag_key):
        segments = f', not "{flag_key}"' if flag_key is not None else " (so no segments)"
        return f"this token writes only flags matching {', '.join(record.flags)}{segments}"
    return None


def allows(
    record: TokenRecord, action: Action, env: str | None = None, flag_key: str | None = None, *, now: float
) -> bool:
    """Whether live `record` may do `action` in `env` on `flag_key` (see covers_env, covers_flag). Managing
    tokens with no env named is a matter of role: `can_grant` bounds what a scoped admin issues."""
    return record.revoked is None and now < record.expires and _refusal(record, action, env, flag_key) is None


def require(
    record: TokenRecord, action: Action, env: str | None = None, flag_key: str | None = None, *, now: float
) -> None:
    """As `allows`, raising Unauthorized (expired, revoked) or Forbidden (role or scope) with the reason."""
    check_live(record, now)
    if reason := _refusal(record, action, env, flag_key):
        raise Forbidden(reason)


def _wider(parent: TokenRecord, role: Role, envs: Keys, flags: Keys) -> list[str]:
    wider = [f"role {role} is above this token's {parent.role}"] if role > parent.role else []
    if parent.envs and not envs:
        wider.append(f"all environments, where this token has only {', '.join(parent.envs)}")
    elif outside := [e for e in envs if not parent.covers_env(e)]:
        wider.append(f"environments {', '.join(outside)}, outside this token's {', '.join(parent.envs)}")
    if role >= Role.WRITER and parent.flags:  # globs limit writes only: a reader needs no glob cover
        if not flags:
            wider.append(f"all flags, where this token writes only flags matching {', '.join(parent.flags)}")
        elif outside := [g for g in flags if not parent.covers_glob(g)]:
            wider.append(f"flags {', '.join(outside)}, not covered by this token's {', '.join(parent.flags)}")
    return wider


def can_grant(
    parent: TokenRecord, child_role: Role, child_envs: Keys, child_flags: Keys, child_expires: float, now: float
) -> None:
    """Forbidden, naming all that is wider, unless live `parent` has this role, scope and expiry itself."""
    check_live(parent, now)
    wider = _wider(parent, child_role, child_envs, child_flags)
    if child_expires > parent.expires:
        days = [f"{(t - now) / 86_400:.1f} days" for t in (child_expires, parent.expires)]
        wider.append(f"expiry in {days[0]}, after this token's own (in {days[1]})")
    if wider:
        raise Forbidden("wider than this token: " + "; ".join(wider))


def authorize_grant(actor: TokenRecord, child: TokenRecord, now: float) -> None:
    """The check for issuing or rotating into `child`: an admin (or `child` itself), who `can_grant` it."""
    if child.id != actor.id:
        require(actor, Action.MANAGE_TOKENS, now=now)
    can_grant(actor, child.role, child.envs, child.flags, child.expires, now)


def issue(name: str, role: Role, envs: Keys, flags: Keys, expires: float, now: float, by: TokenRecord | str) -> Issued:
    """A token `by` a token, checked (authorize_grant), or by "direct-redis:<user>", unchecked: Redis access is all."""
    if expires <= now:
        raise ValidationError("expires", "must be in the future")
    token, creator, envs, flags = generate(), by if isinstance(by, str) else by.id, tuple(envs), tuple(flags)
    record = TokenRecord(new_token_id(), name, Role(role), token_hash(token), now, expires, creator, envs, flags)
    _checked(record)
    if isinstance(by, TokenRecord):
        authorize_grant(by, record, now)
    return token, record


def rotate(actor: TokenRecord, target: TokenRecord, now: float, expires: float | None = None) -> Issued:
    """A new secret, same id and scope. `expires` None keeps the expiry: a token rotating itself can't extend it."""
    if target.revoked is not None:
        raise ValidationError("token", f"{target.id} is revoked: issue a new token instead")
    if (expires := target.expires if expires is None else expires) <= now:
        raise ValidationError("expires", "must be in the future")
    token = generate()
    authorize_grant(actor, rotated := replace(target, hash=token_hash(token), expires=expires), now)
    return token, rotated


def revoke(actor: TokenRecord, target: TokenRecord, now: float) -> TokenRecord:
    """Revoked by itself or an admin who could issue it (expiry aside: revoking only shortens); first time kept."""
    authorize_grant(actor, replace(target, expires=min(target.expires, actor.expires)), now)
    return target if target.revoked is not None else replace(target, revoked=now)
