"""The write path (the CLI now, an admin API later): validate, then write through one Redis script.

Nothing here touches a node's in-memory ruleset: every change reaches every node the same way,
through Redis pub/sub. relay owns item versions: each write stores the current version + 1.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from relay.access.environments import (
    Credential,
    Environment,
    check_env_key,
    hash_key,
    new_client_side_id,
    new_mobile_key,
    new_sdk_key,
)
from relay.access.sealing import Sealer, SealError, aad
from relay.config import Settings
from relay.errors import ConflictError, NotFoundError, ValidationError
from relay.evaluation import parse_flag, parse_items, parse_segment
from relay.store.storage import ItemWrite, Storage
from relay.wire import codec

KINDS = ("flag", "segment")
_PARSERS: dict[str, Callable[..., Any]] = {"flag": parse_flag, "segment": parse_segment}
_RETRIES = 10


@dataclass(frozen=True, slots=True)
class WriteResult:
    items: list[dict[str, Any]]  # what was stored, canonical JSON
    data_versions: list[int]


def _version_of(raw: bytes | None) -> int:
    return -1 if raw is None else int(codec.loads(raw).get("version", 0))


def _is_live(raw: bytes | None) -> bool:
    return raw is not None and not codec.loads(raw).get("deleted", False)


class Admin:
    # Set from Settings.max_item_bytes by callers that have settings (the CLI); the default otherwise.
    max_item_bytes: int = Settings().max_item_bytes

    def __init__(
        self, storage: Storage, *, actor: str, clock: Callable[[], float] = time.time, sealer: Sealer | None = None,
        audit_fields: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.storage = storage
        self.actor = actor
        # How `actor` was established, in every audit entry: {"via": "api", "token": "tok_…"} for the admin
        # API (actor: the token's owner), {"via": "direct-redis", "os_user": …} for the CLI on Redis itself.
        self.audit_fields = dict(audit_fields or {})
        self.clock = clock
        self.sealer = sealer  # with one, SDK keys are also stored sealed, so secure mode can use them

    def _seal(self, env_key: str, sdk_key: str) -> str | None:
        return self.sealer.seal(sdk_key, aad(env_key, hash_key(sdk_key))) if self.sealer else None

    def _no_secret_key(self, what: str) -> ValidationError:
        return ValidationError("secret_key", f"{what} needs the secret key that seals SDK keys: set RELAY_SECRET_KEY")

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # environments -------------------------------------------------------------------------------
    async def environment(self, env: str) -> Environment:
        raw = await self.storage.environment(env)
        if raw is None:
            known = sorted(await self.storage.environments())
            raise NotFoundError(f'unknown environment "{env}" (known: {", ".join(known) or "none"})')
        return Environment.from_dict(codec.loads(raw))

    async def list_environments(self) -> list[Environment]:
        raw = await self.storage.environments()
        return [Environment.from_dict(codec.loads(v)) for _, v in sorted(raw.items())]

    async def create_environment(
        self, key: str, name: str | None = None, *, secure_mode: bool = False
    ) -> tuple[Environment, dict[str, str]]:
        """A new environment and its keys; the secret keys exist in plain text only in the return value."""
        check_env_key(key)
        if secure_mode and self.sealer is None:
            raise self._no_secret_key("secure mode")
        sdk_key, mobile_key = new_sdk_key(), new_mobile_key()
        env = Environment(
            key=key,
            name=name or key,
            created_ms=self._now_ms(),
            client_side_id=new_client_side_id(),
            sdk_keys=(Credential(hash_key(sdk_key), sealed=self._seal(key, sdk_key)),),
            mobile_keys=(Credential(hash_key(mobile_key)),),
            secure_mode=secure_mode,
        )
        if not await self.storage.create_environment(key, codec.dumps(env.to_dict())):
            raise ConflictError(f'environment "{key}" already exists')
        await self.storage.audit_environment(
            key,
            actor=self.actor,
            action="env-create",
            comment="",
            now_ms=env.created_ms,
            audit_fields=self.audit_fields,
        )
        secrets = {"key": key, "sdk_key": sdk_key, "client_side_id": env.client_side_id, "mobile_key": mobile_key}
        return env, secrets

    async def rotate_key(self, env_key: str, kind: str, grace_seconds: float, comment: str = "") -> str:
        """A new SDK ("sdk") or mobile ("mobile") key; the old one works for `grace_seconds` more."""
        raw = await self.storage.environment(env_key)
        env = await self.environment(env_key)
        if kind == "sdk" and env.secure_mode and self.sealer is None:
            raise self._no_secret_key(f'"{env_key}" is in secure mode: rotating its SDK key')
        new_key = new_sdk_key() if kind == "sdk" else new_mobile_key()
        now = self._now_ms()
        sealed = self._seal(env_key, new_key) if kind == "sdk" else None
        rotated = env.rotated(kind, new_key, now, int(grace_seconds * 1000), sealed)
        await self.storage.replace_environment(env_key, raw or b"", codec.dumps(rotated.to_dict()))
        await self.storage.audit_environment(
            env_key,
            actor=self.actor,
            action=f"rotate-{kind}-key",
            comment=comment,
            now_ms=now,
            audit_fields=self.audit_fields,
        )
        return new_key

    async def set_secure_mode(self, env_key: str, on: bool, *, sdk_key: str | None = None, comment: str = "") -> None:
        """Turn secure mode on or off. On needs the current SDK key sealed under this secret key: sealed
        when the key was made, or now from `sdk_key` (checked against the stored hash)."""
        raw = await self.storage.environment(env_key)
        env = await self.environment(env_key)
        now = self._now_ms()
        creds = env.sdk_keys
        if on:
            if self.sealer is None:
                raise self._no_secret_key("secure mode")
            if sdk_key is not None:
                if not env.accepts("sdk", sdk_key, now):
                    raise ValidationError("sdk_key", f'not a live SDK key of "{env_key}"')
                digest = hash_key(sdk_key)
                creds = tuple(replace(c, sealed=self._seal(env_key, sdk_key)) if c.hash == digest else c for c in creds)
            primary = next((c for c in creds if c.expires_ms is None), None)
            if primary is None or not self._opens(env_key, primary):
                raise ValidationError(
                    "sdk_key",
                    f'the current SDK key of "{env_key}" is not sealed under this secret key; give it with '
                    "--sdk-key-stdin, or rotate it (relay env rotate-key --sdk) with RELAY_SECRET_KEY set",
                )
        updated = replace(env, sdk_keys=creds, secure_mode=on)
        if updated == env:
            return
        await self.storage.replace_environment(env_key, raw or b"", codec.dumps(updated.to_dict()))
        await self.storage.audit_environment(
            env_key,
            actor=self.actor,
            action=f"secure-mode-{'on' if on else 'off'}",
            comment=comment,
            now_ms=now,
            audit_fields=self.audit_fields,
        )

    def _opens(self, env_key: str, cred: Credential) -> bool:
        if self.sealer is None or cred.sealed is None:
            return False
        try:
            return hash_key(self.sealer.open(cred.sealed, aad(env_key, cred.hash))) == cred.hash
        except SealError:
            return False

    # reads --------------------------------------------------------------------------------------
    async def list_items(self, env: str, kind: str) -> dict[str, dict[str, Any]]:
        await self.environment(env)
        raw = await self.storage.all_items(env, kind)
        items = {k: codec.loads(v) for k, v in raw.items()}
        return {k: v for k, v in sorted(items.items()) if not v.get("deleted")}

    async def get_item(self, env: str, kind: str, key: str) -> dict[str, Any]:
        await self.environment(env)
        raw = (await self.storage.items(env, kind, [key]))[key]
        if not _is_live(raw):
            raise NotFoundError(f'no {kind} "{key}" in environment "{env}"')
        return codec.loads(raw)  # type: ignore[arg-type, no-any-return]

    async def export(self, env: str) -> dict[str, Any]:
        return {"flags": await self.list_items(env, "flag"), "segments": await self.list_items(env, "segment")}

    async def audit(
        self, env: str, *, key: str | None = None, since_ms: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        await self.environment(env)
        entries = await self.storage.audit(env, since_ms=since_ms, count=limit if key is None else 100_000)
        if key is not None:
            entries = [e for e in entries if e.get("key") == key][:limit]
        return entries

    # writes -------------------------------------------------------------------------------------
    def _prepare(self, kind: str, key: str, data: dict[str, Any], raw: bytes | None, action: str) -> ItemWrite:
        seen = _version_of(raw)
        item = {**data, "key": key, "version": max(seen, 0) + 1}
        if action == "delete":
            item = {"key": key, "version": max(seen, 0) + 1, "deleted": True}
        canonical = _PARSERS[kind](item, path=f"{kind}s.{key}", strict=True).data
        item_json = codec.dumps(canonical)
        self._check_size(kind, key, item_json)
        tail = (
            b',"kind":' + codec.dumps(kind) + b',"key":' + codec.dumps(key)
            + b',"time":' + str(self._now_ms()).encode() + b',"item":' + item_json + b"}"
        )  # fmt: skip
        if action == "set":
            action = "update" if _is_live(raw) else "create"
        return ItemWrite(kind, key, seen, item_json, action, raw or b"", tail)

    def _check_size(self, kind: str, key: str, item_json: bytes) -> None:
        if len(item_json) > self.max_item_bytes:
            raise ValidationError(
                f"{kind}s.{key}", f"{len(item_json):,} bytes as JSON, over max_item_bytes ({self.max_item_bytes:,})"
            )

    async def _write(self, env: str, writes: list[ItemWrite], comment: str) -> WriteResult:
        versions = await self.storage.write(
            env, writes, actor=self.actor, comment=comment, now_ms=self._now_ms(), audit_fields=self.audit_fields
        )
        return WriteResult([codec.loads(w.item_json) for w in writes], versions)

    async def _single(
        self,
        env: str,
        kind: str,
        key: str,
        change: Callable[[bytes | None], tuple[dict[str, Any], str] | None],
        expected_version: int | None,
        comment: str,
    ) -> WriteResult:
        await self.environment(env)
        for _ in range(_RETRIES):
            raw = (await self.storage.items(env, kind, [key]))[key]
            current = max(_version_of(raw), 0)
            if expected_version is not None and expected_version != current:
                raise ConflictError(f'{kind} "{key}" is at version {current}, not {expected_version}; nothing written')
            planned = change(raw)
            if planned is None:
                return WriteResult([codec.loads(raw)] if raw else [], [])
            data, action = planned
            try:
                return await self._write(env, [self._prepare(kind, key, data, raw, action)], comment)
            except ConflictError:
                if expected_version is not None:
                    raise
        raise ConflictError(f'{kind} "{key}" kept changing; gave up after {_RETRIES} tries')

    async def put_item(
        self, env: str, kind: str, data: Any, *, key: str | None = None, expected_version: int | None = None,
        comment: str = "",
    ) -> WriteResult:  # fmt: skip
        """Create or replace a flag or segment (validated strictly first)."""
        if not isinstance(data, dict):
            raise ValidationError(kind, "expected a JSON object")
        key = key or data.get("key")
        if not isinstance(key, str):
            raise ValidationError(f"{kind}.key", "is required")
        if data.get("key", key) != key:
            raise ValidationError(f"{kind}.key", f'"{data["key"]}" does not match "{key}"')
        if data.get("deleted") is True:  # a tombstone written as a "set" would skip delete's checks and audit
            raise ValidationError(f"{kind}s.{key}.deleted", "cannot set a deleted item; delete it instead")
        # Validate before reading anything, so bad input fails fast with its path.
        parsed = _PARSERS[kind]({**data, "key": key, "version": 1}, path=f"{kind}s.{key}", strict=True)
        self._check_size(kind, key, codec.dumps(parsed.data))
        return await self._single(env, kind, key, lambda raw: (data, "set"), expected_version, comment)

    async def toggle(
        self, env: str, key: str, on: bool, *, expected_version: int | None = None, comment: str = ""
    ) -> WriteResult:
        """The kill switch: turn targeting on or off (no write if it already is)."""

        def change(raw: bytes | None) -> tuple[dict[str, Any], str] | None:
            if not _is_live(raw):
                raise NotFoundError(f'no flag "{key}" in environment "{env}"')
            current = codec.loads(raw)  # type: ignore[arg-type]
            return None if current.get("on") is on else ({**current, "on": on}, "toggle")

        return await self._single(env, "flag", key, change, expected_version, comment)

    async def delete_item(
        self, env: str, kind: str, key: str, *, expected_version: int | None = None, comment: str = ""
    ) -> WriteResult:
        def change(raw: bytes | None) -> tuple[dict[str, Any], str]:
            if not _is_live(raw):
                raise NotFoundError(f'no {kind} "{key}" in environment "{env}"')
            return {}, "delete"

        return await self._single(env, kind, key, change, expected_version, comment)

    async def import_items(
        self, env: str, doc: Any, *, replace_all: bool = False, comment: str = "",
        check: Callable[[str, str], None] | None = None,
    ) -> WriteResult:  # fmt: skip
        """All or nothing: every item is validated before anything is written, then one atomic write.
        With `replace_all`, items missing from the document are deleted. `check(kind, key)` sees every item
        about to be written or deleted, and may refuse the whole import by raising (a token's scope)."""
        flags, segments = parse_items(doc, strict=True, default_version=1)
        items = {"flag": {k: f.data for k, f in flags.items()}, "segment": {k: s.data for k, s in segments.items()}}
        await self.environment(env)
        for _ in range(_RETRIES):
            writes: list[ItemWrite] = []
            for kind in KINDS:
                current = await self.storage.all_items(env, kind)
                for key, data in items[kind].items():
                    writes.append(self._prepare(kind, key, data, current.get(key), "import"))
                if replace_all:
                    for key in sorted(set(current) - set(items[kind])):
                        if _is_live(current[key]):
                            writes.append(self._prepare(kind, key, {}, current[key], "delete"))
            if not writes:
                return WriteResult([], [])
            for w in writes if check is not None else ():
                check(w.kind, w.key)
            try:
                return await self._write(env, writes, comment)
            except ConflictError:
                continue
        raise ConflictError(f"the environment kept changing during the import; gave up after {_RETRIES} tries")

    async def accept_redis_data(self, env: str, comment: str = "") -> int:
        """After Redis lost data: every node takes Redis's current data for `env` as it is (a new
        epoch), where nodes otherwise keep serving their newer rulesets. Returns the data version."""
        epoch = secrets.token_hex(8)
        version = await self.storage.new_epoch(env, epoch)
        await self.storage.audit_environment(
            env,
            actor=self.actor,
            action="accept-redis-data",
            comment=comment or f"epoch {epoch}",
            now_ms=self._now_ms(),
            audit_fields=self.audit_fields,
        )
        return version
