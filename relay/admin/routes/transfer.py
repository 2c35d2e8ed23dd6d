"""`POST /api/v1/environments/{env}/import` (`?replace=true`, `?dry_run=true`) and `GET …/export`.

The body is `relay flags import`'s: `{"flags": {...}, "segments": {...}}` (plus an optional "comment"). An
import is all or nothing, and so is its scope check: one item outside the token's scope (created, changed
or, with replace, deleted) refuses it whole, naming that item, before anything is written.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.tokens import Action, Role
from relay.admin.responses import json_response
from relay.admin.state import caller, comment_of, item_check, json_body, query_flag, require_role
from relay.errors import ValidationError
from relay.evaluation import parse_items
from relay.store.writes import KINDS

_TOP = ("flags", "segments")
Items = dict[str, dict[str, dict[str, Any]]]  # kind -> key -> item


def check_shape(doc: Any) -> None:
    """A misspelt top-level key must not read as "no flags" (and, with replace, delete them all)."""
    if not isinstance(doc, dict):
        raise ValidationError("document", 'expected {"flags": {...}, "segments": {...}}')
    for name in doc:
        if name not in _TOP:
            raise ValidationError(name, f'unknown top-level key "{name}" (an import has "flags" and "segments")')
    if not any(name in doc for name in _TOP):
        raise ValidationError("document", 'has neither "flags" nor "segments"')


def _bare(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "version"}


def plan(current: Items, doc: Any, replace: bool) -> dict[str, list[dict[str, str]]]:
    """What the import would do to each item: created, updated, unchanged or (with replace) deleted."""
    flags, segments = parse_items(doc, strict=True, default_version=1)
    wanted = {"flag": {k: f.data for k, f in flags.items()}, "segment": {k: s.data for k, s in segments.items()}}
    out: dict[str, list[dict[str, str]]] = {"created": [], "updated": [], "unchanged": [], "deleted": []}
    for kind in KINDS:
        for key, data in sorted(wanted[kind].items()):
            old = current[kind].get(key)
            verdict = "created" if old is None else "unchanged" if _bare(old) == _bare(data) else "updated"
            out[verdict].append({"kind": kind, "key": key})
        if replace:
            out["deleted"] += [{"kind": kind, "key": key} for key in sorted(set(current[kind]) - set(wanted[kind]))]
    return out


async def import_items(request: Request) -> Response:
    env = request.path_params["env"]
    state, who = await caller(request, Action.READ, env)
    require_role(who, Role.WRITER, "importing")
    body = await json_body(request)
    comment = comment_of(request, body)
    check_shape(body)
    replace, dry_run = query_flag(request, "replace"), query_flag(request, "dry_run")
    writer = state.writer(who)
    current = {kind: await writer.list_items(env, kind) for kind in KINDS}
    changes = plan(current, body, replace)
    check = item_check(who, env, state.clock())
    for verdict in ("created", "updated", "deleted"):
        for item in changes[verdict]:
            check(item["kind"], item["key"])
    if dry_run:
        return json_response({"dryRun": True, **changes, "written": 0, "dataVersion": None})
    result = await writer.import_items(env, body, replace_all=replace, comment=comment, check=check)
    version = result.data_versions[-1] if result.data_versions else None
    return json_response({"dryRun": False, **changes, "written": len(result.items), "dataVersion": version})


async def export(request: Request) -> Response:
    env = request.path_params["env"]
    state, who = await caller(request, Action.READ, env)
    return json_response(await state.writer(who).export(env))


routes = [
    Route("/api/v1/environments/{env}/import", import_items, methods=["POST"]),
    Route("/api/v1/environments/{env}/export", export, methods=["GET"]),
]
