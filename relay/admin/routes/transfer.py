"""`POST /api/v1/environments/{env}/import` (`?replace=true`, `?dry_run=true`) and `GET …/export`.

The body is `relay flags import`'s: `{"flags": {...}, "segments": {...}}` (plus an optional "comment"). An
import is all or nothing, and so is its scope check: one item outside the token's scope (created, changed
or, with replace, deleted) refuses it whole, naming that item, before anything is written.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.tokens import Action, Role
from relay.admin.responses import json_response
from relay.admin.state import caller, comment_of, item_check, json_body, query_flag, require_role, strict_of
from relay.store.plan import ACTIONS, confirmed
from relay.store.writes import KINDS


async def import_items(request: Request) -> Response:
    env = request.path_params["env"]
    state, who = await caller(request, Action.READ, env)
    require_role(who, Role.WRITER, "importing")
    body = await json_body(request)
    comment = comment_of(request, body)  # (taken out of the body: the rest is the document)
    replace, dry_run = query_flag(request, "replace"), query_flag(request, "dry_run")
    # The write path plans, checks the document's shape and every item, asks `check` about every
    # item it would write or delete (the token's scope), and writes: the CLI's import, exactly.
    result = await state.writer(who).import_items(
        env,
        body,
        replace_all=replace,
        confirm=confirmed,  # (the API's confirmation is ?replace=true itself)
        dry_run=dry_run,
        comment=comment,
        strict=strict_of(request),
        check=item_check(who, env, state.clock()),
    )
    changes: dict[str, list[dict[str, str]]] = {action: [] for action in ACTIONS}
    for change in sorted(result.changes, key=lambda c: (KINDS.index(c.kind), c.key)):
        changes[change.action].append({"kind": change.kind, "key": change.key})
    version = result.data_versions[-1] if result.data_versions else None
    plan = [c.to_dict() for c in result.changes]  # (with before and after: what the CLI shows as a diff)
    return json_response(
        {
            "dryRun": dry_run,
            **changes,
            "written": len(result.items),
            "dataVersion": version,
            "changes": plan,
            "warnings": [w.to_dict() for w in result.warnings],
        }
    )


async def export(request: Request) -> Response:
    env = request.path_params["env"]
    state, who = await caller(request, Action.READ, env)
    return json_response(await state.writer(who).export(env))


routes = [
    Route("/api/v1/environments/{env}/import", import_items, methods=["POST"]),
    Route("/api/v1/environments/{env}/export", export, methods=["GET"]),
]
