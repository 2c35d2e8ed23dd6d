"""`/api/v1/environments/{env}/flags[/{key}]` and `…/segments[/{key}]`: list, get, PUT, PATCH, DELETE.

Reads carry the item's version as a quoted ETag; `If-Match` makes a write conditional (412 when the item has
moved on), `If-None-Match: *` a PUT that must create. `?dry_run=true` writes nothing and says what would
change. A write answers `{"item", "dataVersion", "unchanged", "dryRun", "changes"}` (`changes`: the plan,
per item its action and before/after).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.tokens import Action
from relay.admin import patch
from relay.admin.responses import ANY, etag, expected_version, json_response
from relay.admin.state import caller, comment_of, json_body, media_type, query_flag, strict_of
from relay.errors import ConflictError, NotFoundError, PreconditionFailed, ValidationError
from relay.store.writes import WritePath, WriteResult

_PATCH_RETRIES = 5
Endpoint = Callable[[Request], Awaitable[Response]]


def written(result: WriteResult, *, status: int = 200) -> Response:
    """A write's answer: the item as stored (a tombstone after a delete), its ETag, and whether anything changed."""
    item = result.items[-1] if result.items else None
    body = {"item": item, "dataVersion": result.data_versions[-1] if result.data_versions else None,
            "unchanged": not result.data_versions and not result.dry_run, "dryRun": result.dry_run,
            "changes": [c.to_dict() for c in result.changes],
            "warnings": [w.to_dict() for w in result.warnings]}  # fmt: skip
    return json_response(body, status, {"ETag": etag(item["version"])} if item else None)


def _scope_key(kind: str, key: str) -> str | None:
    return key if kind == "flag" else None  # a segment can change any flag: only writers without globs


async def _conditional(writer: WritePath, env: str, kind: str, key: str, wanted: int | None) -> int | None:
    """`wanted` as the write path takes it: ANY (If-Match: *) becomes the stored version, or 412 if none."""
    if wanted != ANY:
        return wanted
    try:
        return int((await writer.get_item(env, kind, key))["version"])
    except NotFoundError:
        raise PreconditionFailed(f'If-Match: * but there is no {kind} "{key}"') from None


async def _guarded(write: Callable[[], Awaitable[WriteResult]], conditional: bool) -> WriteResult:
    try:
        return await write()
    except ConflictError as e:
        if conditional:  # the version it was conditional on is gone: HTTP's precondition failure
            raise PreconditionFailed(f"{e} (If-Match)") from None
        raise


def routes_for(kind: str) -> list[Route]:
    plural = f"{kind}s"
    base = f"/api/v1/environments/{{env}}/{plural}"

    async def list_items(request: Request) -> Response:
        env = request.path_params["env"]
        state, who = await caller(request, Action.READ, env)
        items = await state.writer(who).list_items(env, kind)
        return json_response({"items": list(items.values())})

    async def get_item(request: Request) -> Response:
        env, key = request.path_params["env"], request.path_params["key"]
        state, who = await caller(request, Action.READ, env)
        item = await state.writer(who).get_item(env, kind, key)
        return json_response(item, headers={"ETag": etag(item["version"])})

    async def put_item(request: Request) -> Response:
        env, key = request.path_params["env"], request.path_params["key"]
        state, who = await caller(request, Action.WRITE_ITEM, env, _scope_key(kind, key))
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ValidationError(f"{plural}.{key}", f"expected a {kind} as a JSON object")
        comment, writer = comment_of(request, body), state.writer(who)
        wanted = await _conditional(writer, env, kind, key, expected_version(request))
        body.pop("version", None)  # relay owns versions: If-Match is how to say which one is expected

        dry_run, strict = query_flag(request, "dry_run"), strict_of(request)

        async def write() -> WriteResult:
            return await writer.put_item(
                env, kind, body, key=key, expected_version=wanted, comment=comment, dry_run=dry_run, strict=strict
            )

        return written(await _guarded(write, wanted is not None))

    async def patch_item(request: Request) -> Response:
        env, key = request.path_params["env"], request.path_params["key"]
        state, who = await caller(request, Action.WRITE_ITEM, env, _scope_key(kind, key))
        body, writer = await json_body(request, media_types=(patch.MERGE_PATCH, patch.JSON_PATCH)), state.writer(who)
        kind_of_patch, header_comment = media_type(request), request.headers.get("x-relay-comment", "")
        wanted, dry_run = expected_version(request), query_flag(request, "dry_run")
        for _ in range(_PATCH_RETRIES):
            current = await writer.get_item(env, kind, key)
            version = int(current["version"])
            if wanted not in (None, ANY, version):
                raise PreconditionFailed(f'{kind} "{key}" is at version {version}, not {wanted}; nothing written')
            patched, comment = patch.apply(kind_of_patch, current, _copy(body))
            result = await _patched(writer, env, kind, key, current, patched, comment or header_comment, dry_run)
            if result is not None:
                return written(result)
            if wanted not in (None, ANY):
                raise PreconditionFailed(f'{kind} "{key}" changed meanwhile; nothing written')
        raise ConflictError(f'{kind} "{key}" kept changing; gave up after {_PATCH_RETRIES} tries')

    async def delete_item(request: Request) -> Response:
        env, key = request.path_params["env"], request.path_params["key"]
        state, who = await caller(request, Action.WRITE_ITEM, env, _scope_key(kind, key))
        writer, comment = state.writer(who), request.headers.get("x-relay-comment", "")
        wanted = await _conditional(writer, env, kind, key, expected_version(request))
        dry_run = query_flag(request, "dry_run")

        async def write() -> WriteResult:
            return await writer.delete_item(env, kind, key, expected_version=wanted, comment=comment, dry_run=dry_run)

        return written(await _guarded(write, wanted is not None))

    return [
        Route(base, list_items, methods=["GET"]),
        Route(f"{base}/{{key}}", get_item, methods=["GET"]),
        Route(f"{base}/{{key}}", put_item, methods=["PUT"]),
        Route(f"{base}/{{key}}", patch_item, methods=["PATCH"]),
        Route(f"{base}/{{key}}", delete_item, methods=["DELETE"]),
    ]


def _copy(body: Any) -> Any:
    """A fresh copy of the patch for each try (applying one pops its comment)."""
    if isinstance(body, dict):
        return {k: _copy(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_copy(v) for v in body]
    return body


async def _patched(
    writer: WritePath,
    env: str,
    kind: str,
    key: str,
    current: dict[str, Any],
    patched: Any,
    comment: str,
    dry_run: bool = False,
) -> WriteResult | None:
    """Write the patched item, conditional on the version it was patched from (None: it moved on meanwhile).
    A patch changing only `on` is the kill switch, audited as a toggle."""
    if not isinstance(patched, dict):
        raise ValidationError(f"{kind}s.{key}", f"the patched {kind} must be a JSON object")
    if patched.get("key", key) != key:
        raise ValidationError(f"{kind}s.{key}.key", "a patch cannot change an item's key (PUT the new key instead)")
    version = int(current["version"])
    data = {k: v for k, v in patched.items() if k != "version"}
    base = {k: v for k, v in current.items() if k != "version"}
    try:
        if data == base:
            return WriteResult([current], [], dry_run=dry_run)
        if kind == "flag" and isinstance(data.get("on"), bool) and {**base, "on": data["on"]} == data:
            return await writer.toggle(env, key, data["on"], expected_version=version, comment=comment, dry_run=dry_run)
        return await writer.put_item(
            env, kind, data, key=key, expected_version=version, comment=comment, dry_run=dry_run
        )
    except ConflictError:
        return None
