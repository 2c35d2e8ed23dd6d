"""Environments and their credentials.

An environment has a server-side SDK key (`sdk-…`), a public client-side ID (24 hex digits, in
browser URLs) and a mobile key (`mob-…`). Redis keeps only SHA-256 hashes of the secret keys: a
key is 128 random bits, so a fast hash is enough (no dictionary to attack) and a Redis dump
reveals nothing usable. A rotated key keeps working until its grace period ends. For secure mode
an SDK key may also be kept sealed (encrypted, see `relay.access.sealing`) beside its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from relay.errors import ValidationError

# \A…\Z, and fullmatch: "$" also matches before a final newline, and "prod\n" passed as a key.
ENV_KEY = re.compile(r"\A[A-Za-z0-9._-]{1,64}\Z")
# Names relay's own Redis keys and channels use under the prefix (relay.store.storage's layout), which
# an environment of that name would share: the one list of them, for every part of relay.
RESERVED_ENV_KEYS = frozenset({"environments", "tokens"})
_RESERVED_WHY = {
    "environments": "relay keeps its list of environments under that name",
    "tokens": "relay keeps its personal access tokens under that name",
}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def secure_mode_hash(sdk_key: str, fully_qualified_key: str) -> str:
    """LaunchDarkly's secure-mode hash (the browser SDK's `hash` option, sent as `h`): lowercase hex
    HMAC-SHA256 keyed with the SDK key over the context's fully-qualified key, as the Python SDK's
    `LDClient.secure_mode_hash(context)` computes it."""
    return hmac.new(sdk_key.encode(), fully_qualified_key.encode(), hashlib.sha256).hexdigest()


_HEX = re.compile(r"[0-9a-fA-F]")
_KIND_PREFIX = re.compile(r"\A[a-z]{3}-")


def mask_key(key: str) -> str:
    """A key as LaunchDarkly's Relay Proxy shows it on /status (its `ObscureKey` rule): a
    three-letter prefix such as `sdk-` kept, every hex digit but those of the last 5 characters
    starred, other characters kept (`sdk-********-****-****-****-*******99999`)."""
    if _KIND_PREFIX.match(key):
        return key[:4] + mask_key(key[4:])
    if len(key) > 4:
        return _HEX.sub("*", key[:-5]) + key[-5:]
    return key


def credential(key: str, sealed: str | None = None) -> Credential:
    """The record of a new key: its hash and, for /status, its masked form (5 of 36 characters,
    as LaunchDarkly shows them); never the key itself (bar `sealed`, encrypted, for secure mode)."""
    return Credential(hash_key(key), sealed=sealed, masked=mask_key(key))


def new_sdk_key() -> str:
    return f"sdk-{secrets.token_hex(16)}"


def new_mobile_key() -> str:
    return f"mob-{secrets.token_hex(16)}"


def new_client_side_id() -> str:
    return secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Credential:
    hash: str
    expires_ms: int | None = None  # set when the key was rotated out
    sealed: str | None = None  # the SDK key itself, encrypted, for secure mode (relay.access.sealing)
    masked: str | None = None  # `mask_key` of the key, for /status; None in records made before it was kept

    def valid_at(self, now_ms: int) -> bool:
        return self.expires_ms is None or now_ms < self.expires_ms


@dataclass(frozen=True, slots=True)
class Environment:
    key: str
    name: str
    created_ms: int
    client_side_id: str
    sdk_keys: tuple[Credential, ...] = ()
    mobile_keys: tuple[Credential, ...] = ()
    secure_mode: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def accepts(self, kind: str, key: str, now_ms: int) -> bool:
        """Whether `key` is a live SDK ("sdk") or mobile ("mobile") key of this environment."""
        digest = hash_key(key)
        creds = self.sdk_keys if kind == "sdk" else self.mobile_keys
        ok = False
        for cred in creds:  # every candidate compared, in constant time
            ok |= hmac.compare_digest(cred.hash, digest) and cred.valid_at(now_ms)
        return ok

    def live(self, kind: str, now_ms: int) -> tuple[Credential, ...]:
        return tuple(c for c in (self.sdk_keys if kind == "sdk" else self.mobile_keys) if c.valid_at(now_ms))

    def rotated(self, kind: str, new_key: str, now_ms: int, grace_ms: int, sealed: str | None = None) -> Environment:
        """A new primary key; the current live ones expire after the grace period."""
        expiring = tuple(
            replace(c, expires_ms=min(c.expires_ms or now_ms + grace_ms, now_ms + grace_ms))
            for c in self.live(kind, now_ms)
        )
        fresh = (credential(new_key, sealed), *expiring)
        return replace(self, sdk_keys=fresh) if kind == "sdk" else replace(self, mobile_keys=fresh)

    def to_dict(self) -> dict[str, Any]:
        def creds(cs: tuple[Credential, ...]) -> list[dict[str, Any]]:
            return [
                {
                    "hash": c.hash,
                    "expires": c.expires_ms,
                    **({"sealed": c.sealed} if c.sealed else {}),
                    **({"masked": c.masked} if c.masked else {}),
                }
                for c in cs
            ]

        return {
            **self.extra,
            "key": self.key,
            "name": self.name,
            "created": self.created_ms,
            "clientSideId": self.client_side_id,
            "sdkKeys": creds(self.sdk_keys),
            "mobileKeys": creds(self.mobile_keys),
            "secureMode": self.secure_mode,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Environment:
        try:

            def creds(items: list[dict[str, Any]]) -> tuple[Credential, ...]:
                return tuple(
                    Credential(str(c["hash"]), c.get("expires"), c.get("sealed") or None, c.get("masked") or None)
                    for c in items
                )

            known = {"key", "name", "created", "clientSideId", "sdkKeys", "mobileKeys", "secureMode"}
            return Environment(
                key=str(data["key"]),
                name=str(data.get("name") or data["key"]),
                created_ms=int(data.get("created") or 0),
                client_side_id=str(data["clientSideId"]),
                sdk_keys=creds(data.get("sdkKeys") or []),
                mobile_keys=creds(data.get("mobileKeys") or []),
                secure_mode=bool(data.get("secureMode")),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValidationError("environment", f"malformed environment record: {e!r}") from None


def check_env_key(key: str) -> None:
    """A key a new environment may have: the pattern, and none of RESERVED_ENV_KEYS."""
    if not ENV_KEY.fullmatch(key):
        shown = key.encode("unicode_escape").decode()  # a newline shown as \n, not as a line break
        raise ValidationError("env", f'environment keys use letters, digits, ".", "_" and "-" (1 to 64), got "{shown}"')
    if key in RESERVED_ENV_KEYS:
        why = _RESERVED_WHY.get(key, "relay uses that name in its Redis keys")
        raise ValidationError("env", f'"{key}" is reserved ({why}); choose another key')
