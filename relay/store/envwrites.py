"""The write path for environments: create, keys, secure mode, accepting Redis's data, deletion.

`WritePath` (relay/store/writes.py) is this plus the item writes; callers use `WritePath`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from relay.access.environments import (
    Credential,
    Environment,
    check_env_key,
    credential,
    hash_key,
    new_client_side_id,
    new_mobile_key,
    new_sdk_key,
)
from relay.access.ownkeys import check_given_key
from relay.access.sealing import Sealer, SealError, aad
from relay.errors import ConflictError, NotFoundError, ValidationError
from relay.store.plan import Confirm, EnvironmentPlan
from relay.store.storage import Storage
from relay.wire import codec
from relay.wire.changes import deletion


class EnvironmentWrites:
    def __init__(
        self,
        storage: Storage,
        *,
        actor: str,
        clock: Callable[[], float] = time.time,
        sealer: Sealer | None = None,
        audit_fields: Mapping[str, str] | None = None,
    ) -> None:
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

    async def _audit(self, env: str, action: str, comment: str, now_ms: int) -> None:
        """An environment-level audit entry, with how the actor was established."""
        await self.storage.audit_environment(
            env, actor=self.actor, action=action, comment=comment, now_ms=now_ms, audit_fields=self.audit_fields
        )

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
        self,
        key: str,
        name: str | None = None,
        *,
        secure_mode: bool = False,
        sdk_key: str | None = None,
        mobile_key: str | None = None,
        client_side_id: str | None = None,
    ) -> tuple[Environment, dict[str, str]]:
        """A new environment and its keys; the secret keys exist in plain text only in the return value.

        Keys given (existing LaunchDarkly keys brought along) are used instead of new ones, after
        their shape is checked (relay.access.ownkeys) and refused if another environment holds them:
        nodes find an environment by key, so a key in two environments would be ambiguous."""
        check_env_key(key)
        given = {"sdkKey": sdk_key, "mobileKey": mobile_key, "clientSideId": client_side_id}
        for field, value in given.items():
            if value is not None:
                check_given_key(field, value)
        if secure_mode and self.sealer is None:
            raise self._no_secret_key("secure mode")
        if any(v is not None for v in given.values()):
            await self.refuse_taken_keys(sdk_key, mobile_key, client_side_id)
        sdk_key, mobile_key = sdk_key or new_sdk_key(), mobile_key or new_mobile_key()
        env = Environment(
            key=key,
            name=name or key,
            created_ms=self._now_ms(),
            client_side_id=client_side_id or new_client_side_id(),
            sdk_keys=(credential(sdk_key, self._seal(key, sdk_key)),),
            mobile_keys=(credential(mobile_key),),
            secure_mode=secure_mode,
        )
        if not await self.storage.create_environment(key, codec.dumps(env.to_dict()), now_ms=env.created_ms):
            raise ConflictError(f'environment "{key}" already exists')
        await self._audit(key, "env-create", "", env.created_ms)
        secrets = {"key": key, "sdk_key": sdk_key, "client_side_id": env.client_side_id, "mobile_key": mobile_key}
        return env, secrets

    async def refuse_taken_keys(self, sdk_key: str | None, mobile_key: str | None, client_side_id: str | None) -> None:
        """ConflictError if another environment has one of these keys (rotated-out ones count: nodes
        index them until they are gone). Checked before the create, not in its script: two creates
        racing with the same key are an operator's slip this does not catch."""
        wanted = {("sdk", hash_key(k)): "sdkKey" for k in (sdk_key,) if k} | {
            ("mobile", hash_key(k)): "mobileKey" for k in (mobile_key,) if k
        }
        for env in await self.list_environments():
            if client_side_id is not None and env.client_side_id == client_side_id:
                raise ConflictError(f'clientSideId: environment "{env.key}" already has this client-side ID')
            for kind, creds in (("sdk", env.sdk_keys), ("mobile", env.mobile_keys)):
                for cred in creds:
                    if (kind, cred.hash) in wanted:
                        field = wanted[(kind, cred.hash)]
                        raise ConflictError(f'{field}: environment "{env.key}" already has this key')

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
        await self._audit(env_key, f"rotate-{kind}-key", comment, now)
        return new_key

    async def rotation_plan(self, env_key: str, kind: str, grace_seconds: float) -> list[int | None]:
        """A dry run of `rotate_key`: when each key now live would stop working (None: never), with
        the new key first. A key already in a grace period keeps the earlier of its two ends."""
        env = await self.environment(env_key)
        now = self._now_ms()
        rotated = env.rotated(kind, "(dry run)", now, int(grace_seconds * 1000))
        return [c.expires_ms for c in (rotated.sdk_keys if kind == "sdk" else rotated.mobile_keys)]

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
        await self._audit(env_key, f"secure-mode-{'on' if on else 'off'}", comment, now)

    def _opens(self, env_key: str, cred: Credential) -> bool:
        if self.sealer is None or cred.sealed is None:
            return False
        try:
            return hash_key(self.sealer.open(cred.sealed, aad(env_key, cred.hash))) == cred.hash
        except SealError:
            return False

    # accepting Redis's data, deleting -----------------------------------------------------------
    async def lost_data(self, env: str) -> str:
        """Why Redis shows that it lost `env`'s data since its history began, or "" if it shows no sign.

        Only nodes see divergence itself (Redis's data version behind the one they hold, see
        relay/store/sync.py): nothing in Redis records what a node holds. The fact on Redis's side
        is the history mark `P:E:history`, written with the environment record when it is created
        and again by `accept`: a Redis that lost the environment's data lost the mark with it, and
        re-creating the record by hand and re-importing its items (the runbook's restore) does not
        bring it back. An environment made before the mark existed counts as whole while its audit
        stream still starts with its `env-create`. A Redis restored from an older RDB/AOF backup
        holds the mark and looks whole: for that, `accept` needs `force`.
        """
        if await self.storage.history_mark(env) is not None:
            return ""
        first = await self.storage.first_audit_entry(env)
        if first is not None and first.get("action") == "env-create":
            return ""
        return (
            "its record is in Redis but not the mark written with it at creation (or by the last accept): "
            "Redis lost its data since, and what is there now was restored"
        )

    async def _plan(
        self, env: str, action: str, dry_run: bool, *, lost_data: str = "", keys: tuple[str, ...] = ()
    ) -> EnvironmentPlan:
        await self.environment(env)
        flags, segments, version, _ = await self.storage.load(env)
        live = [sum(1 for v in items.values() if not codec.loads(v).get("deleted")) for items in (flags, segments)]
        return EnvironmentPlan(env, action, dry_run, live[0], live[1], version, lost_data, keys)

    async def accept_redis_data(
        self, env: str, *, force: bool = False, dry_run: bool = False, comment: str = ""
    ) -> EnvironmentPlan:
        """After Redis lost data: every node takes Redis's current data for `env` as it is (a new
        epoch), where nodes otherwise keep serving their newer rulesets; their streams reconnect.

        Refused (ConflictError, nothing done) unless Redis shows it lost the environment's data
        (`lost_data`) or `force` is given: on a whole environment it would only drop every stream."""
        plan = await self._plan(env, "accept", dry_run, lost_data=await self.lost_data(env))
        if not plan.lost_data and not force:
            raise ConflictError(
                f'environment "{env}" shows no sign of lost data in Redis (its history mark is there), so nodes '
                "are not diverged on it unless Redis was restored from an older backup; nothing done. If a "
                "node's /readyz lists it as diverged, run again with force (relay env accept --force)"
            )
        if dry_run:
            return plan
        epoch = secrets.token_hex(8)
        version = await self.storage.new_epoch(env, epoch)
        now = self._now_ms()
        await self.storage.mark_history(env, now)  # after the epoch: a crash between leaves it acceptable
        await self._audit(env, "accept-redis-data", comment or f"epoch {epoch}", now)
        return replace(plan, data_version=version)

    async def delete_environment(
        self, env: str, *, confirm: Confirm, dry_run: bool = False, comment: str = ""
    ) -> EnvironmentPlan:
        """Delete an environment: its record (so its keys stop working), flags, segments, data
        version, epoch, history mark and analytics events, in one script, audited as `env-delete`.

        The audit stream is kept (capped as always), so the deletion and what came before it stay
        readable (`relay audit --env E`); an environment created again under the key continues it.
        The environments channel carries `{"key": E, "deleted": true}`, which no environment record
        looks like (a record always has a `clientSideId`): a node that reads it drops the
        environment and ends its streams. `confirm` is asked with the plan first; False: nothing."""
        raw = await self.storage.environment(env)
        plan = await self._plan(env, "delete", dry_run, keys=self.storage.environment_data_keys(env))
        if dry_run:
            return plan
        if not confirm(plan):
            raise ValidationError(
                "", f'deleting environment "{env}" ({plan.flags} flags, {plan.segments} segments) was not confirmed; '
                "nothing deleted"
            )  # fmt: skip
        summary = f"with {plan.flags} flags and {plan.segments} segments"
        announcement = deletion(env)
        deleted = await self.storage.delete_environment(
            env,
            raw or b"",
            announcement,
            actor=self.actor,
            comment=comment or summary,
            now_ms=self._now_ms(),
            audit_fields=self.audit_fields,
        )
        if not deleted:
            raise ConflictError(f'environment "{env}" changed meanwhile; nothing deleted')
        return plan
