"""The write path (the CLI and the admin API): validate, then write through one Redis script.

Nothing here touches a node's in-memory ruleset: every change reaches every node the same way,
through Redis pub/sub. relay owns item versions: each write stores the current version + 1.

Every write plans first (relay/store/plan.py): per item, created, updated, deleted or unchanged,
with before and after. An item identical to the stored one apart from `version` is not written
(no new version, no audit entry, no message); a dry run returns the plan and writes nothing.

What LaunchDarkly's SDKs evaluate without error but a writer should hear of (docs/compatibility.md)
is written and returned as the result's `warnings`; a strict write refuses it, writing nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from relay.access.sealing import Sealer
from relay.config import Settings
from relay.errors import ConflictError, NotFoundError, RedisUnavailable, ValidationError
from relay.evaluation import DataWarning, parse_flag, parse_segment
from relay.store.checks import Items, check_size, checked_items, item_warnings
from relay.store.envwrites import EnvironmentWrites
from relay.store.events import free_for_write
from relay.store.plan import Confirm, ItemChange, WriteResult, same_content
from relay.store.storage import ItemWrite, Storage
from relay.wire import changes, codec

__all__ = ["KINDS", "WritePath", "WriteResult"]

logger = logging.getLogger(__name__)

KINDS = ("flag", "segment")
_PARSERS: dict[str, Callable[..., Any]] = {"flag": parse_flag, "segment": parse_segment}
_RETRIES = 10
_MAX_ITEM_BYTES = Settings().max_item_bytes  # the setting's default, for writers built without settings

Change = Callable[[bytes | None], tuple[dict[str, Any], str] | None]


def _version_of(raw: bytes | None) -> int:
    return -1 if raw is None else int(codec.loads(raw).get("version", 0))


def _is_live(raw: bytes | None) -> bool:
    return raw is not None and not codec.loads(raw).get("deleted", False)


def _expected(raw: bytes | None, expected_version: int) -> bool:
    """`--expect-version N`: the stored version is N; 0 ("must not exist") also takes a tombstone."""
    return expected_version == max(_version_of(raw), 0) or (expected_version == 0 and not _is_live(raw))


def _change_of(write: ItemWrite, raw: bytes | None) -> ItemChange:
    before = codec.loads(raw) if raw is not None else None
    after = codec.loads(write.item_json)
    if write.action == "delete":
        return ItemChange(write.kind, write.key, "deleted", before, after)
    if before is None or before.get("deleted"):
        return ItemChange(write.kind, write.key, "created", before, after)
    if same_content(before, after):
        return ItemChange(write.kind, write.key, "unchanged", before, before)  # stays as it is
    return ItemChange(write.kind, write.key, "updated", before, after)


class WritePath(EnvironmentWrites):
    """Every change to environments (EnvironmentWrites) and their items, on behalf of `actor`
    (named in the audit log). `max_item_bytes` and `strict` are Settings.max_item_bytes and
    Settings.strict_writes where the caller has settings (the CLI); a write's own `strict`, when
    given, wins over the writer's."""

    def __init__(
        self,
        storage: Storage,
        *,
        actor: str,
        clock: Callable[[], float] = time.time,
        sealer: Sealer | None = None,
        max_item_bytes: int = _MAX_ITEM_BYTES,
        audit_fields: Mapping[str, str] | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(storage, actor=actor, clock=clock, sealer=sealer, audit_fields=audit_fields)
        self.max_item_bytes = max_item_bytes
        self.strict = strict

    def _warnings(self, strict: bool | None) -> list[DataWarning] | None:
        """Where a write collects its warnings; None for a strict write, which refuses them."""
        return None if (self.strict if strict is None else strict) else []

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
        """Newest first. A deleted environment's audit stream stays readable."""
        if not await self.storage.audit_exists(env):
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
        # (Checked already, strict or not; a kill switch is never refused for what the flag holds.)
        canonical = _PARSERS[kind](item, path=f"{kind}s.{key}", strict=True, warnings=[]).data
        item_json = codec.dumps(canonical)
        self._check_size(kind, key, item_json)
        # The message's data version is spliced in front of this by the write script (relay.wire.changes).
        tail = changes.message_tail(kind, key, self._now_ms(), item_json)
        if action == "set":
            action = "update" if _is_live(raw) else "create"
        return ItemWrite(kind, key, seen, item_json, action, raw or b"", tail)

    def _check_size(self, kind: str, key: str, item_json: bytes) -> None:
        error = check_size(kind, key, item_json, self.max_item_bytes)
        if error is not None:
            raise error

    async def _write(self, env: str, writes: list[ItemWrite], comment: str, changes: list[ItemChange]) -> WriteResult:
        notes: list[str] = []
        try:
            versions = await self._store(env, writes, comment)
        except RedisUnavailable as e:
            if e.condition != "out_of_memory":
                raise
            # A kill switch must not wait for an operator to make room: SDK events are expendable.
            freed = await self._free_events(env, writes, e)
            try:
                versions = await self._store(env, writes, comment)  # the same one script: still all or nothing
            except RedisUnavailable as again:
                if again.condition != "out_of_memory":
                    raise
                raise RedisUnavailable(again.condition, f"{again}, also after {freed}", detail=again.detail) from None
            notes.append(f"Redis was out of memory: {freed}, then wrote")
        return WriteResult([codec.loads(w.item_json) for w in writes], versions, changes, notes=notes)

    async def _store(self, env: str, writes: list[ItemWrite], comment: str) -> list[int]:
        return await self.storage.write(
            env, writes, actor=self.actor, comment=comment, now_ms=self._now_ms(), audit_fields=self.audit_fields
        )

    async def _free_events(self, env: str, writes: list[ItemWrite], error: RedisUnavailable) -> str:
        """Free stored events (oldest first, every environment) for a write Redis refused for lack
        of memory, logging it; what was freed, in words."""
        size = sum(len(w.item_json) + len(w.before_json) + len(w.message_tail) for w in writes)
        freed = await free_for_write(self.storage, size)
        words = (
            f"relay freed {freed.entries} stored event batches ({freed.bytes / 1_048_576:.1f} MB, oldest first, "
            f"of {freed.environments} environments)"
        )
        logger.warning("%s: Redis refused a write for lack of memory (%s): %s", env, error.detail, words)
        return words

    async def _single(
        self, env: str, kind: str, key: str, change: Change, expected_version: int | None, comment: str, dry_run: bool
    ) -> WriteResult:
        await self.environment(env)
        for _ in range(_RETRIES):
            raw = (await self.storage.items(env, kind, [key]))[key]
            if expected_version is not None and not _expected(raw, expected_version):
                current = max(_version_of(raw), 0)
                raise ConflictError(f'{kind} "{key}" is at version {current}, not {expected_version}; nothing written')
            planned = change(raw)
            if planned is None:  # already as asked (a toggle to the state it is in)
                stored = codec.loads(raw) if raw else None
                return WriteResult(
                    [stored] if stored else [], [], [ItemChange(kind, key, "unchanged", stored, stored)], dry_run
                )
            data, action = planned
            write = self._prepare(kind, key, data, raw, action)
            item_change = _change_of(write, raw)
            if item_change.action == "unchanged" and item_change.before is not None:
                return WriteResult([] if dry_run else [item_change.before], [], [item_change], dry_run)
            if dry_run:
                return WriteResult([], [], [item_change], dry_run)
            try:
                return await self._write(env, [write], comment, [item_change])
            except ConflictError:
                if expected_version is not None:
                    raise
        raise ConflictError(f'{kind} "{key}" kept changing; gave up after {_RETRIES} tries')

    async def put_item(
        self, env: str, kind: str, data: Any, *, key: str | None = None, expected_version: int | None = None,
        comment: str = "", dry_run: bool = False, strict: bool | None = None,
    ) -> WriteResult:  # fmt: skip
        """Create or replace a flag or segment (validated strictly first). Identical to the stored
        item but for its version: nothing is written, and the one change says "unchanged".
        `strict`: refuse what would otherwise be a warning (None: as the writer is set)."""
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
        warnings = self._warnings(strict)
        item = {**data, "key": key, "version": 1}
        parsed = _PARSERS[kind](item, path=f"{kind}s.{key}", strict=True, warnings=warnings)
        self._check_size(kind, key, codec.dumps(parsed.data))
        result = await self._single(env, kind, key, lambda raw: (data, "set"), expected_version, comment, dry_run)
        return replace(result, warnings=warnings or [])

    async def toggle(
        self, env: str, key: str, on: bool, *, expected_version: int | None = None, comment: str = "",
        dry_run: bool = False,
    ) -> WriteResult:  # fmt: skip
        """The kill switch: turn targeting on or off (no write if it already is). Never refused for
        what the flag holds: its warnings are reported, even by a strict writer."""

        def change(raw: bytes | None) -> tuple[dict[str, Any], str] | None:
            if not _is_live(raw):
                raise NotFoundError(f'no flag "{key}" in environment "{env}"')
            current = codec.loads(raw)  # type: ignore[arg-type]
            return None if current.get("on") is on else ({**current, "on": on}, "toggle")

        result = await self._single(env, "flag", key, change, expected_version, comment, dry_run)
        after = result.changes[0].after if result.changes else None
        return replace(result, warnings=item_warnings("flag", key, after) if after else [])

    async def delete_item(
        self, env: str, kind: str, key: str, *, expected_version: int | None = None, comment: str = "",
        dry_run: bool = False,
    ) -> WriteResult:  # fmt: skip
        def change(raw: bytes | None) -> tuple[dict[str, Any], str]:
            if not _is_live(raw):
                raise NotFoundError(f'no {kind} "{key}" in environment "{env}"')
            return {}, "delete"

        return await self._single(env, kind, key, change, expected_version, comment, dry_run)

    async def import_items(
        self, env: str, doc: Any, *, replace_all: bool = False, confirm: Confirm | None = None,
        dry_run: bool = False, comment: str = "", strict: bool | None = None,
        check: Callable[[str, str], None] | None = None,
    ) -> WriteResult:  # fmt: skip
        """All or nothing: the document's shape and every item are checked (relay/store/checks.py)
        before anything is written, then one atomic write of the items that differ from Redis's.
        Every item's warnings are in the result (`strict`: refused instead, as for put_item).

        With `replace_all`, live items missing from the document are deleted, but only after
        `confirm(plan)` says yes (no `confirm`: refused, nothing written). It is asked again if a
        retry after a concurrent change would delete other items than those it said yes to.
        `check(kind, key)` sees every item the import would write or delete, dry run or not, and may
        refuse the whole import by raising (a token's scope)."""
        warnings = self._warnings(strict)
        items = checked_items(doc, max_item_bytes=self.max_item_bytes, warnings=warnings)
        result = await self._import(env, items, replace_all, confirm, dry_run, comment, check)
        return replace(result, warnings=warnings or [])

    async def _import(
        self,
        env: str,
        items: Items,
        replace_all: bool,
        confirm: Confirm | None,
        dry_run: bool,
        comment: str,
        check: Callable[[str, str], None] | None,
    ) -> WriteResult:
        await self.environment(env)
        agreed: frozenset[tuple[str, str]] | None = None
        for _ in range(_RETRIES):
            writes: list[ItemWrite] = []
            changes: list[ItemChange] = []
            for kind in KINDS:
                current = await self.storage.all_items(env, kind)
                planned = [(key, data, "import") for key, data in items[kind].items()]
                if replace_all:
                    gone = sorted(set(current) - set(items[kind]))
                    planned += [(key, {}, "delete") for key in gone if _is_live(current[key])]
                for key, data, action in planned:
                    write = self._prepare(kind, key, data, current.get(key), action)
                    changes.append(_change_of(write, current.get(key)))
                    if changes[-1].action != "unchanged":
                        writes.append(write)
            for w in writes if check is not None else ():
                check(w.kind, w.key)
            plan = WriteResult([], [], changes, dry_run)
            if dry_run:
                return plan
            deleting = frozenset((c.kind, c.key) for c in plan.deletions)
            if deleting and deleting != agreed:
                if confirm is None or not confirm(plan):
                    raise ValidationError(
                        "", f"replacing the items of {env} would delete {len(deleting)} items ("
                        f"{_names(plan.deletions)}), which was not confirmed; nothing written"
                    )  # fmt: skip
                agreed = deleting
            if not writes:
                return plan
            try:
                return await self._write(env, writes, comment, changes)
            except ConflictError:
                continue
        raise ConflictError(f"the environment kept changing during the import; gave up after {_RETRIES} tries")


def _names(changes: list[ItemChange], shown: int = 5) -> str:
    names = [f"{c.kind} {c.key}" for c in changes[:shown]]
    return ", ".join(names) + (f" and {len(changes) - shown} more" if len(changes) > shown else "")
